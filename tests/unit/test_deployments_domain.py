"""The execution state machine: stages in order, the manual approval's rules, expiry, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from charter.domain.deployments import (
    APPROVE_PROD,
    DEPLOY_PROD,
    DEPLOY_TEST,
    INTEGRATION_TESTS,
    POLICY_APPROVED_CARD,
    POLICY_NOT_CENTRAL_APPROVER,
    SMOKE_PROD,
    ApprovalRule,
    DeploymentPipeline,
    Execution,
    ExecutionStatus,
    IntegrationTests,
    StageStatus,
    Trigger,
    judge,
    new_execution,
    percentile,
)
from charter.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
RULE = ApprovalRule(required=1, expires_seconds=3600)
PACKAGE = "crn:charter:ml-shared-services:registry:model-package/churn-ml-dev/1"


def _pipeline(**changes: object) -> DeploymentPipeline:
    values: dict[str, object] = dict(
        account="ml-shared-services", name="churn-deploy", project="churn-deploy", model_group="churn-ml-dev",
        test_account="ml-test", prod_account="ml-prod", endpoint="churn-deploy", run_as="deployment-bot",
        tests=IntegrationTests(), approval=RULE, created_by="mei", created_at=T0)
    values.update(changes)
    return DeploymentPipeline(**values)  # type: ignore[arg-type]


def _through_tests() -> Execution:
    e = new_execution("e1", _pipeline(), Trigger.APPROVED, "ev1", PACKAGE, "mei", T0)
    for stage in (DEPLOY_TEST, INTEGRATION_TESTS):
        e = e.begin(stage, T0).succeed(stage, T0)
    return e.request_approval(T0, RULE)


def test_a_new_execution_has_the_five_stages_in_order_all_pending() -> None:
    e = new_execution("e1", _pipeline(), Trigger.APPROVED, "ev1", PACKAGE, "mei", T0)
    assert [s.name for s in e.stages] == [DEPLOY_TEST, INTEGRATION_TESTS, APPROVE_PROD, DEPLOY_PROD, SMOKE_PROD]
    assert {s.status for s in e.stages} == {StageStatus.PENDING} and e.status is ExecutionStatus.PENDING


def test_a_failed_stage_stops_the_execution_there_and_skips_the_rest() -> None:
    e = new_execution("e1", _pipeline(), Trigger.APPROVED, "ev1", PACKAGE, "mei", T0)
    e = e.begin(DEPLOY_TEST, T0).fail(DEPLOY_TEST, T0, "never got healthy")
    assert e.status is ExecutionStatus.FAILED and e.reason == "deploy-test failed: never got healthy"
    assert [s.status for s in e.stages[1:]] == [StageStatus.SKIPPED] * 4
    assert e.current is not None and e.current.name == DEPLOY_TEST


def test_asking_for_approval_waits_and_sets_the_expiry() -> None:
    e = _through_tests()
    assert e.status is ExecutionStatus.AWAITING_APPROVAL
    assert e.stage(APPROVE_PROD).status is StageStatus.AWAITING_APPROVAL
    assert e.approval_expires_at == T0 + timedelta(hours=1)


def test_one_approval_with_a_comment_lets_the_execution_go_on() -> None:
    e = _through_tests().approve("grace", "validated", T0, RULE, card_status="Approved")
    assert e.status is ExecutionStatus.PENDING and e.stage(APPROVE_PROD).status is StageStatus.SUCCEEDED
    assert [(a.principal, a.comment) for a in e.approvals] == [("grace", "validated")]


def test_an_approval_without_a_comment_is_refused() -> None:
    with pytest.raises(ValidationError, match="comment is required"):
        _through_tests().approve("grace", "  ", T0, RULE, card_status="Approved")


def test_whoever_approved_the_central_package_cannot_approve_production() -> None:
    with pytest.raises(PermissionDenied) as refused:
        _through_tests().approve("mei", "looks fine", T0, RULE, card_status="Approved")
    assert refused.value.details["policy"] == POLICY_NOT_CENTRAL_APPROVER


def test_production_is_not_approved_while_the_model_card_is_not_approved() -> None:
    with pytest.raises(PermissionDenied, match="PendingReview, not Approved") as refused:
        _through_tests().approve("grace", "ok", T0, RULE, card_status="PendingReview")
    assert refused.value.details["policy"] == POLICY_APPROVED_CARD


def test_two_required_approvals_need_two_distinct_approvers() -> None:
    rule = ApprovalRule(required=2)
    e = _through_tests().approve("grace", "ok", T0, rule, card_status="Approved")
    assert e.status is ExecutionStatus.AWAITING_APPROVAL and e.stage(APPROVE_PROD).details["approvals"] == 1
    with pytest.raises(Conflict, match="already approved"):
        e.approve("grace", "again", T0, rule, card_status="Approved")
    e = e.approve("olga", "ok too", T0, rule, card_status="Approved")
    assert e.status is ExecutionStatus.PENDING


def test_an_approval_after_the_expiry_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="expired"):
        _through_tests().approve("grace", "late", T0 + timedelta(hours=2), RULE, card_status="Approved")


def test_an_expired_request_fails_the_execution_at_the_approval() -> None:
    e = _through_tests().expire(T0 + timedelta(hours=1))
    assert e.status is ExecutionStatus.FAILED and "expired" in e.reason
    assert e.stage(APPROVE_PROD).status is StageStatus.FAILED and e.stage(DEPLOY_PROD).status is StageStatus.SKIPPED


def test_a_request_that_has_not_run_out_does_not_expire() -> None:
    with pytest.raises(InvalidTransition):
        _through_tests().expire(T0 + timedelta(minutes=59))


def test_a_rejection_fails_the_execution_naming_who_and_why() -> None:
    e = _through_tests().reject("grace", "drift seen", T0)
    assert e.status is ExecutionStatus.FAILED and "rejected by grace: drift seen" in e.reason


def test_a_retry_goes_again_from_the_failed_stage_keeping_what_succeeded() -> None:
    e = _through_tests().expire(T0 + timedelta(hours=1)).retry(T0 + timedelta(hours=2))
    assert e.status is ExecutionStatus.PENDING
    assert [s.status for s in e.stages] == [StageStatus.SUCCEEDED] * 2 + [StageStatus.PENDING] * 3
    assert e.stage(APPROVE_PROD).details == {"attempts": 2}


def test_only_a_failed_execution_is_retried() -> None:
    with pytest.raises(InvalidTransition):
        _through_tests().retry(T0)


def test_a_rollback_needs_an_execution_that_deployed_production() -> None:
    with pytest.raises(InvalidTransition, match="never deployed to production"):
        _through_tests().expire(T0 + timedelta(hours=1)).request_rollback("mei", "bad", T0)


def test_a_superseded_execution_skips_what_it_had_not_done() -> None:
    e = _through_tests().supersede("a newer package", T0)
    assert e.status is ExecutionStatus.SUPERSEDED and e.stage(APPROVE_PROD).status is StageStatus.SKIPPED
    assert e.approval_expires_at is None


def test_a_template_cannot_widen_who_approves_production() -> None:
    with pytest.raises(ValidationError, match="governance-officer"):
        ApprovalRule.from_document({"role": "ml-engineer"})


def test_the_test_and_production_accounts_must_differ() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        _pipeline(prod_account="ml-test")


def test_the_p95_is_the_nearest_rank() -> None:
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([3.0], 95) == 3.0 and percentile([], 95) == 0.0


def test_judging_names_every_check_that_failed() -> None:
    checks, figures = judge(IntegrationTests(latency_p95_ms=10, min_accuracy=0.9), latencies_ms=[5.0, 50.0],
                            errors=["boom"], schema_violations=[], label_violations=["'x'"], correct=3,
                            labelled=4, holdout_problem=None)
    failed = {c.name for c in checks if not c.passed}
    assert failed == {"success-rate", "latency-p95", "labels", "holdout-accuracy"}
    assert figures["accuracy"] == 0.75 and figures["errors"] == 1 and figures["requests"] == 3
