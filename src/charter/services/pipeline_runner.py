"""The pipeline runner: claims Pending runs from the database and executes their DAG.

Steps whose inputs are ready run at once, up to the executor's limit; each attempt's log and
outputs go to the account's artifact store, content-addressed. A step whose entry point, code and
input digests match an earlier success reuses its outputs (marked cached). A failed step fails the
run (after its retries); a condition that is not met skips what follows it and ends the run as
SucceededNotRegistered with the condition's reason. Every change is saved, audited and emitted as
an event in one transaction; when a step's success makes the next step ready (a chain), that
step's start is recorded in the same transaction, after it, and the thread that ran the one runs
the other. Runs left Running by a server that stopped are resumed when the runner
starts again (steps that had succeeded keep their outputs, steps that were running start again as
a new attempt), or marked Failed with the reason where they cannot be: never left stuck.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from charter.domain import commands as c
from charter.domain.audit import AuditEntry, Outcome
from charter.domain.crn import CRN
from charter.domain.identity import Identity
from charter.domain.org import AccountKind
from charter.domain.pipelines import (
    InputKind,
    InputRef,
    OutputKind,
    PipelineDefinition,
    PipelineRun,
    RunStatus,
    Step,
    StepKind,
    StepState,
    StepStatus,
    cache_key,
    dataset_of,
    value_digest,
)
from charter.errors import CharterError
from charter.services.handlers.pipelines import run_event, step_event
from charter.services.messagebus import MessageBus
from charter.services.pipeline_spec import load_definition
from charter.services.ports import ArtifactStore, PipelineExecutor, StepJob, StepResult

log = logging.getLogger("charter.pipelines")

SERVER_STOPPED = "the server stopped during the run"
RESUMED = "resumed after the server stopped"
RESUME_LIMIT = 3
"""Interruptions of one step (beyond its retries) after which a run is not resumed again: a step
that brings its server down each time must not do it forever."""
CONDITION_KEY = "_condition"
REGISTERED_KEY = "_registered"
CANCEL_CHECK_SECONDS = 0.1
_CHUNK = 1024 * 1024


class StepError(Exception):
    """A step that cannot start (an input that cannot be had): it fails with this reason."""


@dataclass(frozen=True)
class _Started:
    """A step started in the transaction that recorded its upstream's success."""

    step: Step
    state: StepState
    given: dict[str, dict[str, Any]]
    key: str
    blobs: tuple[str, ...]  # the inputs to copy from the artifact store before it runs


@dataclass(frozen=True)
class _Done:
    """What a worker tells the scheduling loop: a step's end, and the step it went on with."""

    name: str
    state: StepState | None
    then: _Started | None = None
    error: BaseException | None = None


class PipelineRunner:
    def __init__(self, bus: MessageBus, executor: PipelineExecutor, work_dir: Path,
                 poll_seconds: float = 0.5, keep_work: bool = False) -> None:
        self.bus = bus
        self.executor = executor
        self.work_dir = work_dir
        self.poll_seconds = poll_seconds
        self.keep_work = keep_work
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # The runs this runner executes, as last committed: it is their only writer once it holds
        # them (a cancellation only raises their flag, which a save never lowers), so a change
        # starts from this copy instead of reading the run back first.
        self._held: dict[str, PipelineRun] = {}

    @property
    def store(self) -> ArtifactStore:
        assert self.bus.artifacts is not None, "the runner needs an artifact store"
        return self.bus.artifacts

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Release what the executor holds (the local executor's fork server)."""
        close = getattr(self.executor, "close", None)
        if callable(close):
            close()

    # --- the loop ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        self._stopping = stop
        for run in self.recover():
            if stop.is_set():
                break
            try:
                self.execute(run)
            except Exception:  # noqa: BLE001 - one bad run must not stop the runner
                log.exception("resuming run %s failed", run.id)
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # noqa: BLE001 - one bad round must not stop the runner
                log.exception("a pipeline round failed")
                worked = False
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def recover(self) -> list[PipelineRun]:
        """Take up the runs left Running by a server that stopped (one runner per database, as
        ``run_once`` assumes): each is made ready to resume (steps that were running go back to
        Pending, to start again as a new attempt; steps that had succeeded keep their outputs) and
        returned, to be executed; one that cannot be resumed is marked Failed with the reason, one
        whose cancellation was asked is marked Cancelled."""
        with self.bus.uow_factory(readonly=True) as uow:
            stuck = [r.id for r in uow.pipelines.runs_with_status(str(RunStatus.RUNNING), 10**6)]
        resumed: list[PipelineRun] = []
        for run_id in stuck:
            with self._lock, self.bus.uow_factory() as uow:
                run = uow.pipelines.get_run(run_id)
                if run is None or run.status is not RunStatus.RUNNING:
                    continue
                if run.cancel_requested:
                    self._finish(uow, run, RunStatus.CANCELLED, "cancelled")
                elif (why := self._not_resumable(uow, run)) is not None:
                    self._finish(uow, run, RunStatus.FAILED, why)
                else:
                    resumed.append(self._ready_to_resume(uow, run))
                uow.commit()
        return resumed

    def _not_resumable(self, uow: Any, run: PipelineRun) -> str | None:
        try:
            definition = load_definition(run.definition, name=run.pipeline)
        except CharterError as error:
            return f"{SERVER_STOPPED}; it cannot be resumed: its definition: {error.message}"
        if uow.pipelines.code_of(run.account, run.code_sha256) is None:
            return f"{SERVER_STOPPED}; it cannot be resumed: its code manifest is missing"
        for state in run.steps:
            if state.status is StepStatus.RUNNING and state.attempts > definition.step(state.name).retries + RESUME_LIMIT:
                return (f"{SERVER_STOPPED}; step {state.name!r} was interrupted {RESUME_LIMIT} times beyond its "
                        "retries, so the run is not resumed again")
        return None

    def _ready_to_resume(self, uow: Any, run: PipelineRun) -> PipelineRun:
        current = run
        for state in run.steps:
            if state.status is StepStatus.RUNNING:
                again = current.with_step(replace(
                    state, status=StepStatus.PENDING, finished_at=None,
                    error=f"attempt {state.attempts} was interrupted: the server stopped; it starts again"))
                self._record(uow, current, again, state.name)
                current = again
        # The run itself stays Running; its resumption is an event and an audit record of its own.
        uow.outbox.add(replace(run_event(replace(current, reason=RESUMED), RunStatus.RUNNING),
                               time=self.bus.clock.now()))
        self.bus.trail.append(uow, AuditEntry(
            actor=current.started_by, via=f"pipeline-run:{current.id}", account=current.account,
            action="pipelines:RunResumed", resource=str(current.crn), outcome=Outcome.ALLOWED,
            details={"steps": {s.name: str(s.status) for s in current.steps}}))
        log.info("resuming pipeline run %s after a server stop", current.id)
        return current

    def run_once(self) -> bool:
        """Claim one Pending run and execute it to its end; False when none was pending."""
        with self.bus.uow_factory(readonly=True) as uow:  # a look first: no write lock while idle
            if not uow.pipelines.runs_with_status(str(RunStatus.PENDING), 1):
                return False
        with self.bus.uow_factory() as uow:
            run = uow.pipelines.claim_pending_run()
            if run is None:
                return False
            now = self.bus.clock.now()
            started = run.moved(RunStatus.RUNNING, now)
            self._record(uow, run, started, None)
            uow.commit()
        self.execute(started)
        return True

    # --- persistence ----------------------------------------------------------------------------

    def _record(self, uow: Any, before: PipelineRun, after: PipelineRun, step: str | None, *,
                save: bool = True) -> None:
        if save:
            uow.pipelines.save_run(after)
        details: dict[str, Any]
        if step is None:
            event = run_event(after, before.status)
            action, details = "pipelines:RunStateChanged", {"status": str(after.status), "reason": after.reason}
        else:
            state = after.step(step)
            event = step_event(after, step, before.step(step).status)
            action = "pipelines:StepStateChanged"
            details = {"step": step, "status": str(state.status), "attempts": state.attempts,
                       "cached": state.cached, "outputs": dict(state.outputs), "error": state.error}
        uow.outbox.add(replace(event, time=self.bus.clock.now()))
        self.bus.trail.append(uow, AuditEntry(
            actor=after.started_by, via=f"pipeline-run:{after.id}", account=after.account, action=action,
            resource=str(after.crn) if step is None else f"{after.crn}/{step}",
            outcome=Outcome.ALLOWED, details=details))
        uow.after_commit(self._notify)

    def _notify(self) -> None:
        for listener in self.bus.outbox_listeners:
            listener()

    def _finish(self, uow: Any, run: PipelineRun, status: RunStatus, reason: str) -> PipelineRun:
        now = self.bus.clock.now()
        done = run
        for state in run.steps:
            if not state.status.finished:
                final = StepStatus.FAILED if state.status is StepStatus.RUNNING else StepStatus.SKIPPED
                if status is RunStatus.CANCELLED:
                    final = StepStatus.CANCELLED
                changed = done.with_step(replace(state, status=final, finished_at=now,
                                                 error=state.error or (reason if final is StepStatus.FAILED
                                                                       else None)))
                self._record(uow, done, changed, state.name)
                done = changed
        finished = done.moved(status, now, reason)
        self._record(uow, done, finished, None)
        return finished

    # --- one run -------------------------------------------------------------------------------

    def execute(self, run: PipelineRun) -> PipelineRun:
        run_dir = self.work_dir / run.account / run.id
        # What a stopped server left here (a blob half written) is not trusted: all of it comes
        # again from the artifact store.
        shutil.rmtree(run_dir, ignore_errors=True)
        with self._lock:
            self._held[run.id] = run
        try:
            return _Execution(self, run, run_dir).go()
        finally:
            with self._lock:
                self._held.pop(run.id, None)
            if not self.keep_work:
                shutil.rmtree(run_dir, ignore_errors=True)

    def update(self, run_id: str, change: Callable[..., PipelineRun], step: str | None, *,
               with_uow: bool = False,
               then: Callable[[PipelineRun, Any], tuple[str, PipelineRun] | None] | None = None) -> PipelineRun:
        """Apply ``change`` to the stored run and record it (one transaction, one runner lock);
        ``with_uow`` hands it the unit of work too, for a change that writes more than the run.
        ``then`` may make a second change of another step in the same transaction, recorded after
        the first (its own audit record and event): it returns that step and the run after it."""
        with self._lock, self.bus.uow_factory() as uow:
            before = self._held.get(run_id) or uow.pipelines.get_run(run_id)
            assert before is not None
            after = change(before, uow) if with_uow else change(before)
            following = then(after, uow) if then is not None else None
            self._record(uow, before, after, step, save=following is None)
            if following is not None:
                name, last = following
                self._record(uow, after, last, name)
                after = last
            uow.commit()
            if run_id in self._held:
                self._held[run_id] = after
            return after

    def finish(self, run_id: str, status: RunStatus, reason: str) -> PipelineRun:
        with self._lock, self.bus.uow_factory() as uow:
            run = self._held.get(run_id) or uow.pipelines.get_run(run_id)
            assert run is not None
            done = self._finish(uow, run, status, reason)
            uow.commit()
            if run_id in self._held:
                self._held[run_id] = done
            return done

    def live_log(self, run: PipelineRun, step: str) -> Path | None:
        """The log file of the attempt of ``step`` that runs now in this process, if any."""
        state = run.step(step)
        if state.attempts < 1:
            return None
        path = self.work_dir / run.account / run.id / "steps" / step / f"attempt-{state.attempts}.log"
        return path if path.is_file() else None

    def cancel_requested(self, run_id: str) -> bool:
        with self.bus.uow_factory(readonly=True) as uow:
            run = uow.pipelines.get_run(run_id)
        if run is not None and run.cancel_requested:
            with self._lock:
                if (held := self._held.get(run_id)) is not None:
                    self._held[run_id] = replace(held, cancel_requested=True)
        return run is None or run.cancel_requested


class _Execution:
    def __init__(self, runner: PipelineRunner, run: PipelineRun, run_dir: Path) -> None:
        self.runner = runner
        self.run = run
        self.dir = run_dir
        self.cancel = threading.Event()
        self.definition: PipelineDefinition = load_definition(run.definition, name=run.pipeline)
        self.states: dict[str, StepState] = {s.name: s for s in run.steps}
        self.unmet: str | None = None  # a condition's reason, once one was not met
        self.datasets: set[str] = set()  # CRNs of the dataset versions this run read
        # Outputs this run's steps wrote, by digest: a step that reads one is given a read-only
        # link to that file rather than a copy back out of the artifact store.
        self._produced: dict[str, Path] = {}
        self._blobs = run_dir / "blobs"
        self._blobs_made = False
        self._successors: dict[str, list[Step]] = {
            step.name: [s for s in self.definition.steps if step.name in s.upstream] for step in self.definition.steps}
        self._cancel_checked = 0.0
        self.resumed = any(s.status is not StepStatus.PENDING for s in run.steps)
        if self.resumed:
            self._take_up_where_it_was()

    def _take_up_where_it_was(self) -> None:
        """A resumed run: the conditions already decided and the datasets already read count."""
        for state in self.run.steps:
            verdict = state.metrics.get(CONDITION_KEY)
            if state.status is StepStatus.SUCCEEDED and isinstance(verdict, dict) and not verdict.get("passed"):
                self.unmet = self.unmet or str(verdict.get("reason") or f"the condition {state.name!r} was not met")
        with self.runner.bus.uow_factory(readonly=True) as uow:
            for read in uow.datasets.reads_for_run(self.run.account, self.run.id):
                self.datasets.add(str(CRN(read.account, "data", "dataset", read.dataset, str(read.version))))

    def go(self) -> PipelineRun:
        try:
            self._materialize_code()
        except CharterError as error:
            return self.runner.finish(self.run.id, RunStatus.FAILED, f"the pipeline's code: {error.message}")
        failure: str | None = next((f"step {s.name!r} failed: {s.error or ''}".strip() for s in self.states.values()
                                    if s.status is StepStatus.FAILED), None)
        if any(s.status is StepStatus.CANCELLED for s in self.states.values()):
            self.cancel.set()
        done: queue.Queue[_Done] = queue.Queue()
        running: set[str] = set()
        with ThreadPoolExecutor(max_workers=max(1, self.runner.executor.max_parallel),
                                thread_name_prefix=f"run-{self.run.id[-6:]}") as pool:
            while True:
                if failure is None and not self.cancel.is_set():
                    for step in self._ready(running):
                        running.add(step.name)
                        pool.submit(self._work, step, done)
                if not running:
                    break
                try:
                    news = [done.get(timeout=0.2)]
                    while not done.empty():
                        news.append(done.get_nowait())
                except queue.Empty:
                    news = []
                for news_item in news:
                    if news_item.error is not None:
                        raise news_item.error
                    assert news_item.state is not None
                    running.discard(news_item.name)
                    ended = [(news_item.name, news_item.state)]
                    if (then := news_item.then) is not None:
                        # Started by the worker in the transaction of its upstream's success; it
                        # runs it now (or the cache had it: it is done already).
                        if then.state.status is StepStatus.RUNNING:
                            running.add(then.step.name)
                            self.states[then.step.name] = then.state
                        else:
                            ended.append((then.step.name, then.state))
                    for name, state in ended:
                        self.states[name] = state
                        if state.status is StepStatus.FAILED and failure is None:
                            failure = f"step {name!r} failed: {state.error or ''}".strip()
                            self.cancel.set()
                        verdict = state.metrics.get(CONDITION_KEY)
                        if isinstance(verdict, dict) and not verdict.get("passed") and self.unmet is None:
                            self.unmet = str(verdict.get("reason") or f"the condition {name!r} was not met")
                            self._skip(self.definition.downstream(name), f"the condition {name!r} was not met")
                if not self.cancel.is_set() and (self.runner._stopping.is_set() or self._cancel_asked()):
                    self.cancel.set()
        if self.runner._stopping.is_set():
            return self.runner.finish(self.run.id, RunStatus.FAILED, SERVER_STOPPED)
        if failure is not None:
            return self.runner.finish(self.run.id, RunStatus.FAILED, failure[:2000])
        if self.cancel.is_set():
            return self.runner.finish(self.run.id, RunStatus.CANCELLED, "cancelled")
        if self.unmet is not None:
            return self.runner.finish(self.run.id, RunStatus.SUCCEEDED_NOT_REGISTERED, self.unmet[:2000])
        return self.runner.finish(self.run.id, RunStatus.SUCCEEDED, "")

    def _cancel_asked(self) -> bool:
        """Whether someone asked to cancel the run; the database is asked at most every 0.1 s."""
        now = time.monotonic()
        if now - self._cancel_checked < CANCEL_CHECK_SECONDS:
            return False
        self._cancel_checked = now
        return self.runner.cancel_requested(self.run.id)

    def _ready(self, running: set[str]) -> list[Step]:
        out = []
        for step in self.definition.steps:
            state = self.states[step.name]
            if state.status is not StepStatus.PENDING or step.name in running:
                continue
            if all(self.states[u].status is StepStatus.SUCCEEDED for u in step.upstream):
                out.append(step)
        return out

    def _skip(self, names: set[str], reason: str) -> None:
        for name in sorted(names):
            if self.states[name].status is StepStatus.PENDING:
                self.states[name] = self._set(name, status=StepStatus.SKIPPED, error=reason)

    def _materialize_code(self) -> None:
        code = self.dir / "code"
        with self.runner.bus.uow_factory(readonly=True) as uow:
            manifest = uow.pipelines.code_of(self.run.account, self.run.code_sha256)
        if manifest is None:
            raise CharterError("its code manifest is missing")
        for path, sha in manifest.items():
            target = (code / path).resolve()
            if not target.is_relative_to(code.resolve()):
                raise CharterError(f"{path} lies outside the code directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as f:
                for chunk in self.runner.store.open(self.run.account, sha):
                    f.write(chunk)

    def _blob(self, sha: str) -> Path:
        path = self._blobs / sha
        if not self._blobs_made:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._blobs_made = True
        elif path.exists():
            return path
        if (produced := self._produced.get(sha)) is not None:
            try:
                os.chmod(produced, 0o444)
                os.link(produced, path)
                return path
            except FileExistsError:
                return path
            except OSError:
                pass  # another filesystem, a file gone: copied from the store below
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.part")
            with tmp.open("wb") as f:
                for chunk in self.runner.store.open(self.run.account, sha):
                    f.write(chunk)
            tmp.replace(path)
        return path

    # --- inputs ----------------------------------------------------------------------------------

    def _inputs(self, step: Step) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The step's inputs, copied into the run's directory (a dataset read as its starter)."""
        given, digests, blobs = self._plan(step, self.states, read_datasets=True)
        for sha in blobs:
            self._blob(sha)
        return given, digests

    def _plan(self, step: Step, states: dict[str, StepState], *, read_datasets: bool
              ) -> tuple[dict[str, dict[str, Any]], dict[str, str], tuple[str, ...]]:
        """The step's inputs as it will be given them and their digests, before anything is copied
        (the blobs to copy are returned); a dataset is read only with ``read_datasets`` (a read is
        a transaction of its own), StepError otherwise."""
        given: dict[str, dict[str, Any]] = {}
        digests: dict[str, str] = {}
        blobs: list[str] = []
        for key, ref in step.inputs.items():
            if ref.kind is InputKind.PARAM:
                value = self.run.parameters[ref.name]
                given[key] = {"kind": "value", "value": value}
                digests[key] = "param:" + value_digest(value)
                continue
            if ref.kind is InputKind.STEP:
                assert ref.output is not None
                sha = states[ref.name].outputs[ref.output]
                producer = self.definition.step(ref.name).output(ref.output)
                given[key] = {"kind": "file", "path": str(self.dir / "blobs" / sha),
                              "json": producer is not None and producer.kind is OutputKind.METRICS}
            elif read_datasets:
                sha = self._dataset(dataset_of(ref, self.run.parameters))
                given[key] = {"kind": "file", "path": str(self.dir / "blobs" / sha)}
            else:
                raise StepError(f"input {key!r} is a dataset: it is read before the step starts")
            digests[key] = sha
            blobs.append(sha)
        return given, digests, tuple(blobs)

    def _dataset_account(self, ref: InputRef) -> str:
        if ref.account:
            return ref.account
        with self.runner.bus.uow_factory(readonly=True) as uow:
            accounts = [a.name for a in uow.org.load_state().accounts.values()
                        if a.kind is AccountKind.DATA_GOVERNANCE
                        and uow.datasets.get_dataset(a.name, ref.name) is not None]
        if len(accounts) != 1:
            raise StepError(f"dataset {ref.name!r}: " + ("no data-governance account holds it" if not accounts
                            else f"held by {', '.join(sorted(accounts))}; name the account"))
        return accounts[0]

    def _dataset(self, ref: InputRef) -> str:
        """Read a governed dataset as whoever started the run: the grant is checked, the read
        audited and kept as lineage with the run id."""
        account = self._dataset_account(ref)
        identity = Identity(principal=self.run.started_by, credential_id=f"pipeline-run:{self.run.id}")
        try:
            download = self.runner.bus.handle(c.ReadDataset(account, ref.name, self.run.account, ref.version,
                                                            run=self.run.id), identity)
        except CharterError as error:
            raise StepError(f"dataset {ref.name!r} cannot be read: {error.message}") from None
        sha: str = download.version.sha256
        self.datasets.add(str(download.version.crn))
        path = self.dir / "blobs" / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            for chunk in download.chunks:
                f.write(chunk)
        return sha

    # --- one step ------------------------------------------------------------------------------

    def _set(self, name: str, **changes: Any) -> StepState:
        return self.runner.update(self.run.id, lambda r: r.with_step(replace(r.step(name), **changes)),
                                  name).step(name)

    def _work(self, step: Step, done: queue.Queue[_Done]) -> None:
        """A worker: runs ``step``, then the step its success started, and so on down a chain,
        telling the scheduling loop of each end."""
        started: _Started | None = None
        while True:
            try:
                state, started = self._step(step, started)
            except BaseException as error:  # noqa: BLE001 - handed to the loop, which raises it
                done.put(_Done(step.name, None, error=error))
                return
            done.put(_Done(step.name, state, started))
            if started is None or started.state.status is not StepStatus.RUNNING:
                return
            step = started.step

    def _start(self, run: PipelineRun, uow: Any, step: Step, key: str, first: int) -> PipelineRun:
        """The step's start: the cache is looked up in the transaction that records it (one
        transaction per start, not two); a hit is the step's success at once."""
        now = self.runner.bus.clock.now()
        hit = uow.pipelines.get_cached(self.run.account, key) if step.kind is not StepKind.REGISTER_MODEL else None
        if hit is not None:
            return run.with_step(replace(run.step(step.name), status=StepStatus.SUCCEEDED, started_at=now,
                                         finished_at=now, outputs=hit[0], metrics=hit[1], cached=True,
                                         error=None))
        return run.with_step(replace(run.step(step.name), status=StepStatus.RUNNING, attempts=first,
                                     started_at=now, error=None))

    def _step(self, step: Step, started: _Started | None = None) -> tuple[StepState, _Started | None]:
        """Run ``step`` (``started``: already started by its upstream's success) to its end; the
        step its success started in the same transaction comes back with its state."""
        clock = self.runner.bus.clock
        if started is None:
            try:
                given, digests = self._inputs(step)
            except (StepError, CharterError) as refused:
                message = str(refused) if isinstance(refused, StepError) else refused.message
                return self._set(step.name, status=StepStatus.FAILED, started_at=clock.now(),
                                 finished_at=clock.now(), error=message), None
            key = cache_key(step, self.run.code_sha256, digests)
            first = self.states[step.name].attempts + 1
            state = self.runner.update(self.run.id, lambda run, uow: self._start(run, uow, step, key, first),
                                       step.name, with_uow=True).step(step.name)
            if state.status is StepStatus.SUCCEEDED:
                return state, None
        else:
            given, key, state, first = started.given, started.key, started.state, started.state.attempts
            try:
                for sha in started.blobs:
                    self._blob(sha)
            except CharterError as refused:
                return self._set(step.name, status=StepStatus.FAILED, finished_at=clock.now(),
                                 error=refused.message), None
        last = first + step.retries
        for attempt in range(first, last + 1):
            if attempt > first:
                state = self._set(step.name, status=StepStatus.RUNNING, attempts=attempt,
                                  started_at=clock.now(), error=None)
            result = self._attempt(step, attempt, given)
            log_sha = self._store_log(step, attempt)
            if result.ok:
                return self._succeeded(step, key, result, log_sha)
            error = (result.error or "the step failed") + (f"\n{result.log_tail}" if result.log_tail else "")
            if result.cancelled or self.cancel.is_set():
                return self._set(step.name, status=StepStatus.CANCELLED, finished_at=clock.now(),
                                 log_sha256=log_sha, error=result.error), None
            if attempt == last:
                return self._set(step.name, status=StepStatus.FAILED, finished_at=clock.now(),
                                 log_sha256=log_sha, error=error[-4000:]), None
            log.info("run %s step %s attempt %d failed; retrying", self.run.id, step.name, attempt)
        return state, None

    def _next(self, done: Step, run: PipelineRun, uow: Any) -> tuple[_Started, PipelineRun] | None:
        """In the transaction that records ``done``'s success: start the first step it made ready
        (all its upstream succeeded, none of its inputs a dataset), unless the run is stopping,
        failing, cancelled or a condition was not met (the scheduling loop decides those)."""
        if self.cancel.is_set() or self.runner._stopping.is_set() or self.unmet is not None:
            return None
        states = {s.name: s for s in run.steps}
        for state in run.steps:
            verdict = state.metrics.get(CONDITION_KEY)
            if state.status in (StepStatus.FAILED, StepStatus.CANCELLED) or (
                    isinstance(verdict, dict) and not verdict.get("passed")):
                return None
        for step in self._successors[done.name]:
            if states[step.name].status is not StepStatus.PENDING:
                continue
            if not all(states[u].status is StepStatus.SUCCEEDED for u in step.upstream):
                continue
            try:
                given, digests, blobs = self._plan(step, states, read_datasets=False)
            except StepError:
                continue  # its dataset is read by the loop's own start of it
            key = cache_key(step, self.run.code_sha256, digests)
            after = self._start(run, uow, step, key, states[step.name].attempts + 1)
            return _Started(step, after.step(step.name), given, key, blobs), after
        return None

    def _attempt(self, step: Step, attempt: int, given: dict[str, dict[str, Any]]) -> StepResult:
        step_dir = self.dir / "steps" / step.name
        job = StepJob(
            run_id=self.run.id, step=step.name, attempt=attempt, kind=str(step.kind),
            code_dir=str(self.dir / "code"), entry_point=step.entry_point, inputs=given,
            outputs={o.name: str(o.kind) for o in step.outputs},
            output_dir=str(step_dir / f"attempt-{attempt}"), log_path=str(step_dir / f"attempt-{attempt}.log"),
            timeout_seconds=step.timeout_seconds)
        step_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            result = self.runner.executor.run_step(job, self.cancel)
        except Exception as error:  # noqa: BLE001 - the executor itself broke (a cluster unreachable ...)
            # A failed attempt with the reason (retried as any), never a run left Running for good.
            log.exception("run %s step %s attempt %d: the executor failed", self.run.id, step.name, attempt)
            result = StepResult(False, {}, {}, error=f"the executor could not run the step: "
                                                     f"{type(error).__name__}: {error}"[:2000])
        log.debug("run %s step %s attempt %d took %.3f s", self.run.id, step.name, attempt,
                  time.monotonic() - started)
        return result

    def _store_log(self, step: Step, attempt: int) -> str | None:
        """The attempt's log in the artifact store; None when it printed nothing."""
        path = self.dir / "steps" / step.name / f"attempt-{attempt}.log"
        try:
            if os.stat(path).st_size == 0:
                return None
        except FileNotFoundError:
            return None
        with path.open("rb") as f:
            return self.runner.store.put(self.run.account, iter(lambda: f.read(_CHUNK), b"")).sha256

    def _register(self, step: Step, outputs: dict[str, str], metrics: dict[str, Any]) -> dict[str, Any]:
        """Register what a register-model step described (its ``registration`` metrics output) in
        the run's account, as whoever started the run, with the run's lineage."""
        spec = metrics.get("registration")
        if not isinstance(spec, dict) or not isinstance(spec.get("group"), str):
            raise StepError("a register-model step returns {'registration': {'group': …, 'model': "
                            "<artifact output>, …}}")
        fmt = str(spec.get("format", "skops"))
        model_output = str(spec.get("model", "model"))
        if model_output not in outputs:
            raise StepError(f"the step has no artifact output {model_output!r} holding the model")
        artifacts = [c.ArtifactRef(f"model.{fmt}", outputs[model_output])]
        # Extra artifacts: output names, or {path in the package: output name} to name the file.
        extra = spec.get("extra_artifacts") or []
        for path, name in (extra.items() if isinstance(extra, dict) else ((n, n) for n in extra)):
            if name in outputs and name != model_output:
                artifacts.append(c.ArtifactRef(str(path), outputs[name]))
        numbers = {k: float(v) for k, v in (spec.get("metrics") or {}).items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        identity = Identity(principal=self.run.started_by, credential_id=f"pipeline-run:{self.run.id}")
        if self.resumed and (earlier := self._registered_before(spec["group"])) is not None:
            return earlier  # registered before the server stopped, not yet recorded as the step's success
        package = self.runner.bus.handle(c.RegisterModelPackage(
            self.run.account, spec["group"], fmt, tuple(artifacts),
            signature=spec.get("signature") if isinstance(spec.get("signature"), dict) else None,
            metrics=tuple(sorted(numbers.items())),
            sample_payload=spec.get("sample_payload") if isinstance(spec.get("sample_payload"), dict) else None,
            description=str(spec.get("description", ""))[:2000], run=self.run.id, run_started_by=self.run.started_by,
            datasets=tuple(sorted(self.datasets)),
            product_version=str(spec["product_version"]) if spec.get("product_version") else None,
            parameters=tuple(sorted(self.run.parameters.items()))), identity)
        return {"group": package.group, "version": package.version, "status": str(package.status),
                "crn": str(package.crn)}

    def _registered_before(self, group: str) -> dict[str, Any] | None:
        with self.runner.bus.uow_factory(readonly=True) as uow:
            after: int | None = None
            while page := uow.registry.list_packages(self.run.account, group, after, 500):
                for package in page:
                    if package.lineage.run == self.run.id:
                        return {"group": package.group, "version": package.version,
                                "status": str(package.status), "crn": str(package.crn)}
                after = page[-1].version
        return None

    def _succeeded(self, step: Step, key: str, result: StepResult,
                   log_sha: str | None) -> tuple[StepState, _Started | None]:
        outputs: dict[str, str] = {}
        for name, file in result.outputs.items():
            with open(file, "rb") as f:
                outputs[name] = self.runner.store.put(self.run.account, iter(lambda: f.read(_CHUNK), b"")).sha256
            self._produced[outputs[name]] = Path(file)
        metrics: dict[str, Any] = dict(result.metrics)
        if result.condition is not None:
            metrics[CONDITION_KEY] = {"passed": result.condition[0], "reason": result.condition[1]}
        if step.kind is StepKind.REGISTER_MODEL:
            try:
                metrics[REGISTERED_KEY] = self._register(step, outputs, metrics)
            except (StepError, CharterError) as refused:
                message = str(refused) if isinstance(refused, StepError) else refused.message
                return self._set(step.name, status=StepStatus.FAILED, finished_at=self.runner.bus.clock.now(),
                                 log_sha256=log_sha, error=f"registering the model: {message}"), None
        now = self.runner.bus.clock.now()

        def succeed(run: PipelineRun, uow: Any) -> PipelineRun:
            # The cache entry and the step's success in one transaction: neither is seen without the other.
            uow.pipelines.put_cached(self.run.account, key, outputs, metrics, self.run.id, now)
            return run.with_step(replace(run.step(step.name), status=StepStatus.SUCCEEDED, finished_at=now,
                                         outputs=outputs, metrics=metrics, log_sha256=log_sha, cached=False))

        following: list[_Started] = []

        def then(run: PipelineRun, uow: Any) -> tuple[str, PipelineRun] | None:
            chained = self._next(step, run, uow)
            if chained is None:
                return None
            following.append(chained[0])
            return chained[0].step.name, chained[1]

        run = self.runner.update(self.run.id, succeed, step.name, with_uow=True, then=then)
        return run.step(step.name), (following[0] if following else None)
