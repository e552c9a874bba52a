"""The event dispatcher: routes the outbox onto rules, then delivers to their targets, at least once.

*Route* claims undispatched outbox rows, matches each against the enabled rules of the bus of the
account that emitted it, inserts one delivery per (rule, target) and marks the rows dispatched, all
in one transaction: a crash before the commit routes the same rows again, and the deliveries' unique
key makes that a no-op.

*Deliver* leases due deliveries to this dispatcher (the attempt counts from the claim, so an event
that crashes its worker still runs out of attempts), delivers each outside any write transaction and
records the outcome only while the lease is still ours. A lease that runs out (the worker died) makes
the delivery due again for any dispatcher.

The source of an event is never taken from a caller: only the server writes the outbox, stamping
each event with the account it happened in, so ``event.source`` is the original account even after
the event has been forwarded from bus to bus, and bus policies can trust it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

from charter.domain import commands as c
from charter.domain.audit import AuditEntry, Outcome
from charter.domain.crn import CRN
from charter.domain.deliveries import Delivery, DeliveryError, DeliveryStatus, RetryPolicy
from charter.domain.events import Event
from charter.domain.identity import Identity
from charter.domain.org import EventRule, TargetKind
from charter.domain.patterns import Pattern, compile_pattern
from charter.errors import CharterError, NotFound, PermissionDenied, ValidationError
from charter.services.event_handlers import BUILTIN, BuiltinHandler, Invocation, start_pipeline
from charter.services.messagebus import MessageBus
from charter.services.ports import UnitOfWork, WebhookSender

log = logging.getLogger("charter.dispatch")

PERMANENT_HANDLER_ERRORS = (PermissionDenied, ValidationError, NotFound)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    batch_size: int = 100
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    gather_seconds: float = 0.02
    """The least time between the starts of two rounds woken by commits: while events keep coming,
    those of other commits gather meanwhile and one round routes many (a round per event would cost
    every write another transaction). A commit after a quiet spell is routed at once."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def bus_crn(account: str) -> str:
    return str(CRN(account, "events", "event-bus", "default"))


@lru_cache(maxsize=1024)
def _pattern(text: str) -> Pattern:
    return compile_pattern(json.loads(text))


class Dispatcher:
    def __init__(self, bus: MessageBus, settings: DispatchSettings | None = None, *,
                 webhooks: WebhookSender | None = None,
                 handlers: Mapping[str, BuiltinHandler] | None = None,
                 draw: Callable[[], float] = random.random) -> None:
        self.bus = bus
        self.settings = settings or DispatchSettings()
        self.webhooks = webhooks
        self.handlers = BUILTIN if handlers is None else handlers
        self.draw = draw
        self._wake = threading.Event()
        bus.outbox_listeners.append(self._wake.set)

    # --- running ------------------------------------------------------------------------

    def run_once(self) -> int:
        """One round: route one batch of the outbox, then deliver one batch. The work done."""
        return self.route() + self.deliver()

    def run_until_idle(self, max_rounds: int = 1000) -> int:
        """Rounds until nothing is left to do now (retries scheduled later wait). The work done."""
        total = 0
        for _ in range(max_rounds):
            done = self.run_once()
            if not done:
                break
            total += done
        return total

    def run_forever(self, stop: threading.Event) -> None:
        busy_at = -math.inf  # when the last round that found work began
        while not stop.is_set():
            began = time.monotonic()
            try:
                done = self.run_once()
            except Exception:  # a failed round (the database went away) is retried after a pause
                log.exception("an event dispatch round failed")
                done = 0
            if done:
                busy_at = began
            elif not stop.is_set():
                # Sleep until the poll interval ends or a commit in this process wrote events; then,
                # if the last busy round began less than gather_seconds ago, until it did.
                if self._wake.wait(self.settings.poll_seconds):
                    pause = busy_at + self.settings.gather_seconds - time.monotonic()
                    if pause > 0:
                        stop.wait(pause)
                self._wake.clear()

    def wake(self) -> None:
        """End the current idle wait now (a stop, or work known to be waiting)."""
        self._wake.set()

    # --- routing ------------------------------------------------------------------------

    def route(self) -> int:
        with self.bus.uow_factory() as uow:
            events = uow.outbox.claim_pending(self.settings.batch_size)
            if not events:
                return 0
            rules: dict[str, list[EventRule]] = {}  # each bus's rules read once per round
            for event in events:
                on_bus = rules.get(event.source)
                if on_bus is None:
                    on_bus = rules[event.source] = uow.org.list_rules(event.source)
                self._route_on(uow, event, event.source, on_bus)
            uow.outbox.mark_dispatched([e.id for e in events])
            uow.commit()
        return len(events)

    def _route_on(self, uow: UnitOfWork, event: Event, account: str, rules: list[EventRule]) -> int:
        """Deliveries for every (rule, target) of ``rules``, ``account``'s bus, the event matches."""
        document = event.to_cloudevent()
        now = self.bus.clock.now()
        created = 0
        for rule in rules:
            if not rule.enabled:
                continue
            try:
                matched = _pattern(rule.pattern).matches(document)
            except (ValidationError, ValueError):  # patterns are validated by apply; a bad stored one matches nothing
                log.error("rule %s has an invalid pattern", rule.key)
                continue
            if matched:
                for target in rule.targets:
                    created += uow.deliveries.add(Delivery.new(event, account, rule.name, target, now))
        return created

    # --- delivering ---------------------------------------------------------------------

    def deliver(self) -> int:
        claim = uuid.uuid4().hex
        now = self.bus.clock.now()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        with self.bus.uow_factory() as uow:
            batch = uow.deliveries.claim_due(now, lease, claim, self.settings.batch_size)
            if batch:
                uow.commit()
        for delivery in batch:
            self._attempt(delivery, claim)
        return len(batch)

    def _attempt(self, delivery: Delivery, claim: str) -> None:
        try:
            kind = delivery.target.kind
            if kind is TargetKind.BUS:
                self._forward(delivery, claim)
                return
            if kind in (TargetKind.HANDLER, TargetKind.PIPELINE):
                self._invoke(delivery)
            elif kind is TargetKind.DEPLOYMENT:
                self._start_deployment(delivery)
            else:
                self._post(delivery)
        except DeliveryError as error:
            self._failed(delivery, claim, error)
            return
        with self.bus.uow_factory() as uow:
            if self._finish(uow, delivery, claim, DeliveryStatus.SUCCEEDED, None):
                uow.commit()

    def _finish(self, uow: UnitOfWork, delivery: Delivery, claim: str, status: DeliveryStatus,
                error: str | None, retry_in: timedelta | None = None) -> bool:
        now = self.bus.clock.now()
        done = replace(delivery, status=status, last_error=error, claim=None, claimed_until=None,
                       updated_at=now, next_attempt_at=now + retry_in if retry_in else delivery.next_attempt_at)
        if uow.deliveries.finish(done, claim):
            return True
        log.warning("delivery %s: the lease ran out before the outcome was recorded", delivery.id)
        return False

    def _forward(self, delivery: Delivery, claim: str) -> None:
        target = delivery.target.value
        with self.bus.uow_factory() as uow:
            state = uow.org.load_state()
            policy = state.bus_policies.get(target)
            source = delivery.event.source
            admitted = target in state.accounts and (
                policy.admits(state, source) if policy else source == target)
            if not admitted:
                raise DeliveryError(f"the bus of {target} does not admit events from {source}", refused=True)
            on_bus = sorted((r for r in state.rules.values() if r.account == target), key=lambda r: r.name)
            self._route_on(uow, delivery.event, target, on_bus)
            if self._finish(uow, delivery, claim, DeliveryStatus.SUCCEEDED, None):
                uow.commit()

    def _invoke(self, delivery: Delivery) -> None:
        name = delivery.target.value
        handler: BuiltinHandler | None
        if delivery.target.kind is TargetKind.PIPELINE:
            handler = functools.partial(start_pipeline, pipeline=name)
        else:
            handler = self.handlers.get(name)
        if handler is None:
            raise DeliveryError(f"no built-in handler {name!r}", permanent=True)
        run_as = delivery.target.run_as
        identity = (Identity(principal=run_as, credential_id=f"rule:{delivery.bus}/{delivery.rule}",
                             principal_kind="service") if run_as else None)
        try:
            handler(self.bus, Invocation(delivery.event, delivery.bus, delivery.rule, delivery.id, identity))
        except PERMANENT_HANDLER_ERRORS as error:
            raise DeliveryError(f"{error.type_name}: {error.message}", permanent=True) from error
        except DeliveryError:
            raise
        except CharterError as error:
            raise DeliveryError(f"{error.type_name}: {error.message}") from error
        except Exception as error:  # noqa: BLE001 - any other failure of a handler is retried
            raise DeliveryError(f"{type(error).__name__}: {error}") from error

    def _start_deployment(self, delivery: Delivery) -> None:
        """Start one execution of the rule account's deployment pipeline, acting as the pipeline's
        runAs principal (a policy lets that principal, and only it, start its pipeline). The
        execution is keyed on the event id, so a repeated delivery starts nothing more."""
        name, event = delivery.target.value, delivery.event
        with self.bus.uow_factory(readonly=True) as uow:
            pipeline = uow.deployments.get_pipeline(delivery.bus, name)
        if pipeline is None:
            raise DeliveryError(f"no deployment pipeline {name!r} in {delivery.bus}", permanent=True)
        if not pipeline.enabled:
            raise DeliveryError(f"deployment pipeline {name} of {delivery.bus} is disabled (its project was "
                                "terminated)", permanent=True)
        identity = Identity(principal=pipeline.run_as, credential_id=f"rule:{delivery.bus}/{delivery.rule}",
                            principal_kind="service")
        command = c.StartDeploymentExecution(delivery.bus, name, event.id, event.subject,
                                             str(event.data.get("status", "")))
        try:
            self.bus.handle(command, identity)
        except PERMANENT_HANDLER_ERRORS as error:
            raise DeliveryError(f"{error.type_name}: {error.message}", permanent=True) from error
        except CharterError as error:
            raise DeliveryError(f"{error.type_name}: {error.message}") from error

    def _post(self, delivery: Delivery) -> None:
        if self.webhooks is None:
            raise DeliveryError("no webhook sender is configured", permanent=True)
        self.webhooks.send(delivery.target.value, delivery.event.to_cloudevent(), delivery.id)

    def _failed(self, delivery: Delivery, claim: str, error: DeliveryError) -> None:
        now = self.bus.clock.now()
        with self.bus.uow_factory() as uow:
            retry = self._retry_policy(uow, delivery)
            exhausted = None if error.permanent else retry.exhausted(delivery, now)
            if not error.permanent and exhausted is None:
                delay = retry.delay(delivery.attempts, self.draw())
                if self._finish(uow, delivery, claim, DeliveryStatus.PENDING, error.reason, delay):
                    uow.commit()
                return
            reason = error.reason if exhausted is None else f"{error.reason} ({exhausted})"
            if self._finish(uow, delivery, claim, DeliveryStatus.DEAD, reason):
                # The dead letter and its audit record commit together: none is lost unrecorded.
                self.bus.trail.append(uow, self._dead_letter_record(delivery, error, reason))
                uow.commit()

    def _retry_policy(self, uow: UnitOfWork, delivery: Delivery) -> RetryPolicy:
        """The settings' limits, or the target's own as its rule declares them now."""
        for rule in uow.org.list_rules(delivery.bus):
            if rule.name == delivery.rule:
                for target in rule.targets:
                    if (target.kind, target.value, target.run_as) == (
                            delivery.target.kind, delivery.target.value, delivery.target.run_as):
                        return self.settings.retry.for_target(target)
        return self.settings.retry

    def _dead_letter_record(self, delivery: Delivery, error: DeliveryError, reason: str) -> AuditEntry:
        event, target = delivery.event, delivery.target
        details: dict[str, Any] = {"event": event.id, "type": event.type, "source": event.source,
                                   "rule": delivery.rule, "delivery": delivery.id,
                                   "attempts": delivery.attempts, "reason": reason}
        if target.kind is TargetKind.BUS:
            return AuditEntry(actor=None, via=None, account=target.value, action="events:PutEvents",
                              resource=bus_crn(target.value), outcome=Outcome.DENIED,
                              details={**details, "bus": delivery.bus})
        if target.kind is TargetKind.DEPLOYMENT:
            return AuditEntry(actor=None, via=None, account=delivery.bus, action="deployments:StartExecution",
                              resource=str(CRN(delivery.bus, "deployments", "deployment-pipeline", target.value)),
                              outcome=Outcome.DENIED if error.refused else Outcome.FAILED,
                              details={**details, "target": {"kind": str(target.kind), "value": target.value}})
        return AuditEntry(
            actor=target.run_as, via=f"rule:{delivery.bus}/{delivery.rule}"[:64] if target.run_as else None,
            account=delivery.bus, action="events:Deliver",
            resource=str(CRN(delivery.bus, "events", "rule", delivery.rule)),
            outcome=Outcome.DENIED if error.refused else Outcome.FAILED,
            details={**details, "target": {"kind": str(target.kind), "value": target.value}})
