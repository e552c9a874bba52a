"""The pipeline repository on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from charter.bootstrap import Platform
from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.domain.pipelines import Pipeline, RunStatus, StepState, StepStatus, new_run
from charter.services.pipeline_spec import load_definition
from tests.integration.conftest import Org
from tests.pipelines_support import CODE, DEFINITION

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _pipeline(version: int = 1, code: str = "c" * 64) -> Pipeline:
    return Pipeline("ml-dev", "tiny", DEFINITION, "d" * 64, code, "lena", T0, version)


def _seed(platform: Platform) -> None:
    with platform.bus.uow_factory() as uow:
        uow.pipelines.put_pipeline(_pipeline(), {"steps.py": "a" * 64})
        uow.commit()


def test_a_pipeline_and_its_code_manifest_round_trip_and_a_new_version_replaces_it(org: Org) -> None:
    platform = org.platform
    _seed(platform)
    with platform.bus.uow_factory() as uow:
        uow.pipelines.put_pipeline(_pipeline(2, "e" * 64), {"steps.py": "b" * 64})
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.pipelines.get_pipeline("ml-dev", "tiny") == _pipeline(2, "e" * 64)
        assert uow.pipelines.code_of("ml-dev", "c" * 64) == {"steps.py": "a" * 64}  # old runs keep theirs
        assert uow.pipelines.code_of("ml-dev", "e" * 64) == {"steps.py": "b" * 64}
        assert [p.name for p in uow.pipelines.list_pipelines("ml-dev", None, 10)] == ["tiny"]


def test_runs_round_trip_newest_first_and_pending_ones_are_claimed_oldest_first(org: Org) -> None:
    platform = org.platform
    _seed(platform)
    definition = load_definition(DEFINITION, CODE)
    runs = [new_run(f"{i:032x}", _pipeline(), definition, {"n": str(i)}, "lena", T0.replace(minute=i))
            for i in (1, 2)]
    with platform.bus.uow_factory() as uow:
        for run in runs:
            uow.pipelines.add_run(run)
        uow.commit()
    with platform.bus.uow_factory() as uow:
        assert uow.pipelines.get_run(runs[0].id) == runs[0]
        assert [r.id for r in uow.pipelines.list_runs("ml-dev", "tiny", None, 10)] == [runs[1].id, runs[0].id]
        assert [r.id for r in uow.pipelines.list_runs("ml-dev", "tiny", runs[1].id, 10)] == [runs[0].id]
        claimed = uow.pipelines.claim_pending_run()
        assert claimed is not None and claimed.id == runs[0].id
        state = StepState("prepare", StepStatus.SUCCEEDED, 1, T0, T0, {"table": "f" * 64}, {"m": {"x": 1.5}},
                          False, "0" * 64, None)
        uow.pipelines.save_run(claimed.moved(RunStatus.RUNNING, T0).with_step(state))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        stored = uow.pipelines.get_run(runs[0].id)
        assert stored is not None and stored.status is RunStatus.RUNNING
        assert stored.step("prepare") == state
        assert [r.id for r in uow.pipelines.runs_with_status("Running", 10)] == [runs[0].id]


def test_a_runner_save_never_clears_a_cancellation_request(org: Org) -> None:
    platform = org.platform
    _seed(platform)
    run = new_run("a" * 32, _pipeline(), load_definition(DEFINITION), {}, "lena", T0)
    with platform.bus.uow_factory() as uow:
        uow.pipelines.add_run(run)
        uow.pipelines.request_cancel(run.id)
        uow.pipelines.save_run(replace(run, reason="stale copy"))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        stored = uow.pipelines.get_run(run.id)
        assert stored is not None and stored.cancel_requested and stored.reason == "stale copy"


def test_the_step_cache_keeps_the_first_result_under_a_key(org: Org) -> None:
    platform = org.platform
    with platform.bus.uow_factory() as uow:
        uow.pipelines.put_cached("ml-dev", "k" * 64, {"o": "1" * 64}, {"m": {"a": 1}}, "r1", T0)
        uow.pipelines.put_cached("ml-dev", "k" * 64, {"o": "2" * 64}, {}, "r2", T0)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.pipelines.get_cached("ml-dev", "k" * 64) == ({"o": "1" * 64}, {"m": {"a": 1}})
        assert uow.pipelines.get_cached("ml-test", "k" * 64) is None


def test_creating_a_pipeline_stores_each_code_file_content_addressed(org: Org) -> None:
    pipeline = org.bus.handle(c.CreatePipeline("ml-dev", "tiny", DEFINITION, CODE), org.identity("lena"))
    with org.platform.bus.uow_factory(readonly=True) as uow:
        manifest = uow.pipelines.code_of("ml-dev", pipeline.code_sha256)
    assert manifest is not None and set(manifest) == set(CODE)
    blob = b"".join(org.platform.artifacts.open("ml-dev", manifest["steps.py"]))
    assert blob == CODE["steps.py"]
    again = org.bus.handle(c.CreatePipeline("ml-dev", "tiny", DEFINITION, CODE), Identity("sam", "x"))
    assert again.version == 2 and again.code_sha256 == pipeline.code_sha256
