"""Model cards: view a version, edit (a stale editor gets a conflict), submit, review, print."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import HTMLResponse, Response

from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.routes import decisions
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError, ValidationError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]


@router.get("/cards")
def all_cards(console: ConsoleDep) -> Response:
    """The cards of every shared-services account (where cards are kept) the caller may read."""
    found = []
    for name, kind in views.account_kinds(console).items():
        if kind == "shared-services":
            try:
                found.extend(views.all_pages(console, lambda p, n=name: c.ListModelCards(n, p), convert.model_card))
            except CharterError:
                continue
    return console.render("cards.html", account=None, cards=found)


@router.get("/accounts/{account}/cards")
def cards(account: Name, console: ConsoleDep) -> Response:
    found = views.all_pages(console, lambda p: c.ListModelCards(account, p), convert.model_card)
    return console.render("cards.html", account=account, cards=found)


def render_card(console: Console, errors: dict[str, dict[str, str]] | None = None, status: int = 200, *,
                account: str, group: str, version: int | None = None, **_: Any) -> Response:
    card = views.card(console, account, group, version)
    asked = [c.Ability(str(a), account, group) for a in
             (Action.EDIT_CARD, Action.SUBMIT_CARD, Action.APPROVE_CARD, Action.REJECT_CARD)]
    edit, submit, approve, reject = console.can(*asked)
    document = console.field("document") or json.dumps(card.document, indent=2, ensure_ascii=False)
    return console.render("card.html", status=status, account=account, card=card, may_edit=edit.allowed,
                          may_submit=submit.allowed, approve=approve, reject=reject, errors=errors or {},
                          key=f"card-{account}-{group}", document=document)


decisions.PAGES["card"] = render_card


@router.get("/accounts/{account}/cards/{group}")
def card(account: Name, group: Name, console: ConsoleDep,
         version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    return render_card(console, account=account, group=group, version=version)


@router.post("/accounts/{account}/cards/{group}/edit")
def edit(account: Name, group: Name, console: ConsoleDep) -> Response:
    key = f"card-{account}-{group}"
    try:
        try:
            document = json.loads(console.field("document"))
        except ValueError as bad:
            raise ValidationError(f"the card is not valid JSON: {bad}", field="document") from None
        expected = console.field("expected_version")
        console(c.EditModelCard(account, group, document, console.field("summary").strip(),
                                int(expected) if expected.isdigit() else None))
    except CharterError as error:
        return render_card(console, {key: problem(error)}, error.status, account=account, group=group)
    return console.redirect(f"/accounts/{account}/cards/{group}", f"Saved a new version of the card of {group}")


@router.post("/accounts/{account}/cards/{group}/submit")
def submit(account: Name, group: Name, console: ConsoleDep) -> Response:
    try:
        console(c.SubmitModelCard(account, group, console.field("comment").strip()))
    except CharterError as error:
        return render_card(console, {f"card-{account}-{group}": problem(error)}, error.status,
                           account=account, group=group)
    return console.redirect(f"/accounts/{account}/cards/{group}", f"Submitted the card of {group} for review")


@router.get("/accounts/{account}/cards/{group}/print")
def printable(account: Name, group: Name, console: ConsoleDep,
              version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    exported = console(c.ExportModelCard(account, group, "html", version))
    response = HTMLResponse(exported.text)
    response.headers["content-security-policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
