"""The Ray executor: each step attempt a Ray task on an existing cluster given by address.

The contract is the local executor's: the step runs in a process of its own (in a process group of
its own, on a worker of the cluster), its log is written to the attempt's log file on the server
while it runs (relayed through a small actor) and whole at its end, its outputs land in the
attempt's output directory, a timeout kills it, a cancellation kills it, and a failure comes back
with its exit code and the tail of its log. Nothing is assumed shared between the server and the
cluster: the code, the input files and the outputs travel through Ray's object store, so a cluster
on other machines works as well as one on this machine.

Addresses: ``ray`` connects to the cluster this machine is part of (``ray start``, or
``RAY_ADDRESS``); ``ray://HOST:PORT`` to a cluster's Ray Client server.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from charter.adapters.executors import ray_task, step_runner
from charter.adapters.executors.local import step_result
from charter.services.ports import StepJob, StepResult

_POLL = 0.05
_CANCEL_GRACE_SECONDS = 5.0
_CACHED_REFS = 32
_CONNECT_ATTEMPTS = 3
"""Ray Client starts a server process for each connection; when that process dies while it
starts, ``ray.init`` raises ConnectionAbortedError ("Initialization failure from server") and
leaves nothing connected, so the connection is tried again."""
_CONNECT_BACKOFF_SECONDS = 1.0
QUEUE_GRACE_SECONDS = 300.0
"""How long past its timeout a task may take before the server gives up on it (queued on a busy
cluster, or lost with its node): the step's own timeout counts from when it starts on a worker."""


def ray_address(setting: str) -> str | None:
    """The address ``ray.init`` takes for a ``pipeline_executor`` setting; None when it names no Ray."""
    if setting == "ray":
        return "auto"
    if setting.startswith("ray://") and len(setting) > len("ray://"):
        return setting
    return None


class RayExecutor:
    def __init__(self, address: str, max_parallel: int = 4, *, num_cpus: float = 1.0,
                 init_options: dict[str, Any] | None = None) -> None:
        self.address = address
        self.max_parallel = max_parallel
        self.num_cpus = num_cpus
        self.init_options = dict(init_options or {})
        self._lock = threading.Lock()
        self._remote: Any = None
        self._relay: Any = None
        self._refs: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._runner_source = Path(step_runner.__file__).read_text()
        self._connected_here = False

    # --- the connection ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        import ray

        with self._lock:
            if self._remote is None:
                if not ray.is_initialized():
                    self._init(ray)
                    self._connected_here = True
                # Shipped by value: the cluster's workers need not have Charter installed.
                ray.cloudpickle.register_pickle_by_value(ray_task)  # type: ignore[no-untyped-call]
                self._remote = ray.remote(ray_task.run_attempt).options(num_cpus=self.num_cpus, max_retries=0)
                self._relay = ray.remote(ray_task.LogRelay).options(num_cpus=0).remote()
            return ray

    def _init(self, ray: Any) -> None:
        for attempt in range(1, _CONNECT_ATTEMPTS + 1):
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False,
                         **self.init_options)
                return
            except ConnectionAbortedError:
                if attempt == _CONNECT_ATTEMPTS:
                    raise
                time.sleep(_CONNECT_BACKOFF_SECONDS * attempt)

    def close(self) -> None:
        with self._lock:
            if self._remote is None:
                return
            import ray

            with contextlib.suppress(Exception):
                ray.kill(self._relay)
            self._refs.clear()
            self._remote = self._relay = None
            if self._connected_here:
                ray.shutdown()
                self._connected_here = False

    def _put(self, ray: Any, key: tuple[str, ...], make: Any) -> Any:
        """One object-store copy of what several attempts send (the code, a dataset): the key
        names the files and their sizes and times, so a changed file is sent again."""
        with self._lock:
            if key in self._refs:
                self._refs.move_to_end(key)
                return self._refs[key]
        ref = ray.put(make())
        with self._lock:
            self._refs[key] = ref
            while len(self._refs) > _CACHED_REFS:
                self._refs.popitem(last=False)
        return ref

    @staticmethod
    def _signature(paths: list[Path]) -> tuple[str, ...]:
        out = []
        for path in paths:
            stat = path.stat()
            out.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
        return tuple(out)

    # --- one attempt ------------------------------------------------------------------------------

    def run_step(self, job: StepJob, cancel: threading.Event) -> StepResult:
        ray = self._connect()
        output_dir = Path(job.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(job.log_path)
        code_root = Path(job.code_dir)
        code_files = sorted(p for p in code_root.rglob("*") if p.is_file())
        code_ref = self._put(ray, ("code", *self._signature(code_files)),
                             lambda: {p.relative_to(code_root).as_posix(): p.read_bytes() for p in code_files})
        inputs = {}
        for name, given in job.inputs.items():
            if given["kind"] == "file":
                path = Path(given["path"])
                inputs[name] = self._put(ray, ("file", *self._signature([path])), path.read_bytes)
        spec = {"run_id": job.run_id, "step": job.step, "kind": job.kind, "entry_point": job.entry_point,
                "inputs": job.inputs, "outputs": job.outputs, "timeout_seconds": job.timeout_seconds}
        key = f"{job.run_id}/{job.step}/{job.attempt}"
        # The code is a top-level argument (Ray resolves it); the inputs' refs, nested in a dict,
        # the task gets itself.
        ref = self._remote.remote(spec, self._runner_source, code_ref, inputs, self._relay, key)
        deadline = time.monotonic() + job.timeout_seconds + QUEUE_GRACE_SECONDS
        cancelled = lost = False
        try:
            with log_path.open("ab") as log:
                while True:
                    ready, _ = ray.wait([ref], timeout=_POLL)
                    self._relay_log(ray, key, log)
                    if ready:
                        break
                    if cancel.is_set() and not cancelled:
                        cancelled = True  # the task learns it from the relay and kills its step
                        self._relay.cancel.remote(key)
                        deadline = min(deadline, time.monotonic() + _CANCEL_GRACE_SECONDS)
                    if time.monotonic() > deadline:
                        lost = not cancelled
                        # Its worker does not answer: Ray kills the worker, with the step's group
                        # left to the node (the task kills it whenever it can run its last lines).
                        ray.cancel(ref, force=True)
                        self._relay_log(ray, key, log)
                        break
            if lost:
                return StepResult(False, {}, {}, "the step did not finish on the Ray cluster within "
                                  f"{job.timeout_seconds + QUEUE_GRACE_SECONDS:g} s (queued or lost)",
                                  step_result(job, 1, False, False, log_path).log_tail, timed_out=True)
            if not ready:
                return step_result(job, None, False, True, log_path)
            try:
                answer: dict[str, Any] = ray.get(ref)
            except Exception as error:  # noqa: BLE001 - the worker or its node died: the step failed
                with log_path.open("ab") as log:
                    log.write(f"\ncharter: the Ray task failed: {type(error).__name__}: {error}\n".encode())
                return step_result(job, -1, False, cancelled, log_path)
        finally:
            with contextlib.suppress(Exception):
                self._relay.forget.remote(key)
        log_path.write_bytes(answer["log"])  # the whole log, whatever the relay had shown
        for name, data in answer["outputs"].items():
            (output_dir / name).write_bytes(data)
        if answer["result"] is not None:
            (output_dir / ray_task.RESULT_FILE).write_bytes(answer["result"])
        code = int(answer["code"]) if answer["code"] is not None else -1
        if code == 0 and answer["result"] is None:
            code = -1
        return step_result(job, code, bool(answer["timed_out"]), cancelled or bool(answer["cancelled"]),
                           log_path)

    def _relay_log(self, ray: Any, key: str, log: Any) -> None:
        with contextlib.suppress(Exception):
            data = ray.get(self._relay.take.remote(key), timeout=5)
            if data:
                log.write(data)
                log.flush()
