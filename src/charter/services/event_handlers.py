"""The built-in handlers a rule may target by name, and the interface each implements.

A handler is called once per delivery attempt, outside any transaction, with the message bus to act
through. It returns to say the event was handled. Raising ``PermissionDenied``, ``ValidationError``
or ``NotFound`` fails the delivery for good (dead at once, audited); any other exception is a failed
attempt that is retried with backoff. Deliveries are at least once, so a handler keys whatever it
does on ``invocation.event.id``.

The names are declared in ``charter.domain.plan.BUILTIN_HANDLERS`` (which ``charter apply``
validates targets against); registering a name not declared there is refused, and a test fails when
a declared name has no handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from charter.domain import commands as c
from charter.domain.audit import AuditEntry
from charter.domain.crn import CRN
from charter.domain.events import Event
from charter.domain.identity import Identity
from charter.domain.plan import BUILTIN_HANDLERS
from charter.errors import PermissionDenied
from charter.services.messagebus import MessageBus


@dataclass(frozen=True, slots=True)
class Invocation:
    event: Event
    """The delivered event."""
    bus: str
    """The account whose bus (rule) matched it."""
    rule: str
    """The rule's name."""
    delivery_id: str
    run_as: Identity | None
    """The target's ``runAs`` service principal, or None when the target names none."""


BuiltinHandler = Callable[[MessageBus, Invocation], None]
BUILTIN: dict[str, BuiltinHandler] = {}


def register_handler(name: str, fn: BuiltinHandler) -> None:
    if name not in BUILTIN_HANDLERS:
        raise ValueError(f"{name!r} is not declared in charter.domain.plan.BUILTIN_HANDLERS")
    if name in BUILTIN:
        raise ValueError(f"handler {name!r} is already registered")
    BUILTIN[name] = fn


def audit_log(bus: MessageBus, invocation: Invocation) -> None:
    """Record the delivered event in the audit trail of the rule's account."""
    event, who = invocation.event, invocation.run_as
    bus.record(AuditEntry(
        actor=who.principal if who else None,
        via=who.via if who else None,
        account=invocation.bus,
        action="events:Deliver",
        resource=str(CRN(invocation.bus, "events", "rule", invocation.rule)),
        details={"event": event.id, "type": event.type, "source": event.source, "subject": event.subject,
                 "rule": invocation.rule, "delivery": invocation.delivery_id, "handler": "audit-log"},
    ))


register_handler("audit-log", audit_log)


def start_pipeline(bus: MessageBus, invocation: Invocation, pipeline: str) -> None:
    """A ``pipeline: NAME`` target: start a run of that pipeline in the rule's account, as the
    target's ``runAs`` principal (the policies decide as for anyone), keyed on the event's id so a
    redelivered event starts no second run."""
    if invocation.run_as is None:
        raise PermissionDenied(f"the rule {invocation.rule!r} names no runAs principal to start {pipeline!r} as")
    bus.handle(c.StartPipelineRun(invocation.bus, pipeline, {}, idempotency_key=f"event:{invocation.event.id}",
                                  requested_at=invocation.event.time), invocation.run_as)
