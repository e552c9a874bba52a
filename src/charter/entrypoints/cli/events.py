"""``charter events``: an account's rules, the deliveries they made, its dead-letter queue, replays."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.registry import AccountOpt
from charter.entrypoints.cli.registry import _account as account_of
from charter.entrypoints.cli.state import state_of as _state

app = typer.Typer(no_args_is_help=True, help="Event buses: rules, deliveries, the dead-letter queue.")


def _target(t: m.EventTargetOut) -> str:
    return f"{t.kind}:{t.value}" + (f" (as {t.run_as})" if t.run_as else "")


def _deliveries(title: str, items: list[m.DeliveryOut]) -> None:
    table(title, ["id", "rule", "target", "status", "attempts", "event", "created", "last error"],
          [(d.id, d.rule, _target(d.target), d.status, d.attempts, d.event.get("type"), when(d.created_at),
            d.last_error) for d in items])


@app.command("rules")
def rules(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The rules on an account's bus: patterns and targets."""
    name = account_of(ctx, account)
    with _state(ctx).client() as client:
        items = client.event_rules(name)
    show(_state(ctx).output, items, lambda: table(
        f"Rules on the bus of {name}", ["name", "enabled", "pattern", "targets"],
        [(r.name, r.enabled, json.dumps(r.pattern, sort_keys=True), ", ".join(_target(t) for t in r.targets))
         for r in items]))


@app.command("deliveries")
def deliveries(ctx: typer.Context, account: AccountOpt = None,
               status: Annotated[str | None, typer.Option(help="pending, delivering, succeeded or dead.")] = None) -> None:
    """The deliveries made by the rules on an account's bus."""
    name = account_of(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.deliveries(name, status=status))
    show(_state(ctx).output, items, lambda: _deliveries(f"Deliveries on the bus of {name}", items))


@app.command("dlq")
def dlq(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The dead-letter queue: deliveries that failed for good or ran out of attempts."""
    name = account_of(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.dead_letters(name))
    show(_state(ctx).output, items, lambda: _deliveries(f"Dead letters on the bus of {name}", items))


@app.command("replay")
def replay(ctx: typer.Context, delivery_id: Annotated[str, typer.Argument(help="The dead delivery's id.")],
           account: AccountOpt = None) -> None:
    """Send a dead delivery again (attempts start over)."""
    with _state(ctx).client() as client:
        delivery = client.replay_delivery(account_of(ctx, account), delivery_id)
    show(_state(ctx).output, delivery, lambda: console.print(
        f"Delivery {delivery.id} is {delivery.status} again", highlight=False))
