"""The audit trail: records filtered by who, where, what and when; verifying the chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.convert import decode_cursor, encode_cursor
from charter.entrypoints.console.web import Console, ConsoleRoute
from charter.errors import ValidationError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Text = Annotated[str, Query(max_length=500)]
FILTERS = ("actor", "account", "resource", "action", "since", "until")


def _time(name: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name}: write a date and time like 2026-12-01T10:00", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def render_audit(console: Console, filters: dict[str, str], cursor: str = "", verified: object = None,
                 status: int = 200) -> Response:
    errors: dict[str, str] = {}
    records, next_cursor = [], None
    try:
        flt = c.AuditFilter(filters["actor"] or None, filters["account"] or None, filters["resource"] or None,
                            filters["action"] or None, _time("since", filters["since"]),
                            _time("until", filters["until"]))
        page = console(c.ListAudit(flt, c.PageRequest(decode_cursor(cursor or None), 100)))
        records = [convert.record(r) for r in page.items]
        next_cursor = encode_cursor(page.next_after)
    except ValidationError as invalid:
        errors[str(invalid.details.get("field", ""))] = invalid.message
        console.allowed("audit:ListRecords")  # the page is still decided, and shows only the error
        status = 400
    return console.render("audit.html", status=status, filters=filters, records=records, errors=errors,
                          next_cursor=next_cursor, verified=verified)


@router.get("/audit")
def audit(console: ConsoleDep, actor: Text = "", account: Text = "", resource: Text = "", action: Text = "",
          since: Text = "", until: Text = "", cursor: Text = "") -> Response:
    filters = {"actor": actor, "account": account, "resource": resource, "action": action,
               "since": since, "until": until}
    return render_audit(console, filters, cursor)


@router.post("/audit/verify")
def verify(console: ConsoleDep) -> Response:
    result = convert.verify(console(c.VerifyAudit()))
    return render_audit(console, dict.fromkeys(FILTERS, ""), verified=result)
