"""Pipeline runs end to end on a real store, artifact store and local executor."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from charter.domain import commands as c
from charter.domain.pipelines import PipelineRun, RunStatus, StepStatus
from charter.errors import InvalidTransition, PermissionDenied, ValidationError
from charter.services.pipeline_runner import PipelineRunner
from tests.integration.conftest import Org
from tests.pipelines_support import CODE, DEFINITION, FAILING, PARALLEL


def _create(org: Org, definition: str = DEFINITION, name: str = "tiny", who: str = "lena") -> None:
    org.bus.handle(c.CreatePipeline("ml-dev", name, definition, CODE), org.identity(who))


def _start(org: Org, name: str = "tiny", who: str = "lena", **params: str) -> PipelineRun:
    run: PipelineRun = org.bus.handle(c.StartPipelineRun("ml-dev", name, params), org.identity(who))
    return run


def _run(org: Org, run_id: str) -> PipelineRun:
    assert org.platform.pipelines.run_once()
    run: PipelineRun = org.bus.handle(c.GetPipelineRun("ml-dev", run_id), org.identity("lena"))
    return run


def _events(org: Org, kind: str) -> list[dict[str, object]]:
    from sqlalchemy import select

    from charter.adapters.db import tables as t
    with org.platform.engine.connect() as conn:
        rows = conn.execute(select(t.outbox.c.data).where(t.outbox.c.type == kind).order_by(t.outbox.c.time))
        return [dict(r.data) for r in rows]


def test_a_run_executes_every_step_and_keeps_outputs_metrics_and_logs(org: Org) -> None:
    _create(org)
    run = _run(org, _start(org).id)
    assert run.status is RunStatus.SUCCEEDED, run.reason
    assert [s.status for s in run.steps] == [StepStatus.SUCCEEDED] * 4
    train = run.step("train")
    assert set(train.outputs) == {"model", "metrics"}
    assert train.metrics["metrics"] == {"accuracy": 0.9, "rows": 10}
    assert org.platform.artifacts.stat("ml-dev", train.outputs["model"]) is not None
    log = b"".join(org.bus.handle(c.GetStepLog("ml-dev", run.id, "prepare"), org.identity("sam")).chunks)
    assert b"preparing 10 rows" in log
    statuses = [e["status"] for e in _events(org, "charter.pipelines.run.state-changed") if e["run"] == run.id]
    assert statuses == ["Pending", "Running", "Succeeded"]
    steps = [(e["step"], e["status"]) for e in _events(org, "charter.pipelines.step.state-changed")]
    assert ("register", "Succeeded") in steps and ("prepare", "Running") in steps


def test_each_step_change_of_a_chain_is_audited_and_emitted_in_order(org: Org) -> None:
    # A step's success and the start of the step it makes ready share a transaction: each is
    # still a record and an event of its own, the success first.
    _create(org)
    run = _run(org, _start(org).id)
    assert run.status is RunStatus.SUCCEEDED, run.reason
    expected = [(name, status) for name in ("prepare", "train", "gate", "register")
                for status in ("Running", "Succeeded")]
    with org.bus.uow_factory(readonly=True) as uow:
        records = uow.audit.find(c.AuditFilter(action="pipelines:StepStateChanged"), None, 1000)
    assert [(r.details["step"], r.details["status"]) for r in records if run.id in r.via] == expected
    events = [e for e in _events(org, "charter.pipelines.step.state-changed") if e["run"] == run.id]
    assert sorted((e["step"], e["status"]) for e in events) == sorted(expected)
    train = next(r for r in records if r.details["step"] == "train" and r.details["status"] == "Running")
    prepared = next(r for r in records if r.details["step"] == "prepare" and r.details["status"] == "Succeeded")
    assert train.seq == prepared.seq + 1  # recorded together, right after it


def test_a_second_run_with_the_same_inputs_reuses_every_step(org: Org) -> None:
    _create(org)
    first = _run(org, _start(org).id)
    second = _run(org, _start(org, who="sam").id)
    assert second.status is RunStatus.SUCCEEDED
    assert all(s.cached for s in second.steps)
    assert second.step("train").outputs == first.step("train").outputs
    third = _run(org, _start(org, n="12").id)
    assert not third.step("prepare").cached and not third.step("train").cached
    # The model is the same bytes as before (half the labels are ones): registering it is reused.
    assert third.step("register").cached


def test_a_condition_not_met_skips_registration_and_gives_the_reason(org: Org) -> None:
    _create(org)
    run = _run(org, _start(org, threshold="0.95").id)
    assert run.status is RunStatus.SUCCEEDED_NOT_REGISTERED
    assert "accuracy 0.9 against 0.95" in run.reason
    assert run.step("register").status is StepStatus.SKIPPED


def test_a_crashing_step_is_retried_then_fails_the_run_with_its_traceback(org: Org) -> None:
    _create(org, FAILING, "failing")
    run = _run(org, _start(org, "failing").id)
    assert run.status is RunStatus.FAILED
    crash = run.step("crash")
    assert crash.status is StepStatus.FAILED and crash.attempts == 2
    assert "ValueError: boom in the step" in (crash.error or "")
    assert "step 'crash' failed" in run.reason


def test_independent_branches_run_in_parallel(org: Org) -> None:
    _create(org, PARALLEL, "wide")
    started = time.monotonic()
    run = _run(org, _start(org, "wide").id)
    parallel = time.monotonic() - started
    assert run.status is RunStatus.SUCCEEDED
    serial_runner = PipelineRunner(org.bus, replace_parallel(org, 1), org.platform.settings.data_dir / "serial")
    second = _start(org, "wide", seconds="0.81")
    started = time.monotonic()
    assert serial_runner.run_once()
    serial = time.monotonic() - started
    assert serial > 3 * 0.8
    assert parallel < serial - 0.8, (parallel, serial)
    assert org.bus.handle(c.GetPipelineRun("ml-dev", second.id), org.identity("lena")).status is RunStatus.SUCCEEDED


def replace_parallel(org: Org, n: int) -> object:
    from charter.adapters.executors.local import LocalExecutor

    # The same imports as the platform's executor, so both runs pay its fork server's start alike.
    return LocalExecutor(n, preload=tuple(org.platform.settings.pipeline_preload_modules))


def test_bad_parameters_are_refused_before_anything_runs(org: Org) -> None:
    _create(org)
    with pytest.raises(ValidationError, match="unknown parameter 'depth'"):
        _start(org, depth="3")
    assert not org.platform.pipelines.run_once()


def test_a_definition_with_an_unknown_entry_point_is_refused_and_nothing_is_stored(org: Org) -> None:
    with pytest.raises(ValidationError, match="unknown entry point 'steps:fit'"):
        _create(org, "steps: [{name: a, entry_point: 'steps:fit'}]", "broken")
    page = org.bus.handle(c.ListPipelines("ml-dev"), org.identity("lena"))
    assert page.items == []


def test_only_builders_start_runs(org: Org) -> None:
    _create(org)
    with pytest.raises(PermissionDenied):
        _start(org, who="priya")
    assert org.bus.handle(c.ListPipelineRuns("ml-dev", "tiny"), org.identity("priya")).items == []


def test_a_pending_run_is_cancelled_at_once(org: Org) -> None:
    _create(org)
    run = _start(org)
    cancelled = org.bus.handle(c.CancelPipelineRun("ml-dev", run.id), org.identity("sam"))
    assert cancelled.status is RunStatus.CANCELLED
    assert not org.platform.pipelines.run_once()
    with pytest.raises(InvalidTransition):
        org.bus.handle(c.CancelPipelineRun("ml-dev", run.id), org.identity("sam"))


def test_a_running_run_is_cancelled_and_its_steps_killed(org: Org) -> None:
    _create(org, PARALLEL, "wide")
    run = _start(org, "wide", seconds="30")
    worker = threading.Thread(target=org.platform.pipelines.run_once)
    worker.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = org.bus.handle(c.GetPipelineRun("ml-dev", run.id), org.identity("lena"))
        if any(s.status is StepStatus.RUNNING for s in now.steps):
            break
        time.sleep(0.05)
    org.bus.handle(c.CancelPipelineRun("ml-dev", run.id), org.identity("lena"))
    worker.join(15)
    assert not worker.is_alive()
    done = org.bus.handle(c.GetPipelineRun("ml-dev", run.id), org.identity("lena"))
    assert done.status is RunStatus.CANCELLED
    assert {s.status for s in done.steps} == {StepStatus.CANCELLED}


def _left_running(org: Org, *, succeeded: tuple[str, ...] = (), running: str = "",
                  attempts: int = 1) -> str:
    """A run as a server killed mid-run leaves it: some steps succeeded, one Running. Its id."""
    from sqlalchemy import delete

    from charter.adapters.db import tables as t

    first = _run(org, _start(org).id)  # real outputs for the steps said to have succeeded
    run_id = _start(org, n="14").id
    with org.platform.engine.begin() as conn:
        conn.execute(delete(t.pipeline_step_cache))  # what runs again really runs
    with org.bus.uow_factory() as uow:
        stored = uow.pipelines.get_run(run_id)
        assert stored is not None
        run = stored.moved(RunStatus.RUNNING, stored.created_at)
        for name in succeeded:
            run = run.with_step(replace(first.step(name), cached=False))
        if running:
            run = run.with_step(replace(run.step(running), status=StepStatus.RUNNING, attempts=attempts))
        uow.pipelines.save_run(run)
        uow.commit()
    return run_id


def test_a_run_left_running_by_a_stopped_server_is_resumed_keeping_what_had_succeeded(org: Org) -> None:
    _create(org)
    run_id = _left_running(org, succeeded=("prepare",), running="train")
    resumed = org.platform.pipelines.recover()
    assert [r.id for r in resumed] == [run_id]
    assert resumed[0].step("train").status is StepStatus.PENDING
    assert "attempt 1 was interrupted" in (resumed[0].step("train").error or "")
    before = resumed[0].step("prepare")
    done = org.platform.pipelines.execute(resumed[0])
    assert done.status is RunStatus.SUCCEEDED, done.reason
    assert done.step("prepare") == before  # not run again: its outputs kept
    assert done.step("train").attempts == 2 and done.step("train").status is StepStatus.SUCCEEDED
    events = [e for e in _events(org, "charter.pipelines.run.state-changed") if e["run"] == run_id]
    assert [(e["status"], e["reason"]) for e in events][-2:] == [("Running", "resumed after the server stopped"),
                                                                  ("Succeeded", "")]


def test_a_run_whose_step_keeps_bringing_its_server_down_is_marked_failed_with_the_reason(org: Org) -> None:
    _create(org)
    run_id = _left_running(org, succeeded=("prepare",), running="train", attempts=4)
    assert org.platform.pipelines.recover() == []
    done = org.bus.handle(c.GetPipelineRun("ml-dev", run_id), org.identity("lena"))
    assert done.status is RunStatus.FAILED
    assert done.reason == ("the server stopped during the run; step 'train' was interrupted 3 times beyond "
                           "its retries, so the run is not resumed again")
    assert done.step("train").status is StepStatus.FAILED
    assert done.step("gate").status is StepStatus.SKIPPED


def test_a_run_left_running_whose_cancellation_was_asked_is_cancelled_not_resumed(org: Org) -> None:
    _create(org)
    run_id = _left_running(org, running="prepare")
    with org.bus.uow_factory() as uow:
        stored = uow.pipelines.get_run(run_id)
        assert stored is not None
        uow.pipelines.save_run(replace(stored, cancel_requested=True))
        uow.commit()
    assert org.platform.pipelines.recover() == []
    done = org.bus.handle(c.GetPipelineRun("ml-dev", run_id), org.identity("lena"))
    assert done.status is RunStatus.CANCELLED
    assert {s.status for s in done.steps} == {StepStatus.CANCELLED}


INGEST = """
steps:
  - name: ingest
    kind: processing
    entry_point: steps:count
    inputs: {data: "dataset:bank-marketing"}
    outputs: {stats: metrics}
"""
INGEST_CODE = {"steps.py": b"def count(data):\n    print(data.read_text().splitlines()[0])\n"
                           b"    return {'rows': len(data.read_text().splitlines()) - 1}\n"}
CSV = b"age,y\n30,0\n41,1\n52,1\n"


def _register_dataset(org: Org) -> None:
    diego = org.identity("diego")
    uploaded = org.bus.handle(c.UploadDataset("data-governance", "bank-marketing", "csv", iter([CSV]), 10**6), diego)
    org.bus.handle(c.RegisterDatasetVersion("data-governance", "bank-marketing", "csv", uploaded.blob.sha256), diego)


def test_a_dataset_without_a_grant_stops_the_run_at_ingestion_with_the_reason(org: Org) -> None:
    _register_dataset(org)
    org.bus.handle(c.CreatePipeline("ml-dev", "ingest", INGEST, INGEST_CODE), org.identity("lena"))
    run = _run(org, _start(org, "ingest").id)
    assert run.status is RunStatus.FAILED
    error = run.step("ingest").error or ""
    assert "dataset 'bank-marketing' cannot be read" in error and "no-grant-no-read" in error
    assert run.step("ingest").attempts == 0


def test_a_granted_dataset_is_read_as_the_starter_and_kept_as_lineage_of_the_run(org: Org) -> None:
    _register_dataset(org)
    sub = org.bus.handle(c.Subscribe("data-governance", "bank-marketing", "ml-dev", "churn"), org.identity("lena"))
    org.bus.handle(c.DecideSubscription("data-governance", sub.id, "Approved", "ok", 86400), org.identity("diego"))
    org.bus.handle(c.CreatePipeline("ml-dev", "ingest", INGEST, INGEST_CODE), org.identity("lena"))
    run = _run(org, _start(org, "ingest", who="sam").id)
    assert run.status is RunStatus.SUCCEEDED, run.reason
    assert run.step("ingest").metrics["stats"] == {"rows": 3}
    reads = org.bus.handle(c.ListDatasetReads("data-governance", "bank-marketing"), org.identity("diego")).items
    assert [(r.run, r.reader, r.for_account) for r in reads] == [(run.id, "sam", "ml-dev")]


class _Unreachable:
    """An executor whose cluster cannot be reached: every attempt raises."""

    max_parallel = 2
    attempts = 0

    def run_step(self, job: object, cancel: threading.Event) -> object:
        self.attempts += 1
        raise ConnectionAbortedError("Initialization failure from server: Starting Ray client server failed")


def test_an_executor_that_raises_fails_the_step_and_the_run_with_the_reason_not_leaving_it_running(
        org: Org) -> None:
    runner = org.platform.pipelines
    executor = _Unreachable()
    runner.executor = executor  # type: ignore[assignment]
    _create(org, FAILING, name="unreachable")
    run = _run(org, _start(org, name="unreachable").id)
    assert run.status is RunStatus.FAILED, run.reason
    assert "the executor could not run the step: ConnectionAbortedError" in run.reason
    failed = next(s for s in run.steps if s.status is StepStatus.FAILED)
    assert executor.attempts == failed.attempts == 2  # retried as any failed attempt
    assert "Starting Ray client server failed" in (failed.error or "")
