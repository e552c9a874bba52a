"""Pipelines as a repository: definitions, code manifests, runs and the step cache."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from charter.adapters.db import tables as t
from charter.adapters.db.engine import locking
from charter.domain.pipelines import Pipeline, PipelineRun, RunStatus, StepState

p, code, r, k = t.pipelines.c, t.pipeline_code.c, t.pipeline_runs.c, t.pipeline_step_cache.c

# The runner reads and saves a run, and looks up the step cache, for every change of every step:
# these statements are built once (SQLAlchemy then skips building them and their cache keys again).
_GET_RUN = select(t.pipeline_runs).where(r.id == bindparam("run_id"))
_SAVE_RUN = (update(t.pipeline_runs).where(r.id == bindparam("run_id"))
             # The cancellation flag only ever goes up: a runner's save never clears a request.
             .values(cancel_requested=r.cancel_requested | bindparam("cancel", type_=t.pipeline_runs.c.cancel_requested.type),
                     status=bindparam("status"), reason=bindparam("reason"), steps=bindparam("steps"),
                     started_at=bindparam("started_at"), finished_at=bindparam("finished_at")))
_GET_CACHED = select(t.pipeline_step_cache).where(and_(k.account == bindparam("account"), k.key == bindparam("key")))
# One statement: the first entry for a key stays (a concurrent run's equal one is dropped).
_PUT_CACHED = {"postgresql": postgresql.insert(t.pipeline_step_cache).on_conflict_do_nothing(),
               "sqlite": sqlite.insert(t.pipeline_step_cache).on_conflict_do_nothing()}


def _pipeline(row: Row[Any]) -> Pipeline:
    return Pipeline(row.account, row.name, row.definition, row.digest, row.code_sha256, row.created_by,
                    row.created_at, int(row.version), dict(row.defaults or {}))


def _run(row: Row[Any]) -> PipelineRun:
    return PipelineRun(
        id=row.id, account=row.account, pipeline=row.pipeline, definition=row.definition, digest=row.digest,
        code_sha256=row.code_sha256, parameters=dict(row.parameters), started_by=row.started_by,
        created_at=row.created_at, steps=tuple(StepState.from_dict(s) for s in row.steps),
        status=RunStatus(row.status), reason=row.reason, started_at=row.started_at,
        finished_at=row.finished_at, cancel_requested=bool(row.cancel_requested))


def _state(run: PipelineRun) -> dict[str, Any]:
    return {"status": str(run.status), "reason": run.reason, "steps": [s.to_dict() for s in run.steps],
            "started_at": run.started_at, "finished_at": run.finished_at}


class SqlPipelineRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_pipeline(self, account: str, name: str) -> Pipeline | None:
        row = self.conn.execute(select(t.pipelines).where(and_(p.account == account, p.name == name))).first()
        return _pipeline(row) if row else None

    def put_pipeline(self, pipeline: Pipeline, code_files: dict[str, str]) -> None:
        have = self.conn.execute(select(code.sha256).where(and_(
            code.account == pipeline.account, code.sha256 == pipeline.code_sha256))).first()
        if have is None:
            self.conn.execute(insert(t.pipeline_code).values(account=pipeline.account, sha256=pipeline.code_sha256,
                                                             files=code_files))
        values = {"version": pipeline.version, "definition": pipeline.definition, "digest": pipeline.digest,
                  "code_sha256": pipeline.code_sha256, "created_by": pipeline.created_by,
                  "created_at": pipeline.created_at, "defaults": dict(pipeline.defaults)}
        changed = self.conn.execute(update(t.pipelines).where(and_(
            p.account == pipeline.account, p.name == pipeline.name)).values(**values)).rowcount
        if not changed:
            self.conn.execute(insert(t.pipelines).values(account=pipeline.account, name=pipeline.name, **values))

    def code_of(self, account: str, code_sha256: str) -> dict[str, str] | None:
        row = self.conn.execute(select(code.files).where(and_(
            code.account == account, code.sha256 == code_sha256))).first()
        return dict(row.files) if row else None

    def list_pipelines(self, account: str, after: str | None, limit: int) -> list[Pipeline]:
        q = select(t.pipelines).where(p.account == account)
        if after is not None:
            q = q.where(p.name > after)
        return [_pipeline(row) for row in self.conn.execute(q.order_by(p.name).limit(limit))]

    def add_run(self, run: PipelineRun) -> None:
        self.conn.execute(insert(t.pipeline_runs).values(
            id=run.id, account=run.account, pipeline=run.pipeline, definition=run.definition, digest=run.digest,
            code_sha256=run.code_sha256, parameters=dict(run.parameters), started_by=run.started_by,
            created_at=run.created_at, cancel_requested=run.cancel_requested, **_state(run)))

    def get_run(self, run_id: str) -> PipelineRun | None:
        row = self.conn.execute(_GET_RUN, {"run_id": run_id}).first()
        return _run(row) if row else None

    def save_run(self, run: PipelineRun) -> None:
        self.conn.execute(_SAVE_RUN, {"run_id": run.id, "cancel": run.cancel_requested, **_state(run)})

    def request_cancel(self, run_id: str) -> None:
        self.conn.execute(update(t.pipeline_runs).where(r.id == run_id).values(cancel_requested=True))

    def list_runs(self, account: str, pipeline: str, after: str | None, limit: int) -> list[PipelineRun]:
        q = select(t.pipeline_runs).where(and_(r.account == account, r.pipeline == pipeline))
        if after is not None:
            q = q.where(r.id < after)
        return [_run(row) for row in self.conn.execute(q.order_by(r.id.desc()).limit(limit))]

    def claim_pending_run(self) -> PipelineRun | None:
        q = (select(t.pipeline_runs).where(r.status == str(RunStatus.PENDING))
             .order_by(r.created_at, r.id).limit(1))
        row = self.conn.execute(locking(self.conn, q, skip_locked=True)).first()
        return _run(row) if row else None

    def runs_with_status(self, status: str, limit: int) -> list[PipelineRun]:
        q = select(t.pipeline_runs).where(r.status == status).order_by(r.created_at, r.id).limit(limit)
        return [_run(row) for row in self.conn.execute(q)]

    def get_cached(self, account: str, key: str) -> tuple[dict[str, str], dict[str, Any]] | None:
        row = self.conn.execute(_GET_CACHED, {"account": account, "key": key}).first()
        return (dict(row.outputs), dict(row.metrics)) if row else None

    def put_cached(self, account: str, key: str, outputs: dict[str, str], metrics: dict[str, Any],
                   run_id: str, at: datetime) -> None:
        statement = _PUT_CACHED["postgresql" if self.conn.dialect.name == "postgresql" else "sqlite"]
        self.conn.execute(statement, {"account": account, "key": key, "outputs": outputs, "metrics": metrics,
                                      "run_id": run_id, "created_at": at})
