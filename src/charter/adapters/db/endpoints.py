"""Endpoints as a repository: the endpoint, its configuration revisions, its capture batches."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, select, tuple_, update

from charter.adapters.db import tables as t
from charter.adapters.db.engine import locking
from charter.domain.endpoints import Capture, Endpoint, Revision, RevisionStatus, Variant

e, rv, cp = t.endpoints.c, t.endpoint_revisions.c, t.endpoint_captures.c


def _revision(row: Row[Any]) -> Revision:
    return Revision(
        number=int(row.revision), variants=tuple(Variant.from_dict(v) for v in row.variants),
        replicas=int(row.replicas), capture_percent=float(row.capture_percent), created_by=row.created_by,
        created_at=row.created_at, reason=row.reason, status=RevisionStatus(row.status),
        status_reason=row.status_reason, finished_at=row.finished_at, rollback_of=row.rollback_of)


def _revision_values(endpoint: Endpoint, r: Revision) -> dict[str, Any]:
    return {"account": endpoint.account, "endpoint": endpoint.name, "revision": r.number,
            "variants": [v.to_dict() for v in r.variants], "replicas": r.replicas,
            "capture_percent": float(r.capture_percent), "created_by": r.created_by,
            "created_at": r.created_at, "reason": r.reason, "status": str(r.status),
            "status_reason": r.status_reason, "finished_at": r.finished_at, "rollback_of": r.rollback_of}


class SqlEndpointRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _assemble(self, rows: list[Row[Any]]) -> list[Endpoint]:
        if not rows:
            return []
        keys = [(row.account, row.name) for row in rows]
        revisions: dict[tuple[str, str], list[Revision]] = defaultdict(list)
        q = (select(t.endpoint_revisions).where(tuple_(rv.account, rv.endpoint).in_(keys))
             .order_by(rv.account, rv.endpoint, rv.revision))
        for r in self.conn.execute(q):
            revisions[(r.account, r.endpoint)].append(_revision(r))
        return [Endpoint(row.account, row.name, row.created_by, row.created_at,
                         tuple(revisions[(row.account, row.name)]), row.serving_revision)
                for row in rows if revisions[(row.account, row.name)]]

    def get(self, account: str, name: str, *, for_update: bool = False) -> Endpoint | None:
        q = select(t.endpoints).where(and_(e.account == account, e.name == name))
        if for_update:
            q = locking(self.conn, q)
        rows = list(self.conn.execute(q))
        found = self._assemble(rows)
        return found[0] if found else None

    def add(self, endpoint: Endpoint) -> None:
        self.conn.execute(insert(t.endpoints).values(
            account=endpoint.account, name=endpoint.name, serving_revision=endpoint.serving_revision,
            created_by=endpoint.created_by, created_at=endpoint.created_at))
        for r in endpoint.revisions:
            self.conn.execute(insert(t.endpoint_revisions).values(**_revision_values(endpoint, r)))

    def save(self, endpoint: Endpoint) -> None:
        where = and_(e.account == endpoint.account, e.name == endpoint.name)
        self.conn.execute(update(t.endpoints).where(where).values(serving_revision=endpoint.serving_revision))
        stored = {int(n) for (n,) in self.conn.execute(select(rv.revision).where(and_(
            rv.account == endpoint.account, rv.endpoint == endpoint.name)))}
        for r in endpoint.revisions:
            values = _revision_values(endpoint, r)
            if r.number in stored:
                self.conn.execute(update(t.endpoint_revisions).where(and_(
                    rv.account == endpoint.account, rv.endpoint == endpoint.name, rv.revision == r.number))
                    .values(status=values["status"], status_reason=values["status_reason"],
                            finished_at=values["finished_at"]))
            else:
                self.conn.execute(insert(t.endpoint_revisions).values(**values))

    def delete(self, account: str, name: str) -> None:
        self.conn.execute(delete(t.endpoint_captures).where(and_(cp.account == account, cp.endpoint == name)))
        self.conn.execute(delete(t.endpoint_revisions).where(and_(rv.account == account, rv.endpoint == name)))
        self.conn.execute(delete(t.endpoints).where(and_(e.account == account, e.name == name)))

    def list_endpoints(self, account: str, after: str | None, limit: int) -> list[Endpoint]:
        q = select(t.endpoints).where(e.account == account)
        if after is not None:
            q = q.where(e.name > after)
        return self._assemble(list(self.conn.execute(q.order_by(e.name).limit(limit))))

    def all(self) -> list[Endpoint]:
        return self._assemble(list(self.conn.execute(select(t.endpoints).order_by(e.account, e.name))))

    def add_capture(self, capture: Capture) -> None:
        have = self.conn.execute(select(cp.sha256).where(and_(
            cp.account == capture.account, cp.endpoint == capture.endpoint, cp.sha256 == capture.sha256))).first()
        if have is None:
            self.conn.execute(insert(t.endpoint_captures).values(
                account=capture.account, endpoint=capture.endpoint, sha256=capture.sha256,
                records=capture.records, size=capture.size, created_at=capture.created_at))

    def list_captures(self, account: str, endpoint: str, after: str | None, limit: int) -> list[Capture]:
        where = and_(cp.account == account, cp.endpoint == endpoint)
        q = select(t.endpoint_captures).where(where)
        if after is not None:
            mark = self.conn.execute(select(cp.created_at).where(and_(where, cp.sha256 == after))).first()
            if mark is not None:
                q = q.where(tuple_(cp.created_at, cp.sha256) > tuple_(mark.created_at, after))
        rows = self.conn.execute(q.order_by(cp.created_at, cp.sha256).limit(limit))
        return [Capture(r.account, r.endpoint, r.sha256, int(r.records), int(r.size), r.created_at) for r in rows]
