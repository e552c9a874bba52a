"""The organization: its tree of units and accounts, an account's role bindings, account requests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.routes import decisions
from charter.entrypoints.console.web import Console, ConsoleRoute
from charter.errors import CharterError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
Ident = Annotated[str, Path(max_length=64)]


def tree(org: m.OrganizationOut) -> list[dict[str, Any]]:
    """Units nested under their parents, each with its accounts; accounts with no unit at the top."""
    children: dict[str | None, list[m.OrgUnitOut]] = {}
    for unit in org.units:
        children.setdefault(unit.parent, []).append(unit)

    def node(unit: m.OrgUnitOut) -> dict[str, Any]:
        return {"unit": unit, "accounts": [a for a in org.accounts if a.ou == unit.name],
                "children": [node(u) for u in children.get(unit.name, [])]}

    return [node(u) for u in children.get(None, [])]


@router.get("/org")
def organization(console: ConsoleDep) -> Response:
    org = views.org(console)
    try:
        requests = views.all_pages(console, lambda p: c.ListAccountRequests(None, p), convert.account_request)
    except CharterError:
        requests = None
    return console.render("org.html", org=org, tree=tree(org), loose=[a for a in org.accounts if not a.ou],
                          requests=requests)


@router.get("/org/accounts/{account}")
def account(account: Name, console: ConsoleDep) -> Response:
    found = convert.account(console(c.GetAccount(account)))
    try:
        bindings = [convert.binding(b) for b in console(c.ListRoleBindings(account))]
    except CharterError:
        bindings = None
    return console.render("account.html", account=found, bindings=bindings)


def render_request(console: Console, errors: dict[str, dict[str, str]] | None = None, status: int = 200,
                   *, request_id: str, **_: Any) -> Response:
    found = convert.account_request(console(c.GetAccountRequest(request_id)))
    approve, reject = console.can(c.Ability(str(Action.APPROVE_ACCOUNT_REQUEST), key=request_id),
                                  c.Ability(str(Action.REJECT_ACCOUNT_REQUEST), key=request_id))
    return console.render("request.html", status=status, req=found, approve=approve, reject=reject,
                          errors=errors or {}, key=f"request-{request_id}")


decisions.PAGES["request"] = render_request


@router.get("/org/requests/{request_id}")
def request(request_id: Ident, console: ConsoleDep) -> Response:
    return render_request(console, request_id=request_id)
