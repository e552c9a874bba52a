"""Decisions taken from a page: approve or reject a package, a subscription, an account request or
a model card. Each form names the state it was shown (``seen``): a page gone stale meanwhile gets a
conflict message instead of deciding something other than what the user saw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from charter.domain import commands as c
from charter.entrypoints.console import views
from charter.entrypoints.console.routes.inbox import render_inbox
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError, Conflict, ValidationError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
Ident = Annotated[str, Path(max_length=64)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
Rerender = Callable[..., Response]
PAGES: dict[str, Rerender] = {"inbox": lambda console, errors, status, **_: render_inbox(console, errors, status)}
"""The pages a decision form may be on, to show its errors there: (console, errors, status, **path)."""


def _verdict(console: Console) -> bool:
    decision = console.field("decision")
    if decision not in ("approve", "reject"):
        raise ValidationError("choose approve or reject", field="decision")
    return decision == "approve"


def _fail(console: Console, key: str, error: CharterError, **where: Any) -> Response:
    page = PAGES.get(console.field("back"), PAGES["inbox"])
    return page(console, {key: problem(error)}, error.status, **where)


def stale(what: str, seen: str, now: str, by: str | None) -> Conflict:
    who = f" by {by}" if by else ""
    return Conflict(f"{what} changed since you loaded the page: it was {seen}, it is now {now}{who}. "
                    "Nothing was decided; look again before you decide.", seen=seen, current=now)


@router.post("/accounts/{account}/registry/{group}/{version}/decide")
def decide_package(account: Name, group: Name, version: Version, console: ConsoleDep) -> Response:
    key = f"package-{account}-{group}-{version}"
    try:
        approve = _verdict(console)
        current = views.package(console, account, group, version)
        seen = console.field("seen")
        if seen and current.status != seen:
            last = current.history[-1].actor if current.history else None
            raise stale(f"{group}/{version}", seen, current.status, last)
        console(c.DecideModelPackage(account, group, version, "Approved" if approve else "Rejected",
                                     console.field("comment").strip()))
    except CharterError as error:
        return _fail(console, key, error, account=account, group=group, version=version)
    verb = "Approved" if approve else "Rejected"
    return console.redirect(console.field("next", "/"), f"{verb} {group}/{version} in {account}")


@router.post("/accounts/{account}/data/subscriptions/{sub_id}/decide")
def decide_subscription(account: Name, sub_id: Ident, console: ConsoleDep) -> Response:
    key = f"subscription-{sub_id}"
    try:
        approve = _verdict(console)
        current = views.subscription(console, account, sub_id)
        seen = console.field("seen")
        if seen and current.status != seen:
            raise stale(f"the subscription of {current.subscriber} to {current.dataset}", seen, current.status,
                         current.decided_by)
        console(c.DecideSubscription(account, sub_id, "Approved" if approve else "Rejected",
                                     console.field("comment").strip()))
    except CharterError as error:
        return _fail(console, key, error, account=account, sub_id=sub_id)
    verb = "Approved" if approve else "Rejected"
    return console.redirect(console.field("next", "/"), f"{verb} the subscription of {current.subscriber} "
                            f"to {current.dataset}")


@router.post("/org/requests/{request_id}/decide")
def decide_account_request(request_id: Ident, console: ConsoleDep) -> Response:
    key = f"request-{request_id}"
    try:
        approve = _verdict(console)
        current = console(c.GetAccountRequest(request_id))
        seen = console.field("seen")
        if seen and str(current.status) != seen:
            raise stale(f"the request for {current.account}", seen, str(current.status), current.decided_by)
        console(c.DecideAccountRequest(request_id, approve, console.field("comment").strip()))
    except CharterError as error:
        return _fail(console, key, error, request_id=request_id)
    verb = "Approved" if approve else "Rejected"
    return console.redirect(console.field("next", "/"), f"{verb} the request for account {current.account}")


@router.post("/accounts/{account}/cards/{group}/decide")
def decide_card(account: Name, group: Name, console: ConsoleDep) -> Response:
    key = f"card-{account}-{group}"
    try:
        approve = _verdict(console)
        seen = console.field("seen")
        version = int(seen) if seen.isdigit() else None
        comment = console.field("comment").strip()
        if approve:
            console(c.ApproveModelCard(account, group, comment, version))
        else:
            current = views.card(console, account, group)
            if version is not None and current.latest_version != version:
                raise stale(f"the card of {group}", f"version {version}", f"version {current.latest_version}",
                             current.author)
            console(c.RejectModelCard(account, group, comment))
    except CharterError as error:
        return _fail(console, key, error, account=account, group=group)
    verb = "Approved" if approve else "Sent back"
    return console.redirect(console.field("next", "/"), f"{verb} the model card of {group}")


@router.post("/accounts/{account}/deployments/{pipeline}/executions/{execution}/decide")
def decide_deployment(account: Name, pipeline: Name, execution: Ident, console: ConsoleDep) -> Response:
    key = f"deployment-{execution}"
    where = {"account": account, "pipeline": pipeline, "execution": execution}
    try:
        approve = _verdict(console)
        current = views.execution(console, account, pipeline, execution)
        seen = console.field("seen")
        if seen and current.status != seen:
            last = current.approvals[-1].principal if current.approvals else None
            raise stale(f"execution {execution[:12]} of {pipeline}", seen, current.status, last)
        console(c.DecideDeployment(account, pipeline, "Approved" if approve else "Rejected",
                                   console.field("comment").strip(), execution))
    except CharterError as error:
        return _fail(console, key, error, **where)
    verb = "Approved" if approve else "Rejected"
    return console.redirect(console.field("next", "/"), f"{verb} the production deployment of execution "
                            f"{execution[:12]} of {pipeline}")
