"""The Ray executor against a real local Ray cluster the tests start (loopback only, 2 CPUs, a small
object store), reached through Ray Client as a remote cluster would be: the same contract as the
local executor (outputs, logs, exit status, log tail, timeout, cancellation), a DAG run by the
runner, and the train-from-dataset pipeline registering a real model."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from charter.adapters.executors.ray import RayExecutor
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.pipelines import PipelineRun, RunStatus, StepStatus
from charter.services.ports import StepJob
from tests.integration.conftest import Org
from tests.integration.test_train_from_dataset import TEMPLATE, _code
from tests.pipelines_support import CODE, DEFINITION, process_alive, step_job
from tests.ray_cluster import RayCluster

# One cluster for the whole session: xdist runs a file's tests on one worker (`--dist loadfile` in
# pyproject.toml), so one cluster serves them all (two would not fit in 2 CPUs).

STEPS = '''
import subprocess
import sys
import time


def write(n, outputs):
    print("writing", n)
    (outputs / "out").write_text(str(int(n) * 2))
    return {"metrics": {"n": int(n)}}


def crash():
    print("before the crash")
    raise RuntimeError("the step broke")


def hang():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(f"child {child.pid}, now sleeping", flush=True)
    time.sleep(60)


def chatty():
    for i in range(40):
        print(f"line {i}", flush=True)
        time.sleep(0.1)
'''


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = RayCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def executor(ray_cluster: RayCluster) -> Iterator[RayExecutor]:
    made = RayExecutor(ray_cluster.address, max_parallel=2)
    yield made
    made.close()


def _job(code_dir: Path, entry: str, **options: Any) -> StepJob:
    # Ray schedules a task on a worker before it runs: a minute rather than the local 30 s.
    return step_job(code_dir, entry, **{"timeout": 60.0, **options})


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    root.mkdir()
    (root / "steps.py").write_text(STEPS)
    return root


def test_a_step_on_ray_writes_its_outputs_metrics_and_log_on_the_server(executor: RayExecutor, code_dir: Path) -> None:
    job = _job(code_dir, "steps:write", inputs={"n": "21"}, outputs={"out": "artifact", "metrics": "metrics"})
    result = executor.run_step(job, threading.Event())
    assert result.ok, result.log_tail
    assert Path(result.outputs["out"]).read_text() == "42"
    assert Path(result.outputs["out"]).is_relative_to(job.output_dir)
    assert result.metrics == {"metrics": {"n": 21}}
    assert "writing 21" in Path(job.log_path).read_text()


def test_a_crashing_step_on_ray_fails_with_its_exit_code_and_traceback_tail(executor: RayExecutor, code_dir: Path) -> None:
    result = executor.run_step(_job(code_dir, "steps:crash"), threading.Event())
    assert not result.ok
    assert "exit code 1" in (result.error or "")
    assert "RuntimeError: the step broke" in result.log_tail
    assert "before the crash" in result.log_tail


def test_a_step_on_ray_past_its_timeout_is_killed_with_its_children(executor: RayExecutor, code_dir: Path) -> None:
    started = time.monotonic()
    result = executor.run_step(_job(code_dir, "steps:hang", timeout=2), threading.Event())
    assert time.monotonic() - started < 60  # not the 60 s it sleeps (the rest: Ray scheduling it)
    assert result.timed_out and not result.ok
    assert "timed out after 2 s" in (result.error or "")
    match = re.search(r"child (\d+), now sleeping", result.log_tail)
    assert match, result.log_tail
    deadline = time.monotonic() + 5
    while process_alive(int(match[1])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(int(match[1]))


def test_a_cancelled_step_on_ray_is_killed_at_once_with_its_children(executor: RayExecutor, code_dir: Path) -> None:
    cancel = threading.Event()
    job = _job(code_dir, "steps:hang")
    log = Path(job.log_path)

    def cancel_once_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "now sleeping" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_once_running, daemon=True).start()
    result = executor.run_step(job, cancel)
    assert result.cancelled and not result.ok
    assert result.error == "the run was cancelled"
    match = re.search(r"child (\d+), now sleeping", result.log_tail)
    assert match, result.log_tail
    deadline = time.monotonic() + 5
    while process_alive(int(match[1])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(int(match[1]))


def test_the_log_of_a_step_on_ray_reaches_the_server_while_it_runs(executor: RayExecutor, code_dir: Path) -> None:
    job = _job(code_dir, "steps:chatty")
    seen_while_running: list[str] = []
    finished = threading.Event()

    def watch() -> None:
        log = Path(job.log_path)
        while not finished.is_set():
            if log.exists() and "line 5" in log.read_text():
                seen_while_running.append(log.read_text())
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = executor.run_step(job, threading.Event())
    finished.set()
    watcher.join(5)
    assert result.ok, result.log_tail
    assert seen_while_running and "line 39" not in seen_while_running[0]
    assert Path(job.log_path).read_text().splitlines() == [f"line {i}" for i in range(40)]


# --- through the runner ----------------------------------------------------------------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'charter.db'}"  # the executor does not touch the database


@pytest.fixture
def settings(database_url: str, tmp_path: Path, ray_cluster: RayCluster) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, audit_checkpoint_every=8,
                    pipeline_executor=ray_cluster.address, pipeline_max_parallel=2)


def test_the_server_runs_a_dag_on_ray_with_outputs_metrics_logs_and_events(org: Org) -> None:
    assert isinstance(org.platform.pipelines.executor, RayExecutor)
    org.bus.handle(c.CreatePipeline("ml-dev", "tiny", DEFINITION, CODE), org.identity("lena"))
    run = org.bus.handle(c.StartPipelineRun("ml-dev", "tiny", {}), org.identity("lena"))
    assert org.platform.pipelines.run_once()
    done: PipelineRun = org.bus.handle(c.GetPipelineRun("ml-dev", run.id), org.identity("lena"))
    assert done.status is RunStatus.SUCCEEDED, (done.reason, [(s.name, s.error) for s in done.steps])
    assert [s.status for s in done.steps] == [StepStatus.SUCCEEDED] * 4
    assert done.step("train").metrics["metrics"] == {"accuracy": 0.9, "rows": 10}
    assert org.platform.artifacts.stat("ml-dev", done.step("train").outputs["model"]) is not None
    log = b"".join(org.bus.handle(c.GetStepLog("ml-dev", run.id, "train"), org.identity("sam")).chunks)
    assert b"training on 10 rows" in log


def test_the_train_from_dataset_pipeline_on_ray_registers_a_pending_model(org: Org, tmp_path: Path) -> None:
    from charter.examples.datasets import write_example_csv

    csv = write_example_csv(tmp_path / "breast-cancer.csv").read_bytes()
    diego, lena = org.identity("diego"), org.identity("lena")
    uploaded = org.bus.handle(c.UploadDataset("data-governance", "breast-cancer", "csv", iter([csv]), 10**8), diego)
    org.bus.handle(c.RegisterDatasetVersion("data-governance", "breast-cancer", "csv", uploaded.blob.sha256), diego)
    sub = org.bus.handle(c.Subscribe("data-governance", "breast-cancer", "ml-dev", "churn"), lena)
    org.bus.handle(c.DecideSubscription("data-governance", sub.id, "Approved", "ok", 86400), diego)
    org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn"), lena)
    definition = (TEMPLATE / "pipelines" / "train.yaml").read_text()
    org.bus.handle(c.CreatePipeline("ml-dev", "churn-train", definition, _code()), lena)
    run = org.bus.handle(c.StartPipelineRun("ml-dev", "churn-train", {
        "dataset": "breast-cancer", "target": "y", "group": "churn", "algorithm": "LogisticRegression"}),
        org.identity("sam"))
    assert org.platform.pipelines.run_once()
    done: PipelineRun = org.bus.handle(c.GetPipelineRun("ml-dev", run.id), org.identity("sam"))
    assert done.status is RunStatus.SUCCEEDED, (done.reason, [(s.name, s.error) for s in done.steps])
    assert done.step("evaluate").metrics["evaluation"]["roc_auc"] > 0.95
    registered = done.step("register").metrics["_registered"]
    package = org.bus.handle(c.GetModelPackage("ml-dev", "churn", registered["version"]), lena)
    assert str(package.status) == "PendingManualApproval" and str(package.format) == "skops"
    assert package.lineage.run == run.id and package.lineage.run_started_by == "sam"
