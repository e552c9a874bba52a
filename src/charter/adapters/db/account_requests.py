"""Account requests as a repository."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from charter.adapters.db import tables as t
from charter.domain.account_requests import AccountRequest, RequestStatus
from charter.domain.org import AccountKind, Stage

ar = t.account_requests.c


def _request(r: Row[Any]) -> AccountRequest:
    return AccountRequest(r.id, r.account, r.ou, AccountKind(r.kind), Stage(r.stage) if r.stage else None,
                          r.blueprint, r.reason, r.requested_by, r.created_at, RequestStatus(r.status),
                          r.decided_by, r.decided_at, r.comment)


class SqlAccountRequestRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, request: AccountRequest) -> None:
        self.conn.execute(insert(t.account_requests).values(
            id=request.id, account=request.account, ou=request.ou, kind=str(request.kind),
            stage=str(request.stage) if request.stage else None, blueprint=request.blueprint,
            reason=request.reason, requested_by=request.requested_by, created_at=request.created_at,
            status=str(request.status), decided_by=request.decided_by, decided_at=request.decided_at,
            comment=request.comment))

    def get(self, request_id: str) -> AccountRequest | None:
        row = self.conn.execute(select(t.account_requests).where(ar.id == request_id)).first()
        return _request(row) if row else None

    def save(self, request: AccountRequest) -> None:
        self.conn.execute(update(t.account_requests).where(ar.id == request.id).values(
            status=str(request.status), decided_by=request.decided_by, decided_at=request.decided_at,
            comment=request.comment))

    def list(self, status: RequestStatus | None, requested_by: str | None, after: str | None,
             limit: int) -> list[AccountRequest]:
        q = select(t.account_requests).order_by(ar.id).limit(limit)
        if status is not None:
            q = q.where(ar.status == str(status))
        if requested_by is not None:
            q = q.where(ar.requested_by == requested_by)
        if after is not None:
            q = q.where(ar.id > after)
        return [_request(r) for r in self.conn.execute(q)]

    def pending_for(self, account: str) -> AccountRequest | None:
        row = self.conn.execute(select(t.account_requests).where(
            ar.account == account, ar.status == str(RequestStatus.PENDING))).first()
        return _request(row) if row else None
