"""Deliveries: one event on its way to one target of one rule, retried until it lands or dies.

A delivery is keyed by (event id, bus, rule, target), so routing an event again - after a crash,
or when a forwarded event comes back to a bus that already saw it - creates nothing new.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from charter.domain.crn import CRN
from charter.domain.events import Event
from charter.domain.org import EventTarget


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


class DeliveryError(Exception):
    """A failed attempt. ``permanent`` ones go to the dead-letter queue at once; others retry."""

    def __init__(self, reason: str, *, permanent: bool = False, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or refused
        self.refused = refused
        """Refused by a guard (a bus policy, the webhook SSRF guard) rather than failed: audited as denied."""


def delivery_id(event_id: str, bus: str, rule: str, target: EventTarget) -> str:
    key = "\x00".join((event_id, bus, rule, str(target.kind), target.value, target.run_as or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event: Event
    bus: str
    """The account whose bus (and rule) matched the event."""
    rule: str
    target: EventTarget
    created_at: datetime
    next_attempt_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    claim: str | None = None
    claimed_until: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def new(cls, event: Event, bus: str, rule: str, target: EventTarget, now: datetime) -> Delivery:
        return cls(delivery_id(event.id, bus, rule, target), event, bus, rule, target, now, now, updated_at=now)

    @property
    def crn(self) -> CRN:
        return CRN(self.bus, "events", "delivery", self.id)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    max_attempts: int = 8
    max_age_seconds: float = 86400.0

    def delay(self, attempts: int, draw: float) -> timedelta:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempts-1))).

        ``draw`` is a number in [0, 1); the caller owns the randomness so that tests can fix it.
        """
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return timedelta(seconds=ceiling * draw)

    def for_target(self, target: EventTarget) -> RetryPolicy:
        """These limits, with the target's own attempt and age limits where it sets them."""
        return replace(self,
                       max_attempts=target.max_attempts or self.max_attempts,
                       max_age_seconds=float(target.max_age_seconds or self.max_age_seconds))

    def exhausted(self, delivery: Delivery, now: datetime) -> str | None:
        """Why a failed delivery may not be tried again, or None while it may."""
        if delivery.attempts >= self.max_attempts:
            return f"gave up after {delivery.attempts} attempts"
        if (now - delivery.created_at).total_seconds() >= self.max_age_seconds:
            return f"gave up after {self.max_age_seconds:g} seconds"
        return None
