"""The local executor: each step attempt in a child process of its own, in its own process group,
so a timeout or a cancellation kills the step and everything it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from charter.adapters.executors.step_runner import RESULT_FILE
from charter.services.ports import StepJob, StepResult

TAIL_LINES = 40
TAIL_BYTES = 8192
_POLL = 0.05


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The end of a log: its last ``lines`` lines, at most TAIL_BYTES."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class LocalExecutor:
    def __init__(self, max_parallel: int = 4, python: str = sys.executable) -> None:
        self.max_parallel = max_parallel
        self.python = python

    def run_step(self, job: StepJob, cancel: threading.Event) -> StepResult:
        output_dir = Path(job.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(job.log_path)
        spec_path = output_dir.parent / f"spec-{job.attempt}.json"
        spec_path.write_text(json.dumps({
            "code_dir": job.code_dir, "entry_point": job.entry_point, "kind": job.kind,
            "inputs": job.inputs, "outputs": job.outputs, "output_dir": job.output_dir}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["CHARTER_RUN_ID"] = job.run_id
        env["CHARTER_STEP"] = job.step
        src = str(Path(__file__).resolve().parents[3])  # charter itself importable from a checkout
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [self.python, "-m", "charter.adapters.executors.step_runner", str(spec_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(output_dir.parent),
                env=env, start_new_session=True)
        deadline = time.monotonic() + job.timeout_seconds
        timed_out = cancelled = False
        # A thread blocks on the process, so its end is seen at once; this one watches the clock
        # and the cancellation.
        ended = threading.Event()

        def wait_for_it() -> None:
            process.wait()
            ended.set()

        waiter = threading.Thread(target=wait_for_it, daemon=True, name=f"step-{job.step}")
        waiter.start()
        while not ended.wait(_POLL):
            if cancel.is_set():
                cancelled = True
            elif time.monotonic() > deadline:
                timed_out = True
            if cancelled or timed_out:
                _kill(process)
                break
        waiter.join()
        # The group may hold children the step left behind; they die with the step.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return self._result(job, process.returncode, timed_out, cancelled, log_path)

    def _result(self, job: StepJob, code: int | None, timed_out: bool, cancelled: bool,
                log_path: Path) -> StepResult:
        tail = log_tail(log_path)
        if cancelled:
            return StepResult(False, {}, {}, "the run was cancelled", tail, cancelled=True)
        if timed_out:
            return StepResult(False, {}, {}, f"the step timed out after {job.timeout_seconds:g} s and was "
                              "killed", tail, timed_out=True)
        if code != 0:
            return StepResult(False, {}, {}, f"the step failed (exit code {code})", tail)
        out_dir = Path(job.output_dir)
        result: dict[str, Any] = json.loads((out_dir / RESULT_FILE).read_text())
        metrics: dict[str, Any] = {}
        for name, kind in job.outputs.items():
            if kind == "metrics":
                metrics[name] = json.loads((out_dir / name).read_text())
        condition = result.get("condition")
        verdict = (bool(condition["passed"]), str(condition["reason"])) if condition else None
        return StepResult(True, {n: str(out_dir / n) for n in job.outputs}, metrics, None, tail, verdict)
