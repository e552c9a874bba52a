"""Runs one pipeline step in its own process: ``python -m charter.adapters.executors.step_runner SPEC``.

The spec (JSON, written by the server) names the step's code directory, its entry point
(``module:function``), its inputs and an output directory. The module is loaded from the code
directory only: an entry point that resolves anywhere else is refused. Inputs are passed as keyword
arguments (parameters as strings, datasets and artifacts as paths); a function that takes
``outputs`` receives the output directory, where each artifact output is the file of its name.
Metrics outputs may be returned as a dict (``{"metrics": {...}}``, or the metrics themselves when
the step declares one metrics output). A condition step returns a bool, ``(bool, reason)`` or
``{"passed": bool, "reason": str}``. A declared output that is missing fails the step.

Exit codes: 0 done, 1 the step raised, 2 a bad spec or entry point, 3 a declared output missing.
Only the standard library is imported here, so a step starts fast.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

RESULT_FILE = "_result.json"


class StepFailed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _load(code_dir: Path, entry_point: str) -> Any:
    module_name, _, function = entry_point.partition(":")
    if not module_name or not function:
        raise StepFailed(f"entry point {entry_point!r} is not module:function", 2)
    sys.path.insert(0, str(code_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise StepFailed(f"entry point {entry_point!r}: cannot import {module_name!r}: {error}", 2) from None
    origin = Path(getattr(module, "__file__", None) or "/").resolve()
    if not origin.is_relative_to(code_dir):
        raise StepFailed(f"entry point {entry_point!r} is not in the template's code", 2)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise StepFailed(f"entry point {entry_point!r}: {module_name} defines no function {function!r}", 2)
    return fn


def _arguments(spec: dict[str, Any], fn: Any, output_dir: Path) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, given in spec["inputs"].items():
        if given["kind"] == "file":
            path = Path(given["path"])
            kwargs[name] = json.loads(path.read_text()) if given.get("json") else path
        else:
            kwargs[name] = given["value"]
    if "outputs" in _parameters(fn):
        kwargs["outputs"] = output_dir
    return kwargs


def _parameters(fn: Any) -> tuple[str, ...]:
    code = getattr(fn, "__code__", None)
    if code is not None:  # the common case, without importing inspect (a step starts faster)
        return tuple(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    import inspect

    return tuple(inspect.signature(fn).parameters)


def _verdict(result: Any) -> tuple[bool, str]:
    if isinstance(result, bool):
        return result, "" if result else "the condition was not met"
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
        return result[0], str(result[1])
    if isinstance(result, dict) and isinstance(result.get("passed"), bool):
        return result["passed"], str(result.get("reason", ""))
    raise StepFailed("a condition step returns a bool, (bool, reason) or {'passed': bool, 'reason': str}, "
                     f"not {type(result).__name__}", 1)


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _write_metrics(spec: dict[str, Any], result: Any, output_dir: Path) -> None:
    metrics = [n for n, kind in spec["outputs"].items() if kind == "metrics"]
    if not isinstance(result, dict):
        return
    for name in metrics:
        value = result.get(name)
        if value is None and len(metrics) == 1 and name not in result:
            value = result
        if isinstance(value, dict):
            clean = {str(k): v for k, v in value.items() if _finite(v)}
            (output_dir / name).write_text(json.dumps(clean, sort_keys=True, default=str))


def run(spec: dict[str, Any]) -> dict[str, Any]:
    code_dir = Path(spec["code_dir"]).resolve()
    output_dir = Path(spec["output_dir"]).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    fn = _load(code_dir, spec["entry_point"])
    result = fn(**_arguments(spec, fn, output_dir))
    out: dict[str, Any] = {}
    if spec.get("kind") == "condition":
        passed, reason = _verdict(result)
        out["condition"] = {"passed": passed, "reason": reason}
    _write_metrics(spec, result, output_dir)
    missing = [n for n in spec["outputs"] if not (output_dir / n).is_file()]
    if missing:
        raise StepFailed(f"the step wrote no output {missing[0]!r} (declared outputs: "
                         f"{', '.join(spec['outputs'])})", 3)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m charter.adapters.executors.step_runner SPEC.json", file=sys.stderr)
        return 2
    spec_path = Path(argv[1])
    spec = json.loads(spec_path.read_text())
    try:
        out = run(spec)
    except StepFailed as failed:
        print(f"charter: {failed}", file=sys.stderr, flush=True)
        return failed.code
    except BaseException:  # noqa: BLE001 - the step's own error, reported as its traceback
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        return 1
    Path(spec["output_dir"], RESULT_FILE).write_text(json.dumps(out))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
