"""Deployments on a real store (SQLite and PostgreSQL) with the fake EndpointOperations: the rule's
delivery starting one execution, the runner's stages, claims shared by several runners, expiry
once, and an execution that resumes after its server stopped."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from charter.adapters.db import tables as t
from charter.domain import commands as c
from charter.domain.deployments import DEPLOY_TEST, ExecutionStatus, StageStatus
from charter.services.deployment_runner import DeploymentRunner
from tests.deployments_support import CENTRAL, PIPELINE, Road
from tests.integration.conftest import Org
from tests.unit.fakes import FakeEndpoints


@pytest.fixture
def road(org: Org) -> Road:
    return Road(org.bus, org.identity)


def _runner(org: Org, endpoints: FakeEndpoints, owner: str, **kw: float) -> DeploymentRunner:
    return DeploymentRunner(org.bus, endpoints, rollout_poll_seconds=0.01, owner=owner, **kw)  # type: ignore[arg-type]


def _count(org: Org, table: t.Table, **where: str) -> int:
    with org.platform.engine.connect() as conn:
        q = select(func.count()).select_from(table)
        for key, value in where.items():
            q = q.where(table.c[key] == value)
        return int(conn.execute(q).scalar_one())


def test_the_central_approval_reaches_the_pipeline_through_its_rule_and_runs_to_the_approval(
        org: Org, road: Road) -> None:
    endpoints = FakeEndpoints()
    road.launch()
    package = road.central_package()
    org.platform.dispatcher.run_until_idle()
    org.platform.dispatcher.run_until_idle()  # a repeated round delivers nothing twice
    executions = road.as_("mei", c.ListDeploymentExecutions(CENTRAL, PIPELINE)).items
    assert len(executions) == 1 and executions[0].package == str(package.crn)
    assert executions[0].central_approver == "mei"
    _runner(org, endpoints, "one").run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.AWAITING_APPROVAL, e.reason
    assert e.stage("integration-tests").details["figures"]["accuracy"] == 0.75
    assert _count(org, t.outbox, type="charter.deployments.approval.requested") == 1


def test_a_deployment_runs_through_production_on_the_real_store(org: Org, road: Road) -> None:
    endpoints = FakeEndpoints(allowed={"deployment-bot"})
    runner = _runner(org, endpoints, "one")
    road.launch()
    road.start(road.central_package())
    runner.run_until_idle()
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.SUCCEEDED, e.reason
    assert endpoints.serving_package("ml-prod", PIPELINE) == e.package
    assert _count(org, t.audit_records, action="deployments:StageStateChanged", actor="deployment-bot") == 9


def test_an_expired_approval_is_expired_once_by_servers_racing_on_it(org: Org, road: Road) -> None:
    runner = _runner(org, FakeEndpoints(), "one")
    road.launch(approval={"expires_seconds": 1})
    road.start(road.central_package())
    runner.run_until_idle()
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL
    time.sleep(1.1)
    runners = [_runner(org, FakeEndpoints(), f"server-{i}") for i in range(4)]
    counts: list[int] = []
    barrier = threading.Barrier(len(runners))

    def sweep(r: DeploymentRunner) -> None:
        barrier.wait()
        counts.append(r.expire_due())

    threads = [threading.Thread(target=sweep, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 0, 0, 1]
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED and "the approval expired" in e.reason
    with org.platform.engine.connect() as conn:
        rows = conn.execute(select(t.audit_records.c.details).where(
            t.audit_records.c.action == "deployments:StageStateChanged")).all()
    failed = [r.details for r in rows
              if r.details.get("stage") == "approve-prod" and r.details.get("stage_status") == "Failed"]
    assert len(failed) == 1 and failed[0]["details"]["expired_at"]


def test_an_execution_in_flight_when_its_server_stops_resumes_on_the_next(org: Org, road: Road) -> None:
    endpoints = FakeEndpoints(polls_to_healthy=10**9)  # the test deploy waits until told otherwise
    first = _runner(org, endpoints, "first")
    road.launch()
    road.start(road.central_package())
    stop = threading.Event()
    thread = threading.Thread(target=first.run_forever, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 20
    while road.execution().stage(DEPLOY_TEST).details.get("revision") is None:
        assert time.monotonic() < deadline, "the test deploy was never asked for"
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    handed_back = road.execution()
    assert handed_back.status is ExecutionStatus.PENDING and handed_back.claimed_by is None
    assert handed_back.stage(DEPLOY_TEST).status is StageStatus.IN_PROGRESS
    endpoints.polls_to_healthy = 1
    _runner(org, endpoints, "second").run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.AWAITING_APPROVAL, e.reason
    assert [call[0] for call in endpoints.calls].count("deploy") == 1  # resumed, not deployed again


def test_an_execution_whose_server_died_is_taken_up_once_its_claim_runs_out(org: Org, road: Road) -> None:
    endpoints = FakeEndpoints()
    road.launch()
    road.start(road.central_package())
    dead = _runner(org, endpoints, "dead", lease_seconds=0.5)
    assert dead.claim() is not None  # claimed, then the server died without a word
    alive = _runner(org, endpoints, "alive", lease_seconds=0.5)
    assert alive.claim() is None
    time.sleep(0.6)
    alive.run_until_idle()
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL


def test_two_runners_never_run_the_same_execution(org: Org, road: Road) -> None:
    endpoints = FakeEndpoints()
    road.launch()
    road.start(road.central_package())
    a, b = _runner(org, endpoints, "a"), _runner(org, endpoints, "b")
    claimed = [a.claim(), b.claim()]
    assert sum(x is not None for x in claimed) == 1


def test_a_refused_endpoint_call_fails_the_stage_naming_the_reason(org: Org, road: Road) -> None:
    runner = _runner(org, FakeEndpoints(allowed={"someone-else"}), "one")
    road.launch()
    road.start(road.central_package())
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED
    assert "ml-test refused the deploy of churn-deploy: PermissionDenied" in e.reason
