"""Routing and delivery on fakes: rules to deliveries, retries with backoff, the dead-letter queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.domain.deliveries import Delivery, DeliveryStatus, RetryPolicy
from charter.domain.events import Event
from charter.domain.org import EventRule, EventTarget, TargetKind
from charter.domain.plan import BUILTIN_HANDLERS
from charter.errors import InvalidTransition, PermissionDenied
from charter.services import event_handlers
from charter.services.dispatch import Dispatcher, DispatchSettings
from charter.services.event_handlers import BUILTIN, Invocation, register_handler
from charter.services.messagebus import MessageBus
from tests.unit.conftest import World

APPROVED = "charter.registry.model-package.state-changed"
RETRY = RetryPolicy(base_seconds=10, cap_seconds=60, max_attempts=3, max_age_seconds=3600)


def _approved(source: str = "ml-dev", status: str = "Approved") -> Event:
    return Event(APPROVED, source, f"crn:charter:{source}:registry:model-package/churn/1",
                 {"group": "churn", "version": 1, "status": status})


def _rule(account: str, name: str, *targets: EventTarget, enabled: bool = True,
          pattern: str = '{"type":["' + APPROVED + '"]}') -> EventRule:
    return EventRule(account, name, pattern, targets, enabled=enabled)


class Calls:
    def __init__(self, fail_with: Callable[[], Exception] | None = None) -> None:
        self.invocations: list[Invocation] = []
        self.fail_with = fail_with

    def __call__(self, bus: MessageBus, invocation: Invocation) -> None:
        self.invocations.append(invocation)
        if self.fail_with is not None:
            raise self.fail_with()


def _world(*rules: EventRule, handler: Calls | None = None, example_rules: bool = False) -> tuple[World, Dispatcher]:
    world = World()
    if not example_rules:
        world.store.data.state.rules.clear()
    for rule in rules:
        world.store.data.state.rules[rule.key] = rule
    handlers = {**BUILTIN, "record": handler or Calls()}
    dispatcher = Dispatcher(world.bus, DispatchSettings(retry=RETRY), handlers=handlers, draw=lambda: 0.5)
    dispatcher.route()  # the organization's own events (none matches a rule)
    return world, dispatcher


def _emit(world: World, event: Event) -> None:
    world.store.data.outbox.append(event)


def _deliveries(world: World, bus: str | None = None) -> list[Delivery]:
    return [d for d in world.store.data.deliveries.values() if bus is None or d.bus == bus]


def test_a_matching_rule_makes_one_delivery_per_target_and_a_non_matching_event_none() -> None:
    world, dispatcher = _world(_rule("ml-dev", "two", EventTarget(TargetKind.HANDLER, "record"),
                                     EventTarget(TargetKind.HANDLER, "audit-log")))
    _emit(world, Event("charter.registry.model-package-group.created", "ml-dev", "crn:x", {}))
    dispatcher.route()
    assert [d for d in _deliveries(world) if d.rule == "two"] == []
    _emit(world, _approved())
    dispatcher.route()
    made = [d for d in _deliveries(world) if d.rule == "two"]
    assert sorted(d.target.value for d in made) == ["audit-log", "record"]
    assert all(d.status is DeliveryStatus.PENDING and d.bus == "ml-dev" for d in made)


def test_a_disabled_rule_routes_nothing() -> None:
    world, dispatcher = _world(_rule("ml-dev", "off", EventTarget(TargetKind.HANDLER, "record"), enabled=False))
    _emit(world, _approved())
    dispatcher.route()
    assert [d for d in _deliveries(world) if d.rule == "off"] == []


def test_routing_the_same_event_twice_makes_each_delivery_once() -> None:
    world, dispatcher = _world(_rule("ml-dev", "one", EventTarget(TargetKind.HANDLER, "record")))
    event = _approved()
    _emit(world, event)
    dispatcher.route()
    world.store.data.dispatched.discard(event.id)  # as if the routing transaction's effect were replayed
    dispatcher.route()
    assert len([d for d in _deliveries(world) if d.rule == "one"]) == 1


def test_an_approved_dev_package_is_forwarded_to_shared_services_and_handled_there() -> None:
    calls = Calls()
    world, dispatcher = _world(_rule("ml-shared-services", "promote", EventTarget(TargetKind.HANDLER, "record")),
                               handler=calls, example_rules=True)
    event = _approved()
    _emit(world, event)
    dispatcher.run_until_idle()
    forward, = _deliveries(world, "ml-dev")
    handled, = [d for d in _deliveries(world, "ml-shared-services") if d.rule == "promote"]
    assert (forward.target, forward.status) == (EventTarget(TargetKind.BUS, "ml-shared-services"),
                                                DeliveryStatus.SUCCEEDED)
    assert handled.status is DeliveryStatus.SUCCEEDED and handled.event.id == event.id
    assert [(i.bus, i.rule, i.event.id) for i in calls.invocations] == [("ml-shared-services", "promote", event.id)]


def test_a_rejected_package_is_not_forwarded() -> None:
    world, dispatcher = _world(example_rules=True)
    _emit(world, _approved(status="Rejected"))
    dispatcher.run_until_idle()
    assert _deliveries(world) == []


def test_a_bus_that_does_not_admit_the_source_dead_letters_the_delivery_and_audits_the_refusal() -> None:
    # ml-test is outside the workloads OU that the shared-services bus admits.
    world, dispatcher = _world(_rule("ml-test", "sneak", EventTarget(TargetKind.BUS, "ml-shared-services")))
    event = _approved("ml-test")
    _emit(world, event)
    dispatcher.run_until_idle()
    refused, = _deliveries(world, "ml-test")
    assert refused.status is DeliveryStatus.DEAD and "does not admit events from ml-test" in (refused.last_error or "")
    assert _deliveries(world, "ml-shared-services") == []
    record = world.store.data.records[-1]
    assert (record.action, record.outcome, record.resource) == (
        "events:PutEvents", Outcome.DENIED, "crn:charter:ml-shared-services:events:event-bus/default")
    assert record.details["event"] == event.id and record.details["source"] == "ml-test"
    assert record.details["rule"] == "sneak"


def test_the_policy_is_checked_against_the_original_source_after_a_forward() -> None:
    # ml-test's events reach ml-dev's bus (which admits them), and ml-dev forwards to shared services:
    # shared services still sees ml-test as the source and refuses.
    world, dispatcher = _world(_rule("ml-dev", "relay", EventTarget(TargetKind.BUS, "ml-shared-services")))
    from charter.domain.org import BusPolicy
    world.store.data.state.bus_policies["ml-dev"] = BusPolicy("ml-dev", ("ml-test",))
    world.store.data.state.rules["ml-test/up"] = _rule("ml-test", "up", EventTarget(TargetKind.BUS, "ml-dev"))
    _emit(world, _approved("ml-test"))
    dispatcher.run_until_idle()
    statuses = {(d.bus, d.rule): d.status for d in _deliveries(world)}
    assert statuses[("ml-test", "up")] is DeliveryStatus.SUCCEEDED
    assert statuses[("ml-dev", "relay")] is DeliveryStatus.DEAD


def test_backoff_doubles_from_the_base_up_to_the_cap_and_is_jittered_below_it() -> None:
    for attempts, ceiling in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        assert RETRY.delay(attempts, 0.0) == timedelta(0)
        assert RETRY.delay(attempts, 0.999) == timedelta(seconds=ceiling * 0.999)
        assert RETRY.delay(attempts, 0.5) == timedelta(seconds=ceiling / 2)


def test_a_failing_handler_is_retried_later_and_dead_lettered_once_its_attempts_run_out() -> None:
    calls = Calls(lambda: RuntimeError("model store unavailable"))
    world, dispatcher = _world(_rule("ml-dev", "flaky", EventTarget(TargetKind.HANDLER, "record")), handler=calls)
    _emit(world, _approved())
    dispatcher.run_until_idle()
    first, = _deliveries(world)
    assert (first.status, first.attempts, first.last_error) == (
        DeliveryStatus.PENDING, 1, "RuntimeError: model store unavailable")
    assert first.updated_at is not None
    assert first.next_attempt_at == first.updated_at + timedelta(seconds=5)  # half of base 10 (draw 0.5)
    dispatcher.run_until_idle()
    assert len(calls.invocations) == 1  # not due yet
    for _ in range(2):
        world.clock.advance(seconds=60)
        dispatcher.run_until_idle()
    dead, = _deliveries(world)
    assert (dead.status, dead.attempts, len(calls.invocations)) == (DeliveryStatus.DEAD, 3, 3)
    assert "gave up after 3 attempts" in (dead.last_error or "")
    record = world.store.data.records[-1]
    assert (record.action, record.outcome, record.details["delivery"]) == ("events:Deliver", Outcome.FAILED, dead.id)


def test_a_delivery_older_than_its_max_age_is_dead_lettered_on_its_next_failure() -> None:
    calls = Calls(lambda: RuntimeError("down"))
    world, dispatcher = _world(_rule("ml-dev", "flaky", EventTarget(TargetKind.HANDLER, "record")), handler=calls)
    _emit(world, _approved())
    dispatcher.run_until_idle()
    world.clock.advance(seconds=3601)
    dispatcher.run_until_idle()
    dead, = _deliveries(world)
    assert dead.status is DeliveryStatus.DEAD and dead.attempts == 2
    assert "gave up after 3600 seconds" in (dead.last_error or "")


def test_a_target_with_its_own_attempt_limit_gives_up_sooner_than_the_settings() -> None:
    calls = Calls(lambda: RuntimeError("down"))
    target = EventTarget(TargetKind.HANDLER, "record", max_attempts=1)
    world, dispatcher = _world(_rule("ml-dev", "impatient", target), handler=calls)
    _emit(world, _approved())
    dispatcher.run_until_idle()
    dead, = _deliveries(world)
    assert (dead.status, dead.attempts, len(calls.invocations)) == (DeliveryStatus.DEAD, 1, 1)
    assert "gave up after 1 attempts" in (dead.last_error or "")


def test_a_target_with_its_own_age_limit_gives_up_after_it() -> None:
    calls = Calls(lambda: RuntimeError("down"))
    target = EventTarget(TargetKind.HANDLER, "record", max_age_seconds=30)
    world, dispatcher = _world(_rule("ml-dev", "short-lived", target), handler=calls)
    _emit(world, _approved())
    dispatcher.run_until_idle()
    world.clock.advance(seconds=31)
    dispatcher.run_until_idle()
    dead, = _deliveries(world)
    assert dead.status is DeliveryStatus.DEAD and "gave up after 30 seconds" in (dead.last_error or "")


def test_a_handler_refusing_with_permission_denied_is_dead_lettered_at_once() -> None:
    calls = Calls(lambda: PermissionDenied("promotion-bot may not register here"))
    world, dispatcher = _world(_rule("ml-dev", "strict", EventTarget(TargetKind.HANDLER, "record")), handler=calls)
    _emit(world, _approved())
    dispatcher.run_until_idle()
    dead, = _deliveries(world)
    assert (dead.status, dead.attempts) == (DeliveryStatus.DEAD, 1)
    assert dead.last_error == "PermissionDenied: promotion-bot may not register here"
    assert world.store.data.records[-1].outcome is Outcome.FAILED


def test_a_handler_target_acts_as_its_run_as_service_principal() -> None:
    calls = Calls()
    world, dispatcher = _world(
        _rule("ml-shared-services", "promote", EventTarget(TargetKind.HANDLER, "record", "promotion-bot")),
        handler=calls)
    _emit(world, _approved("ml-shared-services"))
    dispatcher.run_until_idle()
    who = calls.invocations[0].run_as
    assert who is not None
    assert (who.principal, who.principal_kind, who.via) == (
        "promotion-bot", "service", "rule:ml-shared-services/promote")


def test_the_audit_log_handler_records_the_delivered_event() -> None:
    world, dispatcher = _world(_rule("ml-dev", "log", EventTarget(TargetKind.HANDLER, "audit-log")))
    event = _approved()
    _emit(world, event)
    dispatcher.run_until_idle()
    record = world.store.data.records[-1]
    assert (record.action, record.resource, record.outcome) == (
        "events:Deliver", "crn:charter:ml-dev:events:rule/log", Outcome.ALLOWED)
    assert record.details["event"] == event.id and record.details["type"] == APPROVED


def test_every_declared_builtin_handler_is_registered_and_no_other() -> None:
    assert set(event_handlers.BUILTIN) == set(BUILTIN_HANDLERS)


def test_a_handler_name_not_declared_in_the_domain_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="not declared"):
        register_handler("made-up", lambda bus, invocation: None)


def test_a_claimed_delivery_whose_worker_died_is_retried_once_the_lease_runs_out() -> None:
    calls = Calls()
    world, dispatcher = _world(_rule("ml-dev", "one", EventTarget(TargetKind.HANDLER, "record")), handler=calls)
    _emit(world, _approved())
    dispatcher.route()
    with world.store.uow() as uow:  # a worker claims, then dies before recording anything
        now = world.clock.now()
        uow.deliveries.claim_due(now, now + timedelta(seconds=60), "dead-worker", 10)
        uow.commit()
    assert dispatcher.deliver() == 0
    world.clock.advance(seconds=61)
    assert dispatcher.deliver() == 1
    done, = _deliveries(world)
    assert (done.status, done.attempts, len(calls.invocations)) == (DeliveryStatus.SUCCEEDED, 2, 1)


def _dead_delivery(world: World, dispatcher: Dispatcher) -> Delivery:
    _emit(world, _approved())
    dispatcher.run_until_idle()
    dead, = _deliveries(world)
    assert dead.status is DeliveryStatus.DEAD
    return dead


def test_a_platform_engineer_replays_a_dead_delivery_and_it_is_delivered() -> None:
    calls = Calls(lambda: PermissionDenied("not yet"))
    world, dispatcher = _world(_rule("ml-dev", "strict", EventTarget(TargetKind.HANDLER, "record")), handler=calls)
    dead = _dead_delivery(world, dispatcher)
    priya = world.token_for("priya")
    replayed = world.bus.handle(c.ReplayDelivery("ml-dev", dead.id), priya)
    assert isinstance(replayed, Delivery) and (replayed.status, replayed.attempts) == (DeliveryStatus.PENDING, 0)
    record = world.store.data.records[-1]
    assert (record.actor, record.action) == ("priya", "events:ReplayDelivery")
    calls.fail_with = None
    dispatcher.run_until_idle()
    assert world.store.data.deliveries[dead.id].status is DeliveryStatus.SUCCEEDED


def test_a_lead_data_scientist_cannot_replay_a_dead_delivery() -> None:
    world, dispatcher = _world(_rule("ml-dev", "strict", EventTarget(TargetKind.HANDLER, "record")),
                               handler=Calls(lambda: PermissionDenied("no")))
    dead = _dead_delivery(world, dispatcher)
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ReplayDelivery("ml-dev", dead.id), world.token_for("lena"))
    assert world.store.data.deliveries[dead.id].status is DeliveryStatus.DEAD


def test_only_a_dead_delivery_can_be_replayed() -> None:
    world, dispatcher = _world(_rule("ml-dev", "ok", EventTarget(TargetKind.HANDLER, "record")))
    _emit(world, _approved())
    dispatcher.run_until_idle()
    done, = _deliveries(world)
    with pytest.raises(InvalidTransition):
        world.bus.handle(c.ReplayDelivery("ml-dev", done.id), world.token_for("priya"))


def test_account_members_list_the_deliveries_of_their_bus_by_status() -> None:
    world, dispatcher = _world(_rule("ml-dev", "strict", EventTarget(TargetKind.HANDLER, "record")),
                               handler=Calls(lambda: PermissionDenied("no")))
    dead = _dead_delivery(world, dispatcher)
    sam = world.token_for("sam")
    page = world.bus.handle(c.ListDeliveries("ml-dev", "dead"), sam)
    assert [d.id for d in page.items] == [dead.id]  # type: ignore[attr-defined]
    assert world.bus.handle(c.ListDeliveries("ml-dev", "succeeded"), sam).items == []  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListDeliveries("ml-shared-services"), sam)


def test_a_commit_after_a_quiet_spell_is_routed_at_once_and_a_stream_in_rounds_gather_seconds_apart() -> None:
    """The first event after a quiet spell does not wait for others to gather (an approval reaches
    its promotion at once); a commit soon after a round that found work waits until gather_seconds
    after that round began, so that events that keep coming are routed many to a round."""
    seen: list[float] = []

    def record(bus: MessageBus, invocation: Invocation) -> None:
        seen.append(time.monotonic())

    rule = _rule("ml-dev", "one", EventTarget(TargetKind.HANDLER, "record"))
    world = World()
    world.store.data.state.rules.clear()
    world.store.data.state.rules[rule.key] = rule
    dispatcher = Dispatcher(world.bus, DispatchSettings(poll_seconds=30, gather_seconds=1.0, retry=RETRY),
                            handlers={"record": record})
    dispatcher.route()
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.1)  # its first round finds nothing and it waits for a commit
        first = time.monotonic()
        _emit(world, _approved())
        world.bus.committed(set())
        _wait(lambda: len(seen) == 1)
        assert seen[0] - first < 0.5, "a lone event waited for others to gather"
        time.sleep(0.2)  # the round after the busy one finds nothing: it waits for a commit again
        _emit(world, _approved(status="Rejected"))
        world.bus.committed(set())
        _wait(lambda: len(seen) == 2)
        assert seen[1] - first >= 1.0, "a second round began less than gather_seconds after the first"
    finally:
        stop.set()
        dispatcher.wake()
        thread.join(5)


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
