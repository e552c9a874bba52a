"""The dispatcher on a real store: SKIP LOCKED claims shared by several dispatchers, leases that
outlive a crashed worker, and targets stored before runAs existed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import insert, select

from charter.adapters.db import tables as t
from charter.bootstrap import Platform
from charter.domain.deliveries import DeliveryStatus, RetryPolicy
from charter.domain.events import Event
from charter.domain.org import EventRule, EventTarget, TargetKind
from charter.services.dispatch import Dispatcher, DispatchSettings
from charter.services.event_handlers import Invocation
from charter.services.messagebus import MessageBus
from tests.integration.conftest import Org

TYPE = "charter.test.thing.happened"


def _rule(platform: Platform, name: str = "count") -> None:
    with platform.bus.uow_factory() as uow:
        uow.org.put_rule(EventRule("ml-dev", name, '{"type":["' + TYPE + '"]}',
                                   (EventTarget(TargetKind.HANDLER, "count"),)))
        uow.commit()


def _emit(platform: Platform, n: int) -> None:
    with platform.bus.uow_factory() as uow:
        for i in range(n):
            uow.outbox.add(Event(TYPE, "ml-dev", f"crn:charter:ml-dev:test:thing/{i}", {"i": i},
                                 time=platform.bus.clock.now()))
        uow.commit()


class Counting:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.delay = delay

    def __call__(self, bus: MessageBus, invocation: Invocation) -> None:
        with self.lock:
            self.calls[invocation.delivery_id] += 1
        time.sleep(self.delay)


def _dispatcher(platform: Platform, handler: Counting, *, lease: float = 60.0, batch: int = 5) -> Dispatcher:
    return Dispatcher(platform.bus, DispatchSettings(batch_size=batch, lease_seconds=lease,
                                                     retry=RetryPolicy(max_attempts=3)),
                      handlers={"count": handler})


def _route_all(dispatcher: Dispatcher) -> None:
    while dispatcher.route():
        pass


def _statuses(platform: Platform) -> Counter[str]:
    with platform.engine.connect() as conn:
        return Counter(r.status for r in conn.execute(select(t.event_deliveries.c.status)))


def test_two_dispatchers_never_deliver_the_same_delivery_twice(org: Org) -> None:
    platform = org.platform
    _rule(platform)
    _emit(platform, 40)
    handler = Counting(delay=0.005)
    dispatchers = [_dispatcher(platform, handler) for _ in range(2)]
    errors: list[BaseException] = []

    def run(d: Dispatcher) -> None:
        try:
            d.run_until_idle()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(handler.calls) == 40 and set(handler.calls.values()) == {1}
    assert _statuses(platform)["succeeded"] == 40


def test_a_delivery_claimed_by_a_crashed_worker_is_retried_after_its_lease(org: Org) -> None:
    platform = org.platform
    _rule(platform)
    _emit(platform, 1)
    handler = Counting()
    dispatcher = _dispatcher(platform, handler, lease=0.3)
    _route_all(dispatcher)
    with platform.bus.uow_factory() as uow:  # a worker claims the delivery, then dies
        now = platform.bus.clock.now()
        claimed = uow.deliveries.claim_due(now, now + timedelta(seconds=0.3), "crashed", 10)
        uow.commit()
    assert len(claimed) == 1
    assert dispatcher.deliver() == 0  # still leased to the dead worker
    time.sleep(0.4)
    assert dispatcher.deliver() == 1
    with platform.bus.uow_factory(readonly=True) as uow:
        done = uow.deliveries.get(claimed[0].id)
    assert done is not None and (done.status, done.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert handler.calls[done.id] == 1


def test_the_crashed_workers_late_outcome_is_not_recorded(org: Org) -> None:
    platform = org.platform
    _rule(platform)
    _emit(platform, 1)
    dispatcher = _dispatcher(platform, Counting(), lease=0.2)
    _route_all(dispatcher)
    with platform.bus.uow_factory() as uow:
        now = platform.bus.clock.now()
        stale, = uow.deliveries.claim_due(now, now + timedelta(seconds=0.2), "slow", 10)
        uow.commit()
    time.sleep(0.3)
    assert dispatcher.deliver() == 1
    with platform.bus.uow_factory() as uow:
        from dataclasses import replace
        assert not uow.deliveries.finish(replace(stale, status=DeliveryStatus.DEAD), "slow")


def test_routing_is_idempotent_on_the_store(org: Org) -> None:
    platform = org.platform
    _rule(platform)
    _emit(platform, 3)
    dispatcher = _dispatcher(platform, Counting())
    _route_all(dispatcher)
    with platform.engine.begin() as conn:
        conn.execute(t.outbox.update().values(dispatched=False))
    _route_all(dispatcher)
    assert sum(_statuses(platform).values()) == 3


def test_rules_stored_as_kind_value_pairs_are_still_read(platform: Platform, org: Org) -> None:
    with platform.engine.begin() as conn:
        conn.execute(insert(t.event_rules).values(
            account="ml-dev", name="old", pattern='{"type":["x"]}', targets=[["handler", "audit-log"]],
            description="", enabled=True))
    with platform.bus.uow_factory(readonly=True) as uow:
        rule = next(r for r in uow.org.list_rules("ml-dev") if r.name == "old")
    assert rule.targets == (EventTarget(TargetKind.HANDLER, "audit-log"),)


def test_a_run_as_target_survives_the_store(platform: Platform, org: Org) -> None:
    target = EventTarget(TargetKind.HANDLER, "audit-log", "promotion-bot")
    with platform.bus.uow_factory() as uow:
        uow.org.put_rule(EventRule("ml-shared-services", "as-bot", '{"type":["x"]}', (target,)))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        rule = next(r for r in uow.org.list_rules("ml-shared-services") if r.name == "as-bot")
    assert rule.targets == (target,)


def test_a_targets_retry_limits_survive_the_store(platform: Platform) -> None:
    from charter.domain.org import Account, AccountKind, Stage

    target = EventTarget(TargetKind.HANDLER, "audit-log", "promotion-bot", max_attempts=2, max_age_seconds=90)
    with platform.bus.uow_factory() as uow:
        if uow.org.get_account("ml-dev") is None:
            uow.org.put_account(Account("ml-dev", AccountKind.WORKLOAD, Stage.DEV))
        uow.org.put_rule(EventRule("ml-dev", "limited", '{"type":["x"]}', (target,)))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.org.list_rules("ml-dev")[0].targets == (target,)
