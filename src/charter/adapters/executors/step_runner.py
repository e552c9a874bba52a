"""Runs one pipeline step in its own process: ``python -m charter.adapters.executors.step_runner SPEC``.

The spec (JSON, written by the server) names the step's code directory, its entry point
(``module:function``), its inputs and an output directory. The module is loaded from the code
directory only: an entry point that resolves anywhere else is refused. Inputs are passed as keyword
arguments (parameters as strings, datasets and artifacts as paths); a function that takes
``outputs`` receives the output directory, where each artifact output is the file of its name.
Metrics outputs may be returned as a dict (``{"metrics": {...}}``, or the metrics themselves when
the step declares one metrics output). A condition step returns a bool, ``(bool, reason)`` or
``{"passed": bool, "reason": str}``. A declared output that is missing fails the step.

With ``--serve`` it is the local executor's fork server instead (see ``serve``).

Exit codes: 0 done, 1 the step raised, 2 a bad spec or entry point, 3 a declared output missing.
Only the standard library is imported here, so a step starts fast.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import math
import os
import select
import signal
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


def _child(request: list[str], answers: int) -> None:
    """In a forked child of the fork server: become a process group of its own, send output to
    the step's log, run the step and exit with its code (never returning to the server's loop).

    The child tells its end itself, on the server's answer pipe (``answers``), once its log is
    flushed and just before it exits: its caller need not wait for the kernel to take a large
    process apart, nor for the server to reap it (the server still does, and tells it again:
    a child killed or crashed before it could speak is reported that way)."""
    code = 2
    ident = request[0]
    me = os.getpid()
    answers = os.dup(answers)  # fd 1 becomes the log; not inherited by what the step executes
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _, spec_path, log_path, run_id, step = request
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(Path(spec_path).parent)
        os.environ["CHARTER_RUN_ID"], os.environ["CHARTER_STEP"] = run_id, step
        sys.stdin = open(0)  # noqa: SIM115 - the child's own standard streams, closed by _exit
        code = main(["step_runner", spec_path])
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        if os.getpid() == me:  # not a process the step forked, come back up through here
            with contextlib.suppress(OSError):
                os.write(answers, f"{ident} exited {code}\n".encode())  # one write under PIPE_BUF: atomic
        os._exit(code)


def serve() -> int:
    """The fork server: a warm interpreter that forks one child per step it is asked to run.

    Requests on stdin, one JSON list a line: ``[ID, SPEC, LOG, RUN, STEP]``. Answers on stdout: ``ID started PID``
    at once, ``ID exited CODE`` when the child ends (a negative code: killed by that signal): first
    from the child itself as it exits, then from the server when it reaps it (the first one counts).
    Forking a warm interpreter saves each step the interpreter's start-up; each child is still a
    process of its own, in a process group of its own, with nothing of another step's.
    """
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, str] = {}
    pending = b""
    stdin = sys.stdin.fileno()
    out = sys.stdout
    answers = sys.stdout.fileno()

    def answer(line: str) -> bool:
        """Tell the server; False when it is gone (its end of the pipe closed)."""
        try:
            out.write(line + "\n")
            out.flush()
        except OSError:  # BrokenPipeError: the server was killed
            return False
        return True

    def server_gone() -> int:
        # The server is gone (stopped, or killed): the steps it started die with it, so that a
        # resumed run's new attempt never races the old one. Also when the server died with a
        # request still in the pipe: the step just forked for it dies too.
        for pid in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # one forked so recently it has no group of its own yet
        with contextlib.suppress(OSError):  # nothing more can be said: no broken pipe at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0

    while True:
        ready, _, _ = select.select([stdin, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if not answer(f"{children.pop(pid)} exited {os.waitstatus_to_exitcode(status)}"):
                return server_gone()
        if stdin in ready:
            data = os.read(stdin, 65536)
            if not data:
                return server_gone()
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = [str(x) for x in json.loads(line)]
                pid = os.fork()
                if pid == 0:
                    _child(request, answers)
                children[pid] = request[0]
                if not answer(f"{request[0]} started {pid}"):
                    return server_gone()


def preload(modules: list[str]) -> None:
    """Import what the steps are known to use (scikit-learn, numpy...) once, in the fork server, so
    every forked step starts with it loaded: a step that imports scikit-learn saves a second or
    more. A module that is not installed is skipped; a step that needs it fails on its own."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - any failure here only means the step imports it itself
            continue


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--serve"]:
        preload([m for arg in argv[2:] if arg.startswith("--preload=")
                 for m in arg.removeprefix("--preload=").split(",") if m])
        # What is loaded now is shared with every forked step: keep the collector off it, so a
        # step's collections do not touch (and copy) the server's pages.
        gc.freeze()
        return serve()
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
