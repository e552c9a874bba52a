"""Each account's event bus: its rules, their deliveries, the dead-letter queue and replays."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["events"])
AccountName = Annotated[str, Path(max_length=63)]
DeliveryId = Annotated[str, Path(max_length=64)]
EVENTS = "/accounts/{account}/events"


@router.get(EVENTS + "/rules", response_model=m.EventRuleList)
def list_rules(account: AccountName, caller: CallerDep) -> m.EventRuleList:
    return m.EventRuleList(items=[convert.event_rule(r) for r in caller(c.ListEventRules(account))])


@router.get(EVENTS + "/deliveries", response_model=m.Page[m.DeliveryOut])
def list_deliveries(
    account: AccountName, caller: CallerDep, page: PageDep,
    status: Annotated[str | None, Query(max_length=16, description="pending, delivering, succeeded or dead.")] = None,
) -> m.Page[m.DeliveryOut]:
    return convert.page(caller(c.ListDeliveries(account, status, page)), convert.delivery)


@router.get(EVENTS + "/dlq", response_model=m.Page[m.DeliveryOut])
def dead_letters(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.DeliveryOut]:
    return convert.page(caller(c.ListDeliveries(account, "dead", page)), convert.delivery)


@router.post(EVENTS + "/deliveries/{delivery_id}/replay", response_model=m.DeliveryOut)
def replay(account: AccountName, delivery_id: DeliveryId, caller: CallerDep) -> m.DeliveryOut:
    return convert.delivery(caller(c.ReplayDelivery(account, delivery_id)))
