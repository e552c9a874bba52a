"""Deployment executions on fakes: starting once per event, the runner's stages through the
EndpointOperations port (as the pipeline's principal), the approval's refusals, expiry, rollback."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.audit import AuditRecord, Outcome
from charter.domain.deployments import (
    APPROVE_PROD,
    DEPLOY_PROD,
    DEPLOY_TEST,
    INTEGRATION_TESTS,
    SMOKE_PROD,
    ExecutionStatus,
    StageStatus,
    Trigger,
)
from charter.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError
from charter.services.deployment_runner import DeploymentRunner
from charter.services.dispatch import Dispatcher
from tests.deployments_support import CENTRAL, GROUP, PIPELINE, Road
from tests.unit.conftest import World
from tests.unit.fakes import FakeEndpoints


@pytest.fixture
def road(world: World) -> Road:
    return Road(world.bus, world.token_for)


@pytest.fixture
def endpoints() -> FakeEndpoints:
    return FakeEndpoints(allowed={"deployment-bot"})


@pytest.fixture
def runner(world: World, endpoints: FakeEndpoints) -> DeploymentRunner:
    return DeploymentRunner(world.bus, endpoints, rollout_poll_seconds=0.001, owner="test-runner")


def _records(world: World, action: str) -> list[AuditRecord]:
    return [r for r in world.store.data.records if r.action == action]


def _awaiting(road: Road, runner: DeploymentRunner, **params: object) -> str:
    road.launch(**params)
    execution = road.start(road.central_package())
    runner.run_until_idle()
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL, road.execution().reason
    return execution.id


def test_an_approved_package_deploys_to_test_and_passes_its_integration_tests(
        road: Road, runner: DeploymentRunner, endpoints: FakeEndpoints) -> None:
    _awaiting(road, runner)
    e = road.execution()
    assert [s.status for s in e.stages[:3]] == [StageStatus.SUCCEEDED, StageStatus.SUCCEEDED,
                                                StageStatus.AWAITING_APPROVAL]
    tests = e.stage(INTEGRATION_TESTS).details
    assert tests["figures"]["accuracy"] == 0.75 and tests["figures"]["requests"] == 20
    assert all(check["passed"] for check in tests["checks"])
    assert endpoints.serving_package("ml-test", PIPELINE) == e.package
    assert endpoints.serving_package("ml-prod", PIPELINE) is None
    # Every call went to the test account as the pipeline's principal.
    assert {(op[1], op[2]) for op in endpoints.calls} == {("deployment-bot", "ml-test")}


def test_the_approval_request_is_an_event_naming_the_package_and_expiry(road: Road, world: World,
                                                                       runner: DeploymentRunner) -> None:
    _awaiting(road, runner)
    asked = [e for e in world.store.data.outbox if e.type == "charter.deployments.approval.requested"]
    assert len(asked) == 1 and asked[0].data["package"] == road.execution().package
    assert asked[0].data["expires_at"] and asked[0].data["required"] == 1


def test_the_same_event_delivered_twice_starts_one_execution(road: Road) -> None:
    road.launch()
    package = road.central_package()
    first, second = road.start(package, event_id="same"), road.start(package, event_id="same")
    assert first.id == second.id
    assert len(road.as_("mei", c.ListDeploymentExecutions(CENTRAL, PIPELINE)).items) == 1


def test_only_the_pipelines_principal_starts_an_execution(road: Road) -> None:
    road.launch()
    package = road.central_package()
    with pytest.raises(PermissionDenied):
        road.as_("promotion-bot", c.StartDeploymentExecution(CENTRAL, PIPELINE, "e", str(package.crn), "Approved"))


def test_a_governance_officer_approves_and_production_is_deployed_and_smoke_tested(
        road: Road, runner: DeploymentRunner, endpoints: FakeEndpoints, world: World) -> None:
    _awaiting(road, runner)
    road.approve_card()
    approved = road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    assert approved.status is ExecutionStatus.PENDING
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.SUCCEEDED, e.reason
    assert e.stage(SMOKE_PROD).details["invocations"] == 3
    assert endpoints.serving_package("ml-prod", PIPELINE) == e.package
    assert [(a.principal, a.comment) for a in e.approvals] == [("grace", "validated")]
    stage_records = _records(world, "deployments:StageStateChanged")
    assert {r.actor for r in stage_records} == {"deployment-bot"}


def test_an_ineligible_principal_cannot_approve_production(road: Road, runner: DeploymentRunner,
                                                           world: World) -> None:
    _awaiting(road, runner)
    road.approve_card()
    with pytest.raises(PermissionDenied):
        road.as_("lena", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "me too"))
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL
    denied = [r for r in _records(world, "deployments:ApproveProduction") if r.outcome is Outcome.DENIED]
    assert denied


def test_the_central_approver_is_refused_naming_the_policy(road: Road, runner: DeploymentRunner,
                                                           world: World) -> None:
    world.bus.handle(c.ApplyOrg(_with_mei_as_officer(), "charter.yaml"), world.admin)
    _awaiting(road, runner)
    road.approve_card()
    with pytest.raises(PermissionDenied) as refused:
        road.as_("mei", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "I checked"))
    assert "production-approver-is-not-central-approver" in refused.value.details["policy"]


def test_production_waits_for_the_model_card(road: Road, runner: DeploymentRunner) -> None:
    _awaiting(road, runner)
    with pytest.raises(PermissionDenied) as refused:
        road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    assert "production-needs-an-approved-card" in refused.value.details["policy"]
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL


def test_an_approval_needs_a_comment(road: Road, runner: DeploymentRunner) -> None:
    _awaiting(road, runner)
    road.approve_card()
    with pytest.raises(ValidationError, match="comment"):
        road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", ""))


def test_failing_integration_tests_stop_the_execution_with_the_results(
        road: Road, runner: DeploymentRunner, endpoints: FakeEndpoints) -> None:
    road.launch(integration_tests={"min_accuracy": 0.9})
    road.start(road.central_package())
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED and e.current is not None and e.current.name == INTEGRATION_TESTS
    assert "holdout-accuracy: accuracy 0.7500 on 4 held-out rows against a minimum of 0.9" in e.reason
    assert e.stage(INTEGRATION_TESTS).details["figures"]["accuracy"] == 0.75
    assert e.stage(APPROVE_PROD).status is StageStatus.SKIPPED
    assert endpoints.serving_package("ml-prod", PIPELINE) is None


def test_a_package_without_a_held_out_sample_fails_its_accuracy_check(road: Road, runner: DeploymentRunner) -> None:
    road.launch()
    road.start(road.central_package(holdout=False))  # type: ignore[arg-type]
    runner.run_until_idle()
    assert "carries no labelled held-out sample" in road.execution().reason


def test_predictions_outside_the_allowed_labels_fail_the_tests(road: Road, runner: DeploymentRunner) -> None:
    road.launch(integration_tests={"allowed_labels": ["yes", "no"]})
    road.start(road.central_package())
    runner.run_until_idle()
    assert "labels:" in road.execution().reason


def test_a_test_deploy_that_never_gets_healthy_is_reported_and_nothing_else_runs(
        road: Road, runner: DeploymentRunner, endpoints: FakeEndpoints) -> None:
    endpoints.never_healthy.add("ml-test")
    road.launch()
    road.start(road.central_package())
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED and e.current is not None and e.current.name == DEPLOY_TEST
    assert "never got healthy: the workers never passed their health check" in e.reason


def test_a_prod_deploy_that_never_gets_healthy_leaves_production_serving_what_it_served(
        road: Road, runner: DeploymentRunner, endpoints: FakeEndpoints) -> None:
    _awaiting(road, runner)
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    first = road.execution().package
    v2 = road.central_package(version=2)
    road.start(v2)
    runner.run_until_idle()
    road.approve_card()  # the card documents v2 now: it is reviewed again
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    endpoints.never_healthy.add("ml-prod")
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED and e.current is not None and e.current.name == DEPLOY_PROD
    assert f"ml-prod keeps serving revision 1 ({first})" in e.reason
    assert endpoints.serving_package("ml-prod", PIPELINE) == first
    assert e.stage(DEPLOY_PROD).details["previous_package"] == first


def test_a_failed_smoke_test_rolls_production_back(road: Road, runner: DeploymentRunner,
                                                    endpoints: FakeEndpoints) -> None:
    _awaiting(road, runner)
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    first = road.execution().package
    road.start(road.central_package(version=2))
    runner.run_until_idle()
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    endpoints.predict = lambda package, rows: [] if package.endswith("/2") else [1] * len(rows)
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED and e.current is not None and e.current.name == SMOKE_PROD
    assert "production rolled back to its previous configuration" in e.reason
    assert endpoints.serving_package("ml-prod", PIPELINE) == first


def test_a_rejected_package_redeploys_the_latest_approved_one(road: Road, runner: DeploymentRunner) -> None:
    road.launch()
    v1 = road.central_package()
    v2 = road.central_package(version=2)
    road.as_("mei", c.DecideModelPackage(CENTRAL, GROUP, v2.version, "Rejected", "leak"))
    e = road.start(v2, "Rejected")
    assert e.trigger is Trigger.REJECTED and e.package == str(v1.crn)


def test_a_new_decision_supersedes_an_execution_still_waiting(road: Road, runner: DeploymentRunner) -> None:
    first = _awaiting(road, runner)
    road.start(road.central_package(version=2))
    assert road.execution(first).status is ExecutionStatus.SUPERSEDED


def test_an_expired_approval_fails_the_execution_once_and_a_retry_asks_again(
        road: Road, runner: DeploymentRunner, world: World) -> None:
    _awaiting(road, runner, approval={"expires_seconds": 60})
    world.clock.advance(seconds=61)
    road.approve_card()
    with pytest.raises(InvalidTransition, match="expired"):
        road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "late"))
    assert runner.expire_due() == 1 and runner.expire_due() == 0
    e = road.execution()
    assert e.status is ExecutionStatus.FAILED and "the approval expired" in e.reason
    retried = road.as_("mei", c.RetryDeployment(CENTRAL, PIPELINE))
    assert retried.status is ExecutionStatus.PENDING
    runner.run_until_idle()
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL


def test_only_ml_engineers_retry(road: Road, runner: DeploymentRunner) -> None:
    road.launch(integration_tests={"min_accuracy": 0.9})
    road.start(road.central_package())
    runner.run_until_idle()
    with pytest.raises(PermissionDenied):
        road.as_("grace", c.RetryDeployment(CENTRAL, PIPELINE))


def test_an_ml_engineer_rolls_production_back_after_a_release(road: Road, runner: DeploymentRunner,
                                                               endpoints: FakeEndpoints) -> None:
    _awaiting(road, runner)
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    first = road.execution().package
    road.start(road.central_package(version=2))
    runner.run_until_idle()
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    assert road.execution().status is ExecutionStatus.SUCCEEDED
    asked = road.as_("mei", c.RollbackDeployment(CENTRAL, PIPELINE, "complaints from support"))
    assert asked.status is ExecutionStatus.ROLLING_BACK
    runner.run_until_idle()
    e = road.execution()
    assert e.status is ExecutionStatus.ROLLED_BACK and e.rollbacks[-1]["ok"] is True
    assert endpoints.serving_package("ml-prod", PIPELINE) == first


def test_a_decision_on_an_execution_that_is_not_waiting_is_refused(road: Road) -> None:
    road.launch()
    road.start(road.central_package())
    road.approve_card()
    with pytest.raises(InvalidTransition, match="not waiting"):
        road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "early"))


def test_a_second_project_cannot_take_an_existing_pipelines_name(road: Road) -> None:
    road.launch()
    with pytest.raises(Conflict):
        road.as_("mei", c.CreateProject(CENTRAL, PIPELINE, "deploy-realtime-cross-account", {
            "model_group": GROUP}))


def _with_mei_as_officer() -> str:
    from tests.unit.conftest import EXAMPLE
    text = EXAMPLE.read_text()
    marker = "  - {principal: grace, account: ml-shared-services, role: governance-officer}\n"
    return text.replace(marker, marker + "  - {principal: mei, account: ml-shared-services, role: governance-officer}\n")


def test_the_central_approval_starts_an_execution_through_the_projects_rule(road: Road, world: World) -> None:
    road.launch()
    package = road.central_package()
    dispatcher = Dispatcher(world.bus)
    dispatcher.run_until_idle()
    dispatcher.run_until_idle()
    executions = road.as_("mei", c.ListDeploymentExecutions(CENTRAL, PIPELINE)).items
    assert [e.package for e in executions] == [str(package.crn)]
    started = _records(world, "deployments:StartExecution")
    assert [r.actor for r in started] == ["deployment-bot"]


def test_a_launch_whose_prod_account_is_not_production_is_refused_naming_the_field(road: Road) -> None:
    with pytest.raises(ValidationError) as refused:
        road.launch(prod_account="ml-dev")
    fields = {p["field"] for p in refused.value.details["problems"]}
    assert "provisions.deployments[0].prodAccount" in fields


def test_an_unknown_integration_test_setting_is_refused_at_launch(road: Road) -> None:
    with pytest.raises(ValidationError, match="integration_tests"):
        road.launch(integration_tests={"min_acuracy": 0.9})


class _Died(BaseException):
    """The server dying (SIGKILL): nothing after the call that it interrupted runs."""


class _DiesAfter(FakeEndpoints):
    """FakeEndpoints whose server dies right after one chosen call went through."""

    die_after: str = ""

    def deploy(self, identity, account, endpoint, package, *, reason):  # type: ignore[no-untyped-def]
        number = super().deploy(identity, account, endpoint, package, reason=reason)
        if self.die_after == "deploy":
            self.die_after = ""
            raise _Died
        return number

    def rollback(self, identity, account, endpoint, *, reason):  # type: ignore[no-untyped-def]
        number = super().rollback(identity, account, endpoint, reason=reason)
        if self.die_after == "rollback":
            self.die_after = ""
            raise _Died
        return number


def _dies_then_resumes(world: World, endpoints: _DiesAfter, call: str) -> None:
    """A runner dies right after ``call`` (before it noted what it asked for); once its claim ran
    out another takes the execution up."""
    endpoints.die_after = call
    dead = DeploymentRunner(world.bus, endpoints, rollout_poll_seconds=0.001, owner="dead", lease_seconds=30)
    with pytest.raises(_Died):
        dead.run_until_idle()
    world.clock.advance(seconds=31)
    DeploymentRunner(world.bus, endpoints, rollout_poll_seconds=0.001, owner="next").run_until_idle()


def test_a_server_killed_between_asking_for_a_revision_and_noting_it_does_not_deploy_twice(
        road: Road, world: World) -> None:
    endpoints = _DiesAfter(allowed={"deployment-bot"})
    road.launch()
    road.start(road.central_package())
    _dies_then_resumes(world, endpoints, "deploy")
    e = road.execution()
    assert e.status is ExecutionStatus.AWAITING_APPROVAL, e.reason
    assert [r.revision for r in endpoints.revisions[("ml-test", PIPELINE)]] == [1]
    assert e.stage(DEPLOY_TEST).details["revision"] == 1


def test_a_server_killed_between_asking_for_a_rollback_and_noting_it_does_not_roll_back_twice(
        road: Road, world: World) -> None:
    endpoints = _DiesAfter(allowed={"deployment-bot"})
    runner = DeploymentRunner(world.bus, endpoints, rollout_poll_seconds=0.001, owner="first")
    _awaiting(road, runner)
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    first = road.execution().package
    road.start(road.central_package(version=2))
    runner.run_until_idle()
    road.approve_card()
    road.as_("grace", c.DecideDeployment(CENTRAL, PIPELINE, "Approved", "validated"))
    runner.run_until_idle()
    road.as_("mei", c.RollbackDeployment(CENTRAL, PIPELINE, "complaints from support"))
    _dies_then_resumes(world, endpoints, "rollback")
    e = road.execution()
    assert e.status is ExecutionStatus.ROLLED_BACK and e.rollbacks[-1]["ok"] is True, e.reason
    # Revisions 1 and 2 the two releases, 3 the one rollback: a second would have served v2 again.
    assert len(endpoints.revisions[("ml-prod", PIPELINE)]) == 3
    assert endpoints.serving_package("ml-prod", PIPELINE) == first
