"""SIGKILL at random points of pipeline runs, many times over: afterwards every run has ended
(Succeeded, or Failed with the reason it was interrupted too often), no step is left Running, each
run registered its model exactly once (versions gap-free), every output is whole, every state
change the audit trail records reached the rule's webhook as an event (none lost, none doubled),
no process of a killed server went on running, and the audit chain verifies.

A server of its own (the session's is never killed) runs several runs of a three-step pipeline
(prepare -> train -> register-model) one after the other; the server is killed after a random
delay again and again — while a step runs, while outputs are stored, while the model is
registered, while the server is still starting — and started again on the same data.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from charter.client import models as m
from charter.client.client import Client
from tests.integration.test_webhooks import Receiver  # the type of the e2e `receiver` fixture

from .support import (
    ACME_YAML,
    Crasher,
    ServerProcess,
    eventually,
    pipeline_archive,
    rule_block,
    with_rules,
)

RUNS = 4
KILLS = 5
GROUP = "crash-models"
RULE = "crash-pipeline-events"
RUN_EVENTS = "charter.pipelines.run.state-changed"
STEP_EVENTS = "charter.pipelines.step.state-changed"
DEFINITION = """
parameters:
  seed: {}
  group: {}
steps:
  - {name: prepare, kind: processing, entry_point: "steps:prepare", inputs: {seed: "param:seed"}, outputs: [table]}
  - {name: train, kind: training, entry_point: "steps:train", inputs: {table: "step:prepare.table"}, outputs: [model]}
  - name: register
    kind: register-model
    entry_point: steps:register
    inputs: {model: "step:train.model", group: "param:group", seed: "param:seed"}
    outputs: {model: artifact, registration: metrics}
"""
STEPS = b'''
import shutil
import time
from pathlib import Path


def prepare(seed, outputs):
    time.sleep(0.3)
    (outputs / "table").write_text(f"seed={seed}")


def train(table, outputs):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    time.sleep(0.5)
    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], [0, 1, 0, 1])
    (outputs / "model").write_bytes(sio.dumps(model))


def register(model, group, seed, outputs):
    shutil.copyfile(model, outputs / "model")
    time.sleep(0.2)
    return {"registration": {"group": group, "format": "skops", "model": "model", "description": f"seed {seed}"}}
'''




def _audit_key(record: m.AuditRecordOut) -> tuple[str, str, int | None]:
    """What an audited state change says, as its event must say it too."""
    if record.action == "pipelines:StartPipelineRun":
        return record.resource, "Pending", None
    if record.action == "pipelines:RunResumed":
        return record.resource, "Running", None
    return record.resource, str(record.details["status"]), record.details.get("attempts")


def _event_key(event: dict[str, Any]) -> tuple[str, str, int | None]:
    data = event["data"]
    return event["subject"], str(data["status"]), data.get("attempts") if event["type"] == STEP_EVENTS else None


def test_pipeline_runs_killed_at_random_points_end_with_nothing_lost_or_doubled(
        crash_server: ServerProcess, receiver: Receiver) -> None:
    with Client(crash_server.url, crash_server.admin_token) as admin:
        admin.apply(with_rules(ACME_YAML.read_text(), rule_block("ml-dev", RULE, [RUN_EVENTS, STEP_EVENTS],
                                                                  receiver.url)))
        tokens = {name: admin.create_token(name).secret for name in ("lena", "arthur")}
    with Client(crash_server.url, tokens["lena"]) as lena:
        lena.create_group("ml-dev", GROUP)
        lena.create_pipeline("ml-dev", "crashing", pipeline_archive(DEFINITION, STEPS))
        runs = {lena.start_pipeline("ml-dev", "crashing", {"seed": str(i), "group": GROUP}).id: str(i)
                for i in range(RUNS)}

    crasher = Crasher(crash_server)

    def all_ended() -> bool:
        with Client(crash_server.url, tokens["lena"]) as client:
            return all(client.pipeline_run("ml-dev", r).status not in ("Pending", "Running") for r in runs)

    crasher.kill_until(all_ended, kills=KILLS, low=0.3, high=3.0)
    eventually(all_ended, f"every run ended ({crasher})", timeout=120, every=0.2)

    with Client(crash_server.url, tokens["lena"]) as lena:
        ended = {r: lena.pipeline_run("ml-dev", r) for r in runs}
        packages = list(lena.packages("ml-dev", GROUP))
        for run_id, run in ended.items():
            steps = [(s.name, s.status, s.attempts, s.error) for s in run.steps]
            if run.status == "Failed":  # only a run interrupted too often may fail, saying so
                assert "interrupted" in run.reason, (run.reason, steps, str(crasher))
                continue
            assert run.status == "Succeeded", (run.reason, steps, str(crasher))
            assert [s.status for s in run.steps] == ["Succeeded"] * 3, (steps, str(crasher))
            table = b"".join(lena.download_artifact("ml-dev", run.steps[0].outputs["table"]))
            assert table == f"seed={runs[run_id]}".encode()
            mine = [p for p in packages if p.lineage and p.lineage.run == run_id]
            assert len(mine) == 1, (run_id, [(p.version, p.lineage) for p in packages], str(crasher))
            assert run.steps[2].metrics["_registered"]["version"] == mine[0].version
        assert sorted(p.version for p in packages) == list(range(1, len(packages) + 1))
        assert len({p.lineage.run for p in packages if p.lineage}) == len(packages), str(crasher)
        assert any(run.status == "Succeeded" for run in ended.values()), str(crasher)

    with Client(crash_server.url, tokens["arthur"]) as arthur:
        assert arthur.audit_verify().ok
        audited = Counter(_audit_key(r) for action in ("pipelines:StartPipelineRun", "pipelines:RunStateChanged",
                                                       "pipelines:StepStateChanged", "pipelines:RunResumed")
                          for r in arthur.audit_records(account="ml-dev", action=action))

    with Client(crash_server.url, crash_server.admin_token) as admin:
        def delivered() -> list[m.DeliveryOut] | None:
            mine = [d for d in admin.deliveries("ml-dev") if d.rule == RULE]
            return mine if len(mine) >= audited.total() and all(d.status == "succeeded" for d in mine) else None

        deliveries = eventually(delivered, "every event delivered", timeout=60)
        events = Counter(_event_key(d.event) for d in deliveries)
        assert len({d.event["id"] for d in deliveries}) == len(deliveries)  # none doubled
        assert audited - events == Counter(), f"events lost ({crasher})"
        assert events - audited == Counter(), f"events without their record ({crasher})"
        received = {json.loads(body)["id"] for _, body in receiver.requests}
        assert {d.event["id"] for d in deliveries} <= received
    assert crasher.reaped, "the kills never caught a step or worker process of the server"
    print(f"pipeline crashes: {crasher}; {len(crasher.reaped)} processes of killed servers ended")
