"""SIGKILL at random points of a deployment execution, many times over: while it deploys to the
test account, runs the integration tests, waits for the production approval, deploys to
production and smoke-tests it. After each kill no process of the killed server (endpoint template
and workers) goes on running or serving; the restarted server brings back the endpoints and takes
the execution up where it stood. At the end the execution succeeded once, each endpoint has one
revision (nothing was deployed twice), production answers from the new server's workers, every
state change the runner recorded reached the rule's webhook as an event, no delivery is stuck
and the audit chain verifies.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import yaml

from charter.client import models as m
from charter.client.client import Client
from charter.entrypoints.cli.apply_products import publish_declared
from charter.examples import acme_file
from tests.integration.test_webhooks import Receiver  # the type of the e2e `receiver` fixture
from tests.models import skops_model, training_data

from .support import (
    ACME_YAML,
    Crasher,
    ServerProcess,
    descendants,
    eventually,
    rule_block,
    with_rules,
)

CENTRAL, DEV, TEST, PROD = "ml-shared-services", "ml-dev", "ml-test", "ml-prod"
GROUP = "crashy"
CENTRAL_GROUP = f"{GROUP}-{DEV}"
PIPELINE = "crashy-deploy"
RULE = "crash-deployment-events"
EXECUTION_EVENTS = "charter.deployments.execution.state-changed"
KILLS_BEFORE_APPROVAL = 2
KILLS_AFTER_APPROVAL = 2
PERSONAS = ("priya", "lena", "sam", "mei", "grace", "arthur")
SIGNATURE = m.SignatureIn(inputs=[m.ColumnIn(name="f0", dtype="double"), m.ColumnIn(name="f1", dtype="double")],
                          outputs=[m.ColumnIn(name="label", dtype="long")])




def _central_package_approved(server: ServerProcess, tokens: dict[str, str]) -> None:
    """A dev package with a held-out sample, approved by lena, promoted, approved by mei centrally
    once the deploy project is launched (its rule starts the execution)."""
    with Client(server.url, tokens["priya"]) as priya:
        publish_declared(priya, acme_file(), acme_file().read_text(), plan=False)
    with Client(server.url, tokens["lena"]) as lena, Client(server.url, tokens["sam"]) as sam:
        lena.create_group(DEV, GROUP, readers=[CENTRAL, "ou:deployments"])
        x, y = training_data()
        model = sam.upload_artifact(DEV, skops_model())
        holdout = sam.upload_artifact(DEV, json.dumps({"instances": x, "labels": y}).encode())
        sam.register_package(DEV, GROUP, m.PackageCreate(
            format="skops", signature=SIGNATURE, sample_payload={"instances": x[:2]},
            artifacts=[m.ArtifactIn(path="model.skops", sha256=model.sha256),
                       m.ArtifactIn(path="holdout.json", sha256=holdout.sha256)]))
        lena.approve(DEV, GROUP, 1, "good")
    with Client(server.url, tokens["mei"]) as mei:
        eventually(lambda: mei.package(CENTRAL, CENTRAL_GROUP, 1), "the promotion", timeout=60)
        mei.create_project(CENTRAL, PIPELINE, "deploy-realtime-cross-account", parameters={
            "model_group": CENTRAL_GROUP, "test_account": TEST, "prod_account": PROD,
            # latency on a machine shared with other test runs is not what this test is about
            "integration_tests": {"latency_p95_ms": 30000}})
        mei.approve(CENTRAL, CENTRAL_GROUP, 1, "ok for test")


def _execution(server: ServerProcess, token: str) -> m.DeploymentExecutionOut | None:
    with Client(server.url, token) as client:
        try:
            return client.deployment_execution(CENTRAL, PIPELINE)
        except Exception:  # noqa: BLE001 - not started yet (the rule's delivery is under way)
            return None


def _audit_key(record: m.AuditRecordOut) -> tuple[str, str, str | None, str | None]:
    d = record.details
    return record.resource, str(d["status"]), d.get("stage"), d.get("stage_status")


def _event_key(event: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    d = event["data"]
    return event["subject"], str(d["status"]), d.get("stage"), d.get("stage_status")


def test_a_deployment_killed_at_random_points_succeeds_once_with_nothing_doubled_or_orphaned(
        crash_server: ServerProcess, receiver: Receiver) -> None:
    with Client(crash_server.url, crash_server.admin_token) as admin:
        admin.apply(with_rules(ACME_YAML.read_text(), rule_block(CENTRAL, RULE, [EXECUTION_EVENTS], receiver.url)))
        tokens = {name: admin.create_token(name).secret for name in PERSONAS}
    _central_package_approved(crash_server, tokens)
    crasher = Crasher(crash_server)
    workers_reaped: list[str] = []

    def at(*statuses: str) -> bool:
        found = _execution(crash_server, tokens["mei"])
        return found is not None and found.status in statuses

    def kill_until(done: Any, kills: int) -> None:
        for _ in range(kills):
            if done():
                return
            assert crash_server.process is not None
            workers_reaped.extend(c for c in descendants(crash_server.process.pid).values() if "serving.worker" in c)
            crasher.kill_and_restart(0.5, 4.0)

    kill_until(lambda: at("AwaitingApproval", "Failed"), KILLS_BEFORE_APPROVAL)
    waiting = eventually(lambda: _execution(crash_server, tokens["mei"]) if at("AwaitingApproval", "Failed") else None,
                         f"the execution waits for the approval ({crasher})", timeout=180, every=0.2)
    assert waiting.status == "AwaitingApproval", (waiting.reason, str(crasher))

    with Client(crash_server.url, tokens["mei"]) as mei, Client(crash_server.url, tokens["grace"]) as grace:
        card = mei.model_card(CENTRAL, CENTRAL_GROUP)
        document = yaml.safe_load((acme_file().resolve().parent / "card.yaml").read_text())
        mei.edit_model_card(CENTRAL, CENTRAL_GROUP, document, summary="complete", expected_version=card.latest_version)
        mei.submit_model_card(CENTRAL, CENTRAL_GROUP, "ready")
        grace.approve_model_card(CENTRAL, CENTRAL_GROUP, "reviewed")
        grace.approve_deployment(CENTRAL, PIPELINE, "validated")

    kill_until(lambda: at("Succeeded", "Failed"), KILLS_AFTER_APPROVAL)
    done = eventually(lambda: _execution(crash_server, tokens["mei"]) if at("Succeeded", "Failed") else None,
                      f"the execution ends ({crasher})", timeout=180, every=0.2)
    assert done.status == "Succeeded", (done.reason, [(s.name, s.status, s.reason) for s in done.stages], str(crasher))
    assert [s.status for s in done.stages] == ["Succeeded"] * 5

    with Client(crash_server.url, tokens["mei"]) as mei:  # an ML engineer in both accounts
        assert len(list(mei.deployment_executions(CENTRAL, PIPELINE))) == 1  # one execution per trigger
        assert crash_server.process is not None
        for account in (TEST, PROD):
            endpoint = mei.endpoint(account, PIPELINE)
            assert [r.revision for r in endpoint.revisions] == [1], (account, endpoint.revisions, str(crasher))
            assert endpoint.status == "InService" and endpoint.serving_revision == 1
            # the workers that serve are the restarted server's own, none of a killed one
            pids = eventually(lambda a=account: [w.pid for w in mei.endpoint(a, PIPELINE).workers
                                                 if w.serving and w.state == "ready"], f"{account} workers")
            assert set(pids) <= set(descendants(crash_server.process.pid)) and not set(pids) & set(crasher.reaped)
        answer = mei.invoke_endpoint(PROD, PIPELINE, {"instances": [[0.0, 1.0], [1.0, 0.0]]})
        assert len(answer.predictions) == 2 and answer.revision == 1

    with Client(crash_server.url, tokens["arthur"]) as arthur:
        assert arthur.audit_verify().ok
        audited = Counter(_audit_key(r) for action in ("deployments:StageStateChanged",
                                                       "deployments:ExecutionStateChanged")
                          for r in arthur.audit_records(account=CENTRAL, action=action))
    with Client(crash_server.url, crash_server.admin_token) as admin:
        def delivered() -> list[m.DeliveryOut] | None:
            found = [d for d in admin.deliveries(CENTRAL) if d.rule == RULE]
            return found if len(found) >= audited.total() and all(d.status == "succeeded" for d in found) else None

        deliveries = eventually(delivered, f"every event delivered ({crasher})", timeout=60)
        assert len({d.event["id"] for d in deliveries}) == len(deliveries)
        assert audited - Counter(_event_key(d.event) for d in deliveries) == Counter(), f"events lost ({crasher})"
        assert {d.event["id"] for d in deliveries} <= {json.loads(body)["id"] for _, body in receiver.requests}
        stuck = [d for account in (DEV, CENTRAL) for d in admin.deliveries(account) if d.status != "succeeded"]
        assert stuck == [], str(crasher)
    assert workers_reaped, f"no kill caught an endpoint worker running ({crasher})"
    print(f"deployment crashes: {crasher}; endpoint workers of killed servers that ended: {len(workers_reaped)}")
