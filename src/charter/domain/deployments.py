"""Deployment pipelines (the article's CodePipeline with a manual approval) and their executions.

A deployment pipeline lives in the shared-services account, beside the central registry, and is
created by launching a deployment project. Each approved (or, after a rejection, the latest
approved) central package gets an execution through five stages, in order:

``deploy-test`` → ``integration-tests`` → ``approve-prod`` → ``deploy-prod`` → ``smoke-prod``

The execution is a state machine with one stage in progress at a time. The runner moves it
through the automatic stages; the manual approval is the only stage people move. Every rule of
the approval (eligible role, a comment, approvers distinct from whoever approved the central
package, an approved model card, a number of distinct approvals, an expiry) is checked here, so it
holds whatever the organization's policies say; the default policies express the same rules so a
refusal names a policy.

A stored execution carries a ``revision``: every save is conditional on the revision it was read
at, so a runner, an approver and an expiry sweep racing on one execution never both win.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from charter.domain.crn import CRN
from charter.domain.names import check_name
from charter.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError

DEPLOY_TEST = "deploy-test"
INTEGRATION_TESTS = "integration-tests"
APPROVE_PROD = "approve-prod"
DEPLOY_PROD = "deploy-prod"
SMOKE_PROD = "smoke-prod"
STAGES: tuple[str, ...] = (DEPLOY_TEST, INTEGRATION_TESTS, APPROVE_PROD, DEPLOY_PROD, SMOKE_PROD)

APPROVER_ROLE = "governance-officer"
CARD_APPROVED = "Approved"
MAX_COMMENT = 2000
MAX_APPROVALS = 10
MAX_EXPIRY_SECONDS = 30 * 86400

# The policies that express the approval rules (policies/default.cedar): a refusal here names the
# same policy as one decided by Cedar.
POLICY_NOT_CENTRAL_APPROVER = "production-approver-is-not-central-approver"
POLICY_APPROVED_CARD = "production-needs-an-approved-card"
POLICY_ELIGIBLE_ROLE = "governance-officers-approve-production"

DEFAULT_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["predictions"],
    "properties": {"predictions": {"type": "array"}},
}


class ExecutionStatus(StrEnum):
    PENDING = "Pending"
    """A runner is to take it up (new, approved, retried, or released by a stopping server)."""
    IN_PROGRESS = "InProgress"
    AWAITING_APPROVAL = "AwaitingApproval"
    ROLLING_BACK = "RollingBack"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"
    ROLLED_BACK = "RolledBack"

    @property
    def finished(self) -> bool:
        return self in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.SUPERSEDED,
                        ExecutionStatus.ROLLED_BACK)


RUNNABLE = (ExecutionStatus.PENDING, ExecutionStatus.IN_PROGRESS, ExecutionStatus.ROLLING_BACK)


class StageStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    AWAITING_APPROVAL = "AwaitingApproval"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class Trigger(StrEnum):
    APPROVED = "Approved"
    """A central package was approved: it is deployed."""
    REJECTED = "Rejected"
    """A central package was rejected: the latest approved package of the group is deployed again."""


class Decision(StrEnum):
    APPROVED = "Approved"
    REJECTED = "Rejected"


# --- the pipeline ---------------------------------------------------------------------------------

def _number(doc: Mapping[str, Any], key: str, default: float, low: float, high: float, where: str) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ValidationError(f"{where}.{key} must be a number from {low} to {high}, not {value!r}",
                              field=f"{where}.{key}")
    return float(value)


@dataclass(frozen=True, slots=True)
class IntegrationTests:
    """What ``integration-tests`` checks against the test endpoint before anyone is asked."""

    requests: int = 20
    """Invocations timed for the latency budget (the package's sample and held-out rows in turn)."""
    latency_p95_ms: float = 200.0
    min_accuracy: float = 0.0
    """On the package's labelled held-out sample (``holdout.json``: instances and labels)."""
    min_success_rate: float = 1.0
    allowed_labels: tuple[Any, ...] = ()
    """Every prediction must be one of these; empty: one of the held-out sample's labels."""
    output_schema: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OUTPUT_SCHEMA))
    """A JSON Schema each response must satisfy."""

    def to_document(self) -> dict[str, Any]:
        return {"requests": self.requests, "latency_p95_ms": self.latency_p95_ms,
                "min_accuracy": self.min_accuracy, "min_success_rate": self.min_success_rate,
                "allowed_labels": list(self.allowed_labels), "output_schema": self.output_schema}

    @staticmethod
    def from_document(doc: Mapping[str, Any] | None, where: str = "integration_tests") -> IntegrationTests:
        doc = doc or {}
        if not isinstance(doc, Mapping):
            raise ValidationError(f"{where} must be an object", field=where)
        requests = doc.get("requests", 20)
        if isinstance(requests, bool) or not isinstance(requests, int) or not 1 <= requests <= 10000:
            raise ValidationError(f"{where}.requests must be a whole number from 1 to 10000", field=f"{where}.requests")
        labels = doc.get("allowed_labels", [])
        if not isinstance(labels, list) or len(labels) > 1000 or not all(
                isinstance(v, str | int | float | bool) for v in labels):
            raise ValidationError(f"{where}.allowed_labels must be a list of up to 1000 labels",
                                  field=f"{where}.allowed_labels")
        schema = doc.get("output_schema", DEFAULT_OUTPUT_SCHEMA)
        if not isinstance(schema, dict):
            raise ValidationError(f"{where}.output_schema must be a JSON Schema object", field=f"{where}.output_schema")
        return IntegrationTests(
            requests=requests,
            latency_p95_ms=_number(doc, "latency_p95_ms", doc.get("max_latency_ms", 200.0), 0.001, 3_600_000, where),
            min_accuracy=_number(doc, "min_accuracy", 0.0, 0, 1, where),
            min_success_rate=_number(doc, "min_success_rate", 1.0, 0, 1, where),
            allowed_labels=tuple(labels), output_schema=dict(schema))


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """Who approves production, how many of them, and for how long the request stands."""

    role: str = APPROVER_ROLE
    required: int = 1
    expires_seconds: int = 86400

    def __post_init__(self) -> None:
        if not 1 <= self.required <= MAX_APPROVALS:
            raise ValidationError(f"approval.required must be from 1 to {MAX_APPROVALS}", field="approval.required")
        if not 1 <= self.expires_seconds <= MAX_EXPIRY_SECONDS:
            raise ValidationError(f"approval.expires_seconds must be from 1 to {MAX_EXPIRY_SECONDS}",
                                  field="approval.expires_seconds")

    def to_document(self) -> dict[str, Any]:
        return {"role": self.role, "required": self.required, "expires_seconds": self.expires_seconds}

    @staticmethod
    def from_document(doc: Mapping[str, Any] | None, default_expiry: int = 86400) -> ApprovalRule:
        doc = doc or {}
        if not isinstance(doc, Mapping):
            raise ValidationError("approval must be an object", field="approval")
        required, expires = doc.get("required", 1), doc.get("expires_seconds", default_expiry)
        for key, value in (("required", required), ("expires_seconds", expires)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"approval.{key} must be a whole number", field=f"approval.{key}")
        role = doc.get("role", APPROVER_ROLE)
        if role != APPROVER_ROLE:
            # The default policies let governance officers approve production; another role would
            # need its own policy, and a template must not widen who approves production.
            raise ValidationError(f"approval.role is {APPROVER_ROLE}, not {role!r}", field="approval.role")
        return ApprovalRule(str(role), int(required), int(expires))


@dataclass(frozen=True, slots=True)
class DeploymentPipeline:
    account: str
    name: str
    project: str
    model_group: str
    test_account: str
    prod_account: str
    endpoint: str
    run_as: str
    """The service principal every stage acts as (authorized and audited like a person)."""
    tests: IntegrationTests
    approval: ApprovalRule
    created_by: str
    created_at: datetime
    enabled: bool = True

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.name, "deployment pipeline")
        check_name(self.model_group, "model package group")
        check_name(self.test_account, "test account")
        check_name(self.prod_account, "prod account")
        check_name(self.endpoint, "endpoint")
        if self.test_account == self.prod_account:
            raise ValidationError("the test and production accounts must differ", field="prod_account")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "deployments", "deployment-pipeline", self.name)

    def spec(self) -> dict[str, Any]:
        return {"project": self.project, "model_group": self.model_group, "test_account": self.test_account,
                "prod_account": self.prod_account, "endpoint": self.endpoint, "run_as": self.run_as,
                "integration_tests": self.tests.to_document(), "approval": self.approval.to_document()}


# --- executions ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    status: StageStatus = StageStatus.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_document(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status),
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "reason": self.reason, "details": self.details}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> Stage:
        def at(key: str) -> datetime | None:
            value = doc.get(key)
            return datetime.fromisoformat(value) if value else None

        return Stage(doc["name"], StageStatus(doc["status"]), at("started_at"), at("finished_at"),
                     doc.get("reason"), dict(doc.get("details") or {}))


@dataclass(frozen=True, slots=True)
class Approval:
    principal: str
    decision: Decision
    comment: str
    at: datetime
    via: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {"principal": self.principal, "decision": str(self.decision), "comment": self.comment,
                "at": self.at.isoformat(), "via": self.via}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> Approval:
        return Approval(doc["principal"], Decision(doc["decision"]), doc["comment"],
                        datetime.fromisoformat(doc["at"]), doc.get("via"))


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    account: str
    pipeline: str
    trigger: Trigger
    event_id: str
    package: str
    """The CRN of the central package this execution deploys."""
    central_approver: str | None
    """Who approved that package centrally: they may not approve its production stage."""
    created_at: datetime
    updated_at: datetime
    status: ExecutionStatus = ExecutionStatus.PENDING
    reason: str = ""
    stages: tuple[Stage, ...] = tuple(Stage(name) for name in STAGES)
    approvals: tuple[Approval, ...] = ()
    approval_expires_at: datetime | None = None
    revision: int = 0
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    rollbacks: tuple[dict[str, Any], ...] = ()
    """Each rollback of production asked for after the execution ended (who, why, revision)."""

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "deployments", "execution", self.pipeline, self.id)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    @property
    def current(self) -> Stage | None:
        """The first stage that has not succeeded (None: all did)."""
        return next((s for s in self.stages if s.status is not StageStatus.SUCCEEDED), None)

    def _with(self, stage: Stage, now: datetime, **changes: Any) -> Execution:
        stages = tuple(stage if s.name == stage.name else s for s in self.stages)
        return replace(self, stages=stages, updated_at=now, **changes)

    # --- the automatic stages (the runner) ---

    def begin(self, name: str, now: datetime) -> Execution:
        stage = self.stage(name)
        if stage.status is StageStatus.IN_PROGRESS:
            return self  # resumed after a restart: keep its start and what it recorded
        if stage.status is not StageStatus.PENDING:
            raise InvalidTransition(f"stage {name} of {self.id} is {stage.status}", stage=name)
        return self._with(replace(stage, status=StageStatus.IN_PROGRESS, started_at=now, reason=None),
                          now, status=ExecutionStatus.IN_PROGRESS)

    def note(self, name: str, now: datetime, **details: Any) -> Execution:
        """Record what a stage in progress did so far (a revision asked for), for a resumed run."""
        stage = self.stage(name)
        return self._with(replace(stage, details={**stage.details, **details}), now)

    def succeed(self, name: str, now: datetime, **details: Any) -> Execution:
        stage = self.stage(name)
        done = self._with(replace(stage, status=StageStatus.SUCCEEDED, finished_at=now,
                                  details={**stage.details, **details}), now)
        if done.current is None:
            return replace(done, status=ExecutionStatus.SUCCEEDED, reason="", claimed_by=None, claimed_until=None)
        return done

    def fail(self, name: str, now: datetime, reason: str, **details: Any) -> Execution:
        """The stage failed: the execution stops there, the later stages are skipped."""
        stage = self.stage(name)
        failed = self._with(replace(stage, status=StageStatus.FAILED, finished_at=now, reason=reason[:4000],
                                    details={**stage.details, **details}), now)
        later = STAGES[STAGES.index(name) + 1:]
        stages = tuple(replace(s, status=StageStatus.SKIPPED) if s.name in later and s.status is StageStatus.PENDING
                       else s for s in failed.stages)
        return replace(failed, stages=stages, status=ExecutionStatus.FAILED,
                       reason=f"{name} failed: {reason}"[:4000], claimed_by=None, claimed_until=None,
                       approval_expires_at=None if name == APPROVE_PROD else failed.approval_expires_at)

    def request_approval(self, now: datetime, rule: ApprovalRule) -> Execution:
        stage = self.stage(APPROVE_PROD)
        if stage.status is StageStatus.AWAITING_APPROVAL:
            return self
        asked = replace(stage, status=StageStatus.AWAITING_APPROVAL, started_at=stage.started_at or now,
                        details={**stage.details, "required": rule.required, "role": rule.role})
        return self._with(asked, now, status=ExecutionStatus.AWAITING_APPROVAL,
                          approval_expires_at=now + timedelta(seconds=rule.expires_seconds),
                          claimed_by=None, claimed_until=None)

    # --- the manual approval ---

    def _awaiting(self, now: datetime) -> Stage:
        stage = self.stage(APPROVE_PROD)
        if self.status is not ExecutionStatus.AWAITING_APPROVAL or stage.status is not StageStatus.AWAITING_APPROVAL:
            where = self.current.name if self.current else "its end"
            raise InvalidTransition(f"execution {self.id} of {self.pipeline} is {self.status} (at {where}); "
                                    "it is not waiting for a production approval", status=str(self.status),
                                    execution=self.id)
        if self.approval_expires_at is not None and now >= self.approval_expires_at:
            raise InvalidTransition(f"the production approval of execution {self.id} expired at "
                                    f"{self.approval_expires_at.isoformat()}; retry the execution to ask again",
                                    execution=self.id, expired_at=self.approval_expires_at.isoformat())
        return stage

    def approve(self, principal: str, comment: str, now: datetime, rule: ApprovalRule, *,
                card_status: str | None, via: str | None = None) -> Execution:
        """One production approval. The execution goes on (Pending) once ``rule.required`` distinct
        principals approved."""
        stage = self._awaiting(now)
        comment = _comment(comment)
        if principal == self.central_approver:
            raise PermissionDenied(f"{principal} approved {self.package} centrally; the production approval "
                                   "needs someone else", policy=POLICY_NOT_CENTRAL_APPROVER, principal=principal)
        if card_status != CARD_APPROVED:
            raise PermissionDenied(f"the model card of {self.package.split(':')[-1].split('/')[1]} is "
                                   f"{card_status or 'missing'}, not Approved: production waits for it",
                                   policy=POLICY_APPROVED_CARD, card_status=card_status)
        if any(a.principal == principal for a in self.approvals):
            raise Conflict(f"{principal} already approved execution {self.id}; it needs "
                           f"{rule.required} distinct approvers", principal=principal)
        approvals = (*self.approvals, Approval(principal, Decision.APPROVED, comment, now, via))
        count = sum(1 for a in approvals if a.decision is Decision.APPROVED)
        details = {**stage.details, "approvals": count, "required": rule.required}
        if count < rule.required:
            return self._with(replace(stage, details=details), now, approvals=approvals)
        done = replace(stage, status=StageStatus.SUCCEEDED, finished_at=now, details=details)
        return self._with(done, now, approvals=approvals, status=ExecutionStatus.PENDING, approval_expires_at=None)

    def reject(self, principal: str, comment: str, now: datetime, *, via: str | None = None) -> Execution:
        self._awaiting(now)
        comment = _comment(comment)
        rejected = replace(self, approvals=(*self.approvals, Approval(principal, Decision.REJECTED, comment, now, via)))
        return rejected.fail(APPROVE_PROD, now, f"rejected by {principal}: {comment}", rejected_by=principal)

    def expire(self, now: datetime) -> Execution:
        if self.status is not ExecutionStatus.AWAITING_APPROVAL or self.approval_expires_at is None \
                or now < self.approval_expires_at:
            raise InvalidTransition(f"execution {self.id} has no approval request that expired", execution=self.id)
        at = self.approval_expires_at.isoformat()
        return self.fail(APPROVE_PROD, now, f"the approval expired at {at} with "
                         f"{len(self.approvals)} of {self.stage(APPROVE_PROD).details.get('required', 1)} approvals",
                         expired_at=at)

    # --- operators ---

    def retry(self, now: datetime) -> Execution:
        """Go again from the stage that failed; the stages that succeeded stand."""
        if self.status is not ExecutionStatus.FAILED:
            raise InvalidTransition(f"execution {self.id} is {self.status}; only a failed execution is retried",
                                    status=str(self.status))
        stages = []
        for stage in self.stages:
            if stage.status in (StageStatus.FAILED, StageStatus.SKIPPED):
                tries = int(stage.details.get("attempts", 1)) + 1 if stage.status is StageStatus.FAILED else 0
                stage = Stage(stage.name, details={"attempts": tries} if tries else {})
            stages.append(stage)
        approvals = () if self.stage(APPROVE_PROD).status is not StageStatus.SUCCEEDED else self.approvals
        return replace(self, stages=tuple(stages), status=ExecutionStatus.PENDING, reason="", updated_at=now,
                       approvals=approvals, approval_expires_at=None, claimed_by=None, claimed_until=None)

    def request_rollback(self, principal: str, reason: str, now: datetime) -> Execution:
        if self.stage(DEPLOY_PROD).details.get("revision") is None:
            raise InvalidTransition(f"execution {self.id} never deployed to production; there is nothing "
                                    "to roll back", execution=self.id)
        if not self.status.finished or self.status is ExecutionStatus.SUPERSEDED:
            raise InvalidTransition(f"execution {self.id} is {self.status}; roll back an execution that ended",
                                    status=str(self.status))
        entry = {"requested_by": principal, "reason": _comment(reason), "requested_at": now.isoformat(),
                 "previous_status": str(self.status)}
        return replace(self, status=ExecutionStatus.ROLLING_BACK, rollbacks=(*self.rollbacks, entry),
                       updated_at=now, claimed_by=None, claimed_until=None)

    def rolled_back(self, now: datetime, ok: bool, **details: Any) -> Execution:
        last = {**self.rollbacks[-1], **details, "finished_at": now.isoformat(), "ok": ok}
        status = ExecutionStatus.ROLLED_BACK if ok else ExecutionStatus(last["previous_status"])
        reason = (f"production rolled back by {last['requested_by']}: {last['reason']}" if ok
                  else f"the rollback failed: {details.get('error', '')}")
        return replace(self, status=status, reason=reason[:4000], rollbacks=(*self.rollbacks[:-1], last),
                       updated_at=now, claimed_by=None, claimed_until=None)

    def supersede(self, reason: str, now: datetime) -> Execution:
        if self.status.finished:
            return self
        stages = tuple(replace(s, status=StageStatus.SKIPPED) if s.status in (
            StageStatus.PENDING, StageStatus.IN_PROGRESS, StageStatus.AWAITING_APPROVAL) else s for s in self.stages)
        return replace(self, stages=stages, status=ExecutionStatus.SUPERSEDED, reason=reason, updated_at=now,
                       approval_expires_at=None, claimed_by=None, claimed_until=None)

    def released(self, now: datetime) -> Execution:
        """Handed back by a stopping runner: any runner takes it up again where it stopped."""
        status = self.status if self.status is ExecutionStatus.ROLLING_BACK else ExecutionStatus.PENDING
        return replace(self, status=status, claimed_by=None, claimed_until=None, updated_at=now)


def _comment(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError("a comment is required: say what was checked", field="comment")
    if len(text) > MAX_COMMENT:
        raise ValidationError(f"a comment holds at most {MAX_COMMENT} characters", field="comment")
    return text


def new_execution(execution_id: str, pipeline: DeploymentPipeline, trigger: Trigger, event_id: str,
                  package: str, central_approver: str | None, now: datetime) -> Execution:
    return Execution(execution_id, pipeline.account, pipeline.name, trigger, event_id, package, central_approver,
                     now, now)


# --- integration test results -----------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..100) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_document(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def judge(tests: IntegrationTests, *, latencies_ms: Sequence[float], errors: Sequence[str],
          schema_violations: Sequence[str], label_violations: Sequence[str], correct: int, labelled: int,
          holdout_problem: str | None) -> tuple[list[Check], dict[str, Any]]:
    """The checks of ``integration-tests`` from what the invocations measured, and the figures."""
    sent = len(latencies_ms) + len(errors)
    success = len(latencies_ms) / sent if sent else 0.0
    p95 = percentile(latencies_ms, 95)
    accuracy = correct / labelled if labelled else None
    checks = [
        Check("success-rate", success >= tests.min_success_rate,
              f"{len(latencies_ms)} of {sent} requests succeeded ({success:.3f}; at least "
              f"{tests.min_success_rate} needed)" + (f"; first error: {errors[0]}" if errors else "")),
        Check("latency-p95", bool(latencies_ms) and p95 <= tests.latency_p95_ms,
              f"p95 {p95:.1f} ms against a budget of {tests.latency_p95_ms:g} ms"),
        Check("output-schema", not schema_violations,
              "every response matched the expected schema" if not schema_violations
              else f"{len(schema_violations)} responses did not: {schema_violations[0]}"),
        Check("labels", not label_violations,
              "every prediction is an allowed label" if not label_violations
              else f"{len(label_violations)} predictions are not allowed labels: {', '.join(label_violations[:5])}"),
    ]
    if holdout_problem is not None:
        checks.append(Check("holdout-accuracy", False, holdout_problem))
    else:
        checks.append(Check("holdout-accuracy", accuracy is not None and accuracy >= tests.min_accuracy,
                            f"accuracy {accuracy if accuracy is not None else 0:.4f} on {labelled} held-out rows "
                            f"against a minimum of {tests.min_accuracy}"))
    figures = {"requests": sent, "succeeded": len(latencies_ms), "errors": len(errors),
               "success_rate": round(success, 4),
               "latency_ms": {"p50": round(percentile(latencies_ms, 50), 3), "p95": round(p95, 3),
                              "max": round(max(latencies_ms), 3) if latencies_ms else 0.0},
               "accuracy": round(accuracy, 4) if accuracy is not None else None, "holdout_rows": labelled}
    return checks, figures
