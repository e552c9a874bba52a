"""Governed data: the datasets of an account, their versions, subscriptions and decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.routes import decisions
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
Ident = Annotated[str, Path(max_length=64)]


def _subscriptions(console: Console, account: str) -> list[Any]:
    return views.all_pages(console, lambda p: c.ListSubscriptions(account, None, None, p),
                           lambda s: convert.subscription(s, console.now))


@router.get("/accounts/{account}/data")
def data(account: Name, console: ConsoleDep) -> Response:
    kinds = views.account_kinds(console)
    catalogues = {}
    for name, kind in kinds.items():
        if kind == "data-governance":
            try:
                catalogues[name] = views.all_pages(console, lambda p, n=name: c.ListDatasets(n, p), convert.dataset)
            except CharterError:
                continue
    return console.render("data.html", account=account, catalogues=catalogues,
                          subscriptions=_subscriptions(console, account))


def render_dataset(console: Console, account: str, name: str, errors: dict[str, str] | None = None,
                   status: int = 200) -> Response:
    found, latest = console(c.GetDataset(account, name))
    dataset = convert.dataset(found, latest)
    versions = views.all_pages(console, lambda p: c.ListDatasetVersions(account, name, p), convert.dataset_version)
    targets = [a for a in console.accounts if a != account]
    abilities = console.can(*(c.Ability(str(Action.SUBSCRIBE), account, name, a) for a in targets))
    may_subscribe = [a for a, d in zip(targets, abilities, strict=True) if d.allowed]
    return console.render("dataset.html", status=status, account=account, dataset=dataset, versions=versions,
                          may_subscribe=may_subscribe, errors=errors or {},
                          reason=console.field("reason"))


@router.get("/accounts/{account}/data/datasets/{name}")
def dataset(account: Name, name: Name, console: ConsoleDep) -> Response:
    return render_dataset(console, account, name)


@router.post("/accounts/{account}/data/datasets/{name}/subscribe")
def subscribe(account: Name, name: Name, console: ConsoleDep) -> Response:
    subscriber = console.field("subscriber")
    try:
        sub = console(c.Subscribe(account, name, subscriber, console.field("reason").strip(),
                                  console.field("project").strip() or None))
    except CharterError as error:
        return render_dataset(console, account, name, problem(error), error.status)
    return console.redirect(f"/accounts/{subscriber}/data/subscriptions/{sub.id}",
                            f"Asked for {name} for {subscriber}; its owner decides")


def render_subscription(console: Console, errors: dict[str, dict[str, str]] | None = None, status: int = 200,
                        *, account: str, sub_id: str, **_: Any) -> Response:
    sub = views.subscription(console, account, sub_id)
    approve, reject = console.can(c.Ability(str(Action.APPROVE_SUBSCRIPTION), account, "", sub_id),
                                  c.Ability(str(Action.REJECT_SUBSCRIPTION), account, "", sub_id))
    return console.render("subscription.html", status=status, account=account, sub=sub, approve=approve,
                          reject=reject, errors=errors or {}, key=f"subscription-{sub_id}")


decisions.PAGES["subscription"] = render_subscription


@router.get("/accounts/{account}/data/subscriptions/{sub_id}")
def subscription(account: Name, sub_id: Ident, console: ConsoleDep) -> Response:
    return render_subscription(console, account=account, sub_id=sub_id)
