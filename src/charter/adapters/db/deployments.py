"""Deployment pipelines and their executions as a repository.

Every save of an execution is conditional on the revision it was read at (``UPDATE … WHERE
revision = :read``): of two writers racing on one execution (a runner and an approver, two servers
sweeping expired approvals) exactly one wins and the other is told so. Claims of runnable
executions and of expired approvals lock rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several servers share the work without waiting on one another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, update

from charter.adapters.db import tables as t
from charter.adapters.db.engine import locking
from charter.domain.deployments import (
    RUNNABLE,
    Approval,
    ApprovalRule,
    DeploymentPipeline,
    Execution,
    ExecutionStatus,
    IntegrationTests,
    Stage,
    Trigger,
)

dp, de = t.deployment_pipelines.c, t.deployment_executions.c


def _pipeline(row: Row[Any]) -> DeploymentPipeline:
    spec = dict(row.spec)
    return DeploymentPipeline(
        account=row.account, name=row.name, project=row.project, model_group=spec["model_group"],
        test_account=spec["test_account"], prod_account=spec["prod_account"], endpoint=spec["endpoint"],
        run_as=spec["run_as"], tests=IntegrationTests.from_document(spec.get("integration_tests")),
        approval=ApprovalRule.from_document(spec.get("approval")), created_by=row.created_by,
        created_at=row.created_at, enabled=bool(row.enabled))


def _execution(row: Row[Any]) -> Execution:
    return Execution(
        id=row.id, account=row.account, pipeline=row.pipeline, trigger=Trigger(row.trigger), event_id=row.event_id,
        package=row.package, central_approver=row.central_approver, created_at=row.created_at,
        updated_at=row.updated_at, status=ExecutionStatus(row.status), reason=row.reason,
        stages=tuple(Stage.from_document(s) for s in row.stages),
        approvals=tuple(Approval.from_document(a) for a in row.approvals),
        approval_expires_at=row.approval_expires_at, revision=int(row.revision), claimed_by=row.claimed_by,
        claimed_until=row.claimed_until, rollbacks=tuple(dict(r) for r in row.rollbacks))


def _state(execution: Execution) -> dict[str, Any]:
    return {"status": str(execution.status), "reason": execution.reason,
            "stages": [s.to_document() for s in execution.stages],
            "approvals": [a.to_document() for a in execution.approvals],
            "rollbacks": [dict(r) for r in execution.rollbacks],
            "approval_expires_at": execution.approval_expires_at, "claimed_by": execution.claimed_by,
            "claimed_until": execution.claimed_until, "updated_at": execution.updated_at}


class SqlDeploymentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _locking(self, q: Any) -> Any:
        return locking(self.conn, q, skip_locked=True)

    # --- pipelines ---

    def get_pipeline(self, account: str, name: str) -> DeploymentPipeline | None:
        row = self.conn.execute(select(t.deployment_pipelines).where(
            and_(dp.account == account, dp.name == name))).first()
        return _pipeline(row) if row else None

    def put_pipeline(self, pipeline: DeploymentPipeline) -> None:
        values = {"project": pipeline.project, "spec": pipeline.spec(), "enabled": pipeline.enabled,
                  "created_by": pipeline.created_by, "created_at": pipeline.created_at}
        changed = self.conn.execute(update(t.deployment_pipelines).where(and_(
            dp.account == pipeline.account, dp.name == pipeline.name)).values(**values)).rowcount
        if not changed:
            self.conn.execute(insert(t.deployment_pipelines).values(account=pipeline.account, name=pipeline.name,
                                                                    **values))

    def list_pipelines(self, account: str, after: str | None, limit: int) -> list[DeploymentPipeline]:
        q = select(t.deployment_pipelines).where(dp.account == account)
        if after is not None:
            q = q.where(dp.name > after)
        return [_pipeline(row) for row in self.conn.execute(q.order_by(dp.name).limit(limit))]

    # --- executions ---

    def add_execution(self, execution: Execution) -> None:
        self.conn.execute(insert(t.deployment_executions).values(
            id=execution.id, account=execution.account, pipeline=execution.pipeline, event_id=execution.event_id,
            trigger=str(execution.trigger), package=execution.package, central_approver=execution.central_approver,
            revision=execution.revision, created_at=execution.created_at, **_state(execution)))

    def get_execution(self, execution_id: str) -> Execution | None:
        row = self.conn.execute(select(t.deployment_executions).where(de.id == execution_id)).first()
        return _execution(row) if row else None

    def find_by_event(self, account: str, pipeline: str, event_id: str) -> Execution | None:
        row = self.conn.execute(select(t.deployment_executions).where(and_(
            de.account == account, de.pipeline == pipeline, de.event_id == event_id))).first()
        return _execution(row) if row else None

    def save_execution(self, execution: Execution) -> bool:
        """Store ``execution`` as the next revision of the one read at ``execution.revision``; False,
        storing nothing, when the stored execution has moved on since."""
        changed = self.conn.execute(update(t.deployment_executions).where(and_(
            de.id == execution.id, de.revision == execution.revision)).values(
            revision=execution.revision + 1, **_state(execution))).rowcount
        return bool(changed)

    def list_executions(self, account: str, pipeline: str, after: str | None, limit: int) -> list[Execution]:
        q = select(t.deployment_executions).where(and_(de.account == account, de.pipeline == pipeline))
        if after is not None:
            q = q.where(de.id < after)
        return [_execution(row) for row in self.conn.execute(q.order_by(de.id.desc()).limit(limit))]

    def unfinished(self, account: str, pipeline: str) -> list[Execution]:
        finished = [str(s) for s in ExecutionStatus if s.finished]
        q = select(t.deployment_executions).where(and_(
            de.account == account, de.pipeline == pipeline, de.status.not_in(finished)))
        return [_execution(row) for row in self.conn.execute(q.order_by(de.id))]

    def claim_runnable(self, now: datetime, limit: int) -> list[Execution]:
        """Executions a runner should take up now (none holds them, or a holder's lease ran out),
        oldest first, locked until the transaction ends."""
        q = (select(t.deployment_executions)
             .where(and_(de.status.in_([str(s) for s in RUNNABLE]),
                         or_(de.claimed_until.is_(None), de.claimed_until < now)))
             .order_by(de.updated_at, de.id).limit(limit))
        return [_execution(row) for row in self.conn.execute(self._locking(q))]

    def any_enabled(self) -> bool:
        return self.conn.execute(select(dp.name).where(dp.enabled.is_(True)).limit(1)).first() is not None

    def has_runnable(self, now: datetime) -> bool:
        q = select(de.id).where(and_(de.status.in_([str(s) for s in RUNNABLE]),
                                     or_(de.claimed_until.is_(None), de.claimed_until < now))).limit(1)
        return self.conn.execute(q).first() is not None

    def claim_expired(self, now: datetime, limit: int) -> list[Execution]:
        """Executions whose production approval request ran out, locked until the transaction ends."""
        q = (select(t.deployment_executions)
             .where(and_(de.status == str(ExecutionStatus.AWAITING_APPROVAL), de.approval_expires_at <= now))
             .order_by(de.approval_expires_at, de.id).limit(limit))
        return [_execution(row) for row in self.conn.execute(self._locking(q))]
