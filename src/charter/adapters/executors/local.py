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

from charter.adapters.executors.imports import needs_preload
from charter.adapters.executors.step_runner import RESULT_FILE
from charter.services.ports import StepJob, StepResult

TAIL_LINES = 40
TAIL_BYTES = 8192
_POLL = 0.05
_ROUTES_KEPT = 1024


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


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["PYTHONUNBUFFERED"] = "1"
    src = str(Path(__file__).resolve().parents[3])  # charter itself importable from a checkout
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


class _Child:
    def __init__(self) -> None:
        self.pid: int | None = None
        self.code: int | None = None
        self.started = threading.Event()
        self.ended = threading.Event()


class ForkServer:
    """A warm step runner (``step_runner --serve``) that forks a child per step: each step is
    still its own process in its own process group, without paying an interpreter's start-up."""

    def __init__(self, python: str, preload: tuple[str, ...] = ()) -> None:
        preloading = [f"--preload={','.join(preload)}"] if preload else []
        self._process = subprocess.Popen(
            [python, "-m", "charter.adapters.executors.step_runner", "--serve", *preloading],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=_environment(), start_new_session=True)
        self._lock = threading.Lock()
        self._children: dict[str, _Child] = {}
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True, name="charter-fork-server")
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def _read(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            try:
                ident, what, value = raw.decode().split()
                number = int(value)
            except ValueError:
                continue  # not an answer of the server's (a step's leftover process wrote it)
            child = self._children.get(ident)
            if child is None:
                continue
            # A child tells its own end, which may come before the server told its start; the
            # server tells the end again when it reaps it: the first one counts.
            if what == "started":
                child.pid = number
                child.started.set()
            elif what == "exited" and child.code is None:
                child.code = number
                child.ended.set()
            if child.started.is_set() and child.ended.is_set():
                self._children.pop(ident, None)
        for child in list(self._children.values()):  # the server died: nothing more will come
            child.started.set()
            child.ended.set()

    def start(self, spec: Path, log: Path, run_id: str, step: str) -> _Child:
        child = _Child()
        with self._lock:
            self._next += 1
            ident = str(self._next)
            self._children[ident] = child
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps([ident, str(spec), str(log), run_id, step]).encode() + b"\n")
            self._process.stdin.flush()
        return child

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        if self._process.poll() is None:
            _kill(self._process)


class LocalExecutor:
    """Runs each step attempt in a process of its own. With ``fork_server`` (the default) the
    process is forked from a warm server: the one that preloaded ``preload`` for a step whose code
    may use it, a bare one for a step whose code imports only the standard library (forking,
    writing to and ending a child of the small server costs a fraction of the large one's)."""

    def __init__(self, max_parallel: int = 4, python: str = sys.executable, *, fork_server: bool = True,
                 preload: tuple[str, ...] = ()) -> None:
        self.max_parallel = max_parallel
        self.python = python
        self.fork_server = fork_server
        self.preload = preload
        self._servers: dict[tuple[str, ...], ForkServer] = {}
        self._server_lock = threading.Lock()
        self._routes: dict[tuple[str, str], tuple[str, ...]] = {}

    def close(self) -> None:
        with self._server_lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()

    def _forks(self, preload: tuple[str, ...]) -> ForkServer:
        with self._server_lock:
            server = self._servers.get(preload)
            if server is None or not server.alive:
                server = self._servers[preload] = ForkServer(self.python, preload)
            return server

    def preload_for(self, job: StepJob) -> tuple[str, ...]:
        """What the server that forks ``job`` preloads: ``preload``, or nothing for a step whose
        code imports only the standard library (decided once per code directory and entry point)."""
        module = job.entry_point.partition(":")[0]
        key = (job.code_dir, module)
        with self._server_lock:
            known = self._routes.get(key)
        if known is not None:
            return known
        chosen = self.preload if needs_preload(Path(job.code_dir), job.entry_point, self.preload) else ()
        with self._server_lock:
            if len(self._routes) >= _ROUTES_KEPT:
                self._routes.clear()
            self._routes[key] = chosen
        return chosen

    def run_step(self, job: StepJob, cancel: threading.Event) -> StepResult:
        output_dir = Path(job.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(job.log_path)
        spec_path = output_dir.parent / f"spec-{job.attempt}.json"
        spec_path.write_text(json.dumps({
            "code_dir": job.code_dir, "entry_point": job.entry_point, "kind": job.kind,
            "inputs": job.inputs, "outputs": job.outputs, "output_dir": job.output_dir}))
        if self.fork_server:
            return self._run_forked(job, spec_path, log_path, cancel)
        env = _environment()
        env["CHARTER_RUN_ID"] = job.run_id
        env["CHARTER_STEP"] = job.step
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
        return step_result(job, process.returncode, timed_out, cancelled, log_path)

    def _run_forked(self, job: StepJob, spec_path: Path, log_path: Path, cancel: threading.Event) -> StepResult:
        child = self._forks(self.preload_for(job)).start(spec_path, log_path, job.run_id, job.step)
        deadline = time.monotonic() + job.timeout_seconds
        timed_out = cancelled = False
        # Its start (its pid) is needed only to kill it: the wait is for its end.
        while not child.ended.wait(_POLL):
            if cancel.is_set():
                cancelled = True
            elif time.monotonic() > deadline:
                timed_out = True
            if cancelled or timed_out:
                break
        child.started.wait()
        if child.pid is not None:
            # Once it has ended its group may still hold what it started; either way it all dies.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            if not child.ended.is_set():  # killed before it made its own group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child.pid, signal.SIGKILL)
        if cancelled or timed_out:
            child.ended.wait(10)
        code = child.code if child.code is not None else -1
        return step_result(job, code, timed_out, cancelled, log_path)


def step_result(job: StepJob, code: int | None, timed_out: bool, cancelled: bool, log_path: Path) -> StepResult:
    """What an attempt came to, from its exit code and what it left in its output directory (the
    same reading for every executor: the Ray executor lays a task's outputs out the same way)."""
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
