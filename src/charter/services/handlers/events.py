"""Event buses as an account sees them: its rules, the deliveries they made, and replays of dead ones."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.crn import CRN
from charter.domain.deliveries import Delivery, DeliveryStatus
from charter.domain.events import Event, event_type
from charter.domain.org import Account, EventRule
from charter.errors import InvalidTransition, NotFound, ValidationError
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


def _bus(account: Account) -> Resource:
    return Resource(CRN(account.name, "events", "event-bus", "default"), "EventBus",
                    {"account_kind": str(account.kind), "stage": str(account.stage or "")})


def _delivery(account: Account, delivery: Delivery) -> Resource:
    return Resource(delivery.crn, "EventDelivery",
                    {"account_kind": str(account.kind), "stage": str(account.stage or "")})


def list_rules(cmd: c.ListEventRules, ctx: HandlerContext) -> list[EventRule]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_EVENT_RULES, _bus(account))
    return ctx.uow.org.list_rules(account.name)


def _status(value: str | None) -> DeliveryStatus | None:
    if value is None:
        return None
    try:
        return DeliveryStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in DeliveryStatus)
        raise ValidationError(f"unknown delivery status {value!r}: use one of {allowed}", field="status") from None


def list_deliveries(cmd: c.ListDeliveries, ctx: HandlerContext) -> Page[Delivery]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_DELIVERIES, _bus(account))
    status = _status(cmd.status)
    items = ctx.uow.deliveries.list(account.name, status, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda d: f"{d.created_at.isoformat()}|{d.id}")


def replay(cmd: c.ReplayDelivery, ctx: HandlerContext) -> Delivery:
    account = ctx.account(cmd.account)
    delivery = ctx.uow.deliveries.get(cmd.delivery_id)
    if delivery is None or delivery.bus != account.name:
        ctx.authorize(Action.LIST_DELIVERIES, _bus(account))
        raise NotFound(f"no delivery {cmd.delivery_id!r} on the bus of {account.name}", delivery=cmd.delivery_id)
    ctx.authorize(Action.REPLAY_DELIVERY, _delivery(account, delivery))
    if delivery.status is not DeliveryStatus.DEAD:
        raise InvalidTransition(f"only a dead delivery can be replayed; this one is {delivery.status}",
                                status=str(delivery.status))
    now = ctx.clock.now()
    replayed = replace(delivery, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                       claim=None, claimed_until=None, updated_at=now)
    ctx.uow.deliveries.save(replayed)
    details: dict[str, Any] = {"event": delivery.event.id, "rule": delivery.rule,
                               "previous_error": delivery.last_error}
    ctx.audit(Action.REPLAY_DELIVERY, _delivery(account, delivery), **details)
    ctx.emit(Event(event_type("events", "delivery", "state-changed"), account.name, str(delivery.crn),
                   {"delivery": delivery.id, "status": str(replayed.status), "previous_status": str(delivery.status),
                    "event": delivery.event.id, "rule": delivery.rule, "actor": ctx.identity.principal}))
    return replayed


HANDLERS: dict[type, Any] = {
    c.ListEventRules: list_rules,
    c.ListDeliveries: list_deliveries,
    c.ReplayDelivery: replay,
}
