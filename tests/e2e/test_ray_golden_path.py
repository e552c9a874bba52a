"""The golden path with the pipelines on Ray: a `charter server` configured with
CHARTER_PIPELINE_EXECUTOR=ray://… (a local Ray cluster the test starts, reached through Ray
Client as a remote one would be) walks what `charter demo` walks — the project launch, its
training run and a second one, registration, the self-approval refused, approval, promotion into
the central registry, the deployment to test and production — and every step ran as a Ray task
on the cluster, none on the server.

One cluster for the file, on one xdist worker (`--dist loadfile`); keep Ray e2e tests here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.client import models as m
from charter.client.client import Client
from charter.entrypoints.cli.demo import GoldenPath
from tests.ray_cluster import RayCluster

from .support import ACME_YAML, descendants, eventually, own_server, pipeline_archive

WARM_UP = """
steps:
  - {name: hello, kind: processing, entry_point: "steps:hello"}
"""
WARM_UP_STEPS = b"def hello():\n    print('hello from ray')\n"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = RayCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class _StepWatch:
    """Samples, while the walk runs, which processes run a step: below the Ray cluster (a Ray
    task's step runner) or below the server (the local executor's)."""

    def __init__(self, cluster_pid: int, server_pid: int) -> None:
        self.roots = {"ray": cluster_pid, "server": server_pid}
        self.seen: dict[str, set[str]] = {"ray": set(), "server": set()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for where, pid in self.roots.items():
                self.seen[where] |= {c for c in descendants(pid).values() if "step_runner" in c}

    def __enter__(self) -> _StepWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _warm_up(admin: Client) -> None:
    """One tiny run first: the server's first Ray Client connection (a server process of its own
    on the head node) and the cluster's first workers take longer than the golden path allows a
    training run on a loaded machine; later steps reuse both."""
    lena = Client(admin.server, admin.create_token("lena", description="warm-up").secret)
    with lena:
        lena.create_pipeline("ml-dev", "warm-up", pipeline_archive(WARM_UP, WARM_UP_STEPS))
        run_id = lena.start_pipeline("ml-dev", "warm-up").id

        def ended() -> m.PipelineRunOut | None:
            run = lena.pipeline_run("ml-dev", run_id)
            return run if run.status not in ("Pending", "Running") else None

        done = eventually(ended, "the warm-up run on Ray", timeout=300, every=0.5)
    assert done.status == "Succeeded", (done.reason, [(s.name, s.error) for s in done.steps])


def test_the_golden_path_trains_on_ray_registers_approves_promotes_and_deploys(
        ray_cluster: RayCluster, tmp_path: Path) -> None:
    with own_server(tmp_path, {"CHARTER_PIPELINE_EXECUTOR": ray_cluster.address}) as server, \
            Client(server.url, server.admin_token, timeout=120) as admin:
        admin.apply(ACME_YAML.read_text(), filename="examples/acme/charter.yaml")
        _warm_up(admin)
        # Ray Client adds a round trip per task, and CI runs this beside another test worker.
        path = GoldenPath(server.url, admin, lambda _: None, lambda _: contextlib.nullcontext(), patience=600)
        assert server.process is not None
        with _StepWatch(ray_cluster.process.pid, server.process.pid) as watch:
            walked = path.walk()

    facts = walked.facts
    steps = {s["step"]: s for s in walked.steps}
    # the project's run (lena's) and sam's, each ingest -> train -> evaluate -> condition -> register
    assert [(r["started_by"], r["version"]) for r in facts["runs"]] == [("lena", 1), ("sam", 2)]
    assert all(r["metrics"]["roc_auc"] > 0.9 for r in facts["runs"])
    assert steps["tries to approve churn/1, her own run's model: refused"]["detail"] == "denied by no-self-approval"
    assert facts["central_package"] == "churn-ml-dev/1"
    assert facts["card"] == {"status": "Approved", "version": 2}
    assert all(check["passed"] for check in facts["integration_tests"])
    assert facts["deployment"] == "Succeeded"
    assert len(facts["prediction"]) == 3 and set(facts["prediction"]) <= {"0", "1"}
    assert facts["audit_ok"] is True
    # the steps ran as Ray tasks (their step runner below the cluster's processes), none on the server
    assert watch.seen["ray"], "no step was seen running on the Ray cluster"
    assert not watch.seen["server"], watch.seen["server"]
