"""The audit trail: list with filters, export as JSON lines, verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["audit"])


async def audit_filter(
    actor: Annotated[str | None, Query(max_length=63)] = None,
    account: Annotated[str | None, Query(max_length=63)] = None,
    resource: Annotated[str | None, Query(max_length=500, description="A CRN.")] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[datetime | None, Query(description="Records at or after this time.")] = None,
    until: Annotated[datetime | None, Query(description="Records before this time.")] = None,
) -> c.AuditFilter:
    return c.AuditFilter(actor, account, resource, action, _utc(since), _utc(until))


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC, the zone of every time Charter records."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


FilterDep = Annotated[c.AuditFilter, Depends(audit_filter)]


@router.get("/audit/records", response_model=m.Page[m.AuditRecordOut])
def list_records(caller: CallerDep, page: PageDep, flt: FilterDep) -> m.Page[m.AuditRecordOut]:
    result = caller(c.ListAudit(flt, page))
    return convert.page(result, convert.record)


@router.get("/audit/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}})
def export(caller: CallerDep, flt: FilterDep) -> StreamingResponse:
    first = caller(c.ListAudit(flt, c.PageRequest(None, 1000)))  # decided before the stream starts

    def lines() -> Iterator[bytes]:
        result = first
        while True:
            for record in result.items:
                yield json.dumps(record.to_dict()).encode() + b"\n"
            if result.next_after is None:
                return
            result = caller(c.ListAudit(flt, c.PageRequest(result.next_after, 1000)))

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/audit/verify", response_model=m.VerifyOut)
def verify(caller: CallerDep) -> m.VerifyOut:
    return convert.verify(caller(c.VerifyAudit()))
