"""A pipeline run in flight when its server is killed with SIGKILL is resumed when the server comes
back: the step that had succeeded keeps its outputs (it does not run again), the step that was
running starts again as a new attempt (its old process is gone), and the run succeeds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.client import models as m
from charter.client.client import Client

from .support import ACME_YAML, ServerProcess, own_server, pipeline_archive, process_alive

DEFINITION = """
parameters:
  pids: {}
steps:
  - {name: first, kind: processing, entry_point: "steps:first", outputs: [table]}
  - name: slow
    kind: training
    entry_point: steps:slow
    inputs: {table: "step:first.table", pids: "param:pids"}
    outputs: [model]
"""
STEPS = b'''
import os
import time
from pathlib import Path


def first(outputs):
    (outputs / "table").write_text("1,2,3")


def slow(table, pids, outputs):
    with open(Path(pids), "a") as f:
        f.write(f"{os.getpid()}\\n")
    print("attempt started", flush=True)
    time.sleep(3)
    (outputs / "model").write_text(Path(table).read_text() + ";trained")
'''


@pytest.fixture(name="own_server")
def _own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with own_server(tmp_path, {"CHARTER_PIPELINE_POLL_SECONDS": "0.05"}) as server:
        yield server


def _run(client: Client, run_id: str) -> m.PipelineRunOut:
    return client.pipeline_run("ml-dev", run_id)


def test_a_run_in_flight_when_the_server_is_killed_is_resumed_when_it_comes_back(
        own_server: ServerProcess, tmp_path: Path) -> None:
    with Client(own_server.url, own_server.admin_token) as admin:
        admin.apply(ACME_YAML.read_text(), filename="examples/acme/charter.yaml")
        lena_token = admin.create_token("lena").secret
    pids = tmp_path / "pids"
    with Client(own_server.url, lena_token) as lena:
        lena.create_pipeline("ml-dev", "resumable", pipeline_archive(DEFINITION, STEPS))
        run_id = lena.start_pipeline("ml-dev", "resumable", {"pids": str(pids)}).id
        deadline = time.monotonic() + 30
        while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.02)
        before = _run(lena, run_id)
    steps = {s.name: s for s in before.steps}
    assert steps["first"].status == "Succeeded" and steps["slow"].status == "Running", before
    old_attempt = int(pids.read_text().split()[0])

    own_server.kill()
    deadline = time.monotonic() + 5
    while process_alive(old_attempt) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not process_alive(old_attempt), "the killed server's step went on running"
    own_server.start()

    with Client(own_server.url, lena_token) as lena:
        deadline = time.monotonic() + 60
        while (run := _run(lena, run_id)).status in ("Pending", "Running") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.status == "Succeeded", (run.reason, [(s.name, s.status, s.error) for s in run.steps])
        after = {s.name: s for s in run.steps}
        assert after["first"].attempts == 1 and after["first"].outputs == steps["first"].outputs
        assert after["first"].started_at == steps["first"].started_at  # not run again
        assert after["slow"].attempts == 2 and not after["slow"].cached
        assert len(pids.read_text().split()) == 2
        log, _ = lena.step_log("ml-dev", run_id, "slow")
        assert b"attempt started" in log
        model = b"".join(lena.download_artifact("ml-dev", after["slow"].outputs["model"]))
        assert model == b"1,2,3;trained"
    with Client(own_server.url, own_server.admin_token) as admin:
        assert admin.audit_verify().ok
