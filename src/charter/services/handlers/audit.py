"""Reading and verifying the audit trail."""

from __future__ import annotations

from typing import Any

from charter.domain import commands as c
from charter.domain.audit import AuditRecord, VerifyResult
from charter.domain.authz import Action
from charter.errors import ValidationError
from charter.services import resources
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


def list_audit(cmd: c.ListAudit, ctx: HandlerContext) -> Page[AuditRecord]:
    account = cmd.filter.account
    whole = account is not None and ctx.authorizer.decide(
        ctx.uow, ctx.identity, Action.LIST_AUDIT, resources.audit_trail(None)).allowed
    if not whole:  # who may read the whole trail may read any account's part of it
        ctx.authorize(Action.LIST_AUDIT, resources.audit_trail(account))
    try:
        after = int(cmd.page.after) if cmd.page.after else None
    except ValueError:
        raise ValidationError("invalid cursor for the audit trail", field="cursor") from None
    items = ctx.uow.audit.find(cmd.filter, after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda r: str(r.seq))


def verify_audit(cmd: c.VerifyAudit, ctx: HandlerContext) -> VerifyResult:
    ctx.authorize(Action.VERIFY_AUDIT, resources.audit_trail(None))
    return ctx.trail.verify(ctx.uow)


HANDLERS: dict[type, Any] = {
    c.ListAudit: list_audit,
    c.VerifyAudit: verify_audit,
}
