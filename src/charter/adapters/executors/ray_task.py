"""What a Ray worker runs for one step attempt (the Ray executor ships this module by value, so a
cluster's nodes need Python, Ray and the steps' own libraries, not Charter).

The attempt is laid out in a temporary directory of the worker: the template's code, the input
files, the step runner and its spec; the step runs as a child process in a process group of its
own (exactly as on the local executor), its output goes to a log that is relayed to the server
while it runs (the relay also says when the run was cancelled), its timeout kills the group, and
a cancellation kills it too. What comes back: the exit code, the whole log, the output files and the runner's result.
Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULT_FILE = "_result.json"  # the step runner's; kept equal by a test
LOG_LIMIT = 32 * 1024 * 1024  # a log returned whole up to this; only its end past it
_POLL = 0.05
_RELAY_SECONDS = 0.25


def _safe(root: Path, relative: str) -> Path:
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{relative} lies outside {root}")
    return target


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_log(path: Path) -> bytes:
    with contextlib.suppress(OSError), path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - LOG_LIMIT))
        return f.read()
    return b""


def run_attempt(spec: dict[str, Any], runner_source: str, code: dict[str, bytes],
                inputs: dict[str, Any], relay: Any, relay_key: str) -> dict[str, Any]:
    """Run one attempt on this worker; ``inputs`` holds object refs of the input files' bytes;
    ``relay`` (an actor handle or None) gets the log as it grows."""
    if inputs:
        import ray

        inputs = dict(zip(inputs, ray.get(list(inputs.values())), strict=True))
    with tempfile.TemporaryDirectory(prefix="charter-step-") as tmp:
        root = Path(tmp)
        code_dir = root / "code"
        code_dir.mkdir()
        for relative, data in code.items():
            target = _safe(code_dir, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        given: dict[str, dict[str, Any]] = {}
        for name, value in spec["inputs"].items():
            if value["kind"] == "file":
                path = root / "inputs" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(inputs[name])
                given[name] = {**value, "path": str(path)}
            else:
                given[name] = value
        out_dir = root / "out"
        out_dir.mkdir()
        runner = root / "step_runner.py"
        runner.write_text(runner_source)
        spec_path = root / "spec.json"
        import json

        spec_path.write_text(json.dumps({"code_dir": str(code_dir), "entry_point": spec["entry_point"],
                                         "kind": spec["kind"], "inputs": given, "outputs": spec["outputs"],
                                         "output_dir": str(out_dir)}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        env.update(PYTHONUNBUFFERED="1", CHARTER_RUN_ID=spec["run_id"], CHARTER_STEP=spec["step"])
        log_path = root / "step.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen([sys.executable, str(runner), str(spec_path)], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, cwd=str(root), env=env,
                                       start_new_session=True)
        deadline = time.monotonic() + float(spec["timeout_seconds"])
        timed_out = cancelled = False
        sent = 0
        relayed_at = 0.0
        try:
            while process.poll() is None:
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                if relay is not None and time.monotonic() - relayed_at > _RELAY_SECONDS:
                    relayed_at = time.monotonic()
                    sent, cancelled = _relay(relay, relay_key, log_path, sent)
                    if cancelled:
                        break
                time.sleep(_POLL)
        finally:
            # A timeout, a cancellation (asked through the relay, or Ray's KeyboardInterrupt) or
            # a normal end: the step and whatever it started die with its group.
            _kill_group(process)
            with contextlib.suppress(Exception):
                process.wait(10)
        if relay is not None:
            sent, _ = _relay(relay, relay_key, log_path, sent)
        outputs = {name: (out_dir / name).read_bytes() for name in spec["outputs"]
                   if (out_dir / name).is_file()}
        result = (out_dir / RESULT_FILE).read_bytes() if (out_dir / RESULT_FILE).is_file() else None
        return {"code": process.returncode, "timed_out": timed_out, "cancelled": cancelled, "log": _read_log(log_path),
                "outputs": outputs, "result": result}


def _relay(relay: Any, key: str, log_path: Path, sent: int) -> tuple[int, bool]:
    """Send the log's new bytes to the relay and learn whether the run was cancelled since. It
    waits for the answer, so the server has seen the whole log once a task has returned."""
    import ray

    data = b""
    with contextlib.suppress(OSError), log_path.open("rb") as f:
        f.seek(sent)
        data = f.read(LOG_LIMIT)
    try:
        cancelled = bool(ray.get(relay.append.remote(key, data), timeout=10))
    except Exception:  # noqa: BLE001 - the relay is for watching; the step goes on without it
        return sent, False
    return sent + len(data), cancelled


class LogRelay:
    """A small actor that holds log bytes between a task and the server (num_cpus=0)."""

    def __init__(self) -> None:
        self.logs: dict[str, list[bytes]] = {}
        self.cancelled: set[str] = set()

    def append(self, key: str, data: bytes) -> bool:
        """Keep a task's new log bytes; whether the server asked to cancel it."""
        if data:
            self.logs.setdefault(key, []).append(data)
        return key in self.cancelled

    def take(self, key: str) -> bytes:
        return b"".join(self.logs.pop(key, []))

    def cancel(self, key: str) -> None:
        self.cancelled.add(key)

    def forget(self, key: str) -> None:
        self.logs.pop(key, None)
        self.cancelled.discard(key)
