"""The invocation hot path's decision: who the caller is and whether they may invoke an endpoint,
reused for a short time instead of read and decided again on every prediction.

An allowed decision is remembered per credential and endpoint until the earliest of: its age
reaching ``reuse_seconds``, the credential's expiry, and any command this process commits (a
revoked token, a removed role binding or new policies end every remembered decision at once). A
change committed by another replica takes effect within ``reuse_seconds``. Refusals are never
remembered: each one is decided, and audited, again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from charter.domain import commands as c
from charter.domain.authz import Decision
from charter.domain.identity import Identity
from charter.services.authorization import decision_trace
from charter.services.messagebus import MessageBus

MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class _Remembered:
    identity: Identity
    decision: Decision
    generation: int
    until: float
    """The gate's monotonic time after which it is decided again."""


def _key(bearer: str, account: str, endpoint: str) -> bytes:
    # The credential's digest, never the secret itself, keys the memory.
    return hashlib.blake2b(f"{account}\0{endpoint}\0{bearer}".encode(), digest_size=20).digest()


def _note(decision: Decision) -> None:
    """Put a decision in the request's trace (the guard's proof that the request was decided)."""
    trace = decision_trace.get()
    if trace is not None:
        trace.append(decision)


class InvocationGate:
    def __init__(self, bus: MessageBus, reuse_seconds: float, max_remembered: int = MAX_REMEMBERED,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.monotonic = monotonic
        self.reuse_seconds = reuse_seconds
        self.max_remembered = max_remembered
        self._remembered: OrderedDict[bytes, _Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def remembered(self, bearer: str | None, account: str, endpoint: str) -> Identity | None:
        """The caller, if an allowed decision for this credential and endpoint is still good; no
        I/O, so the event loop may ask."""
        if not bearer or self.reuse_seconds <= 0:
            return None
        key = _key(bearer, account, endpoint)
        with self._lock:
            found = self._remembered.get(key)
            if found is None:
                return None
            if found.generation != self.bus.generation or self.monotonic() >= found.until:
                del self._remembered[key]
                return None
        _note(found.decision)
        return found.identity

    def authorize(self, bearer: str | None, account: str, endpoint: str,
                  request_id: str | None = None) -> Identity:
        """Authenticate and decide in one read-only transaction (a refusal raises, and is audited);
        an allowed decision is remembered."""
        generation = self.bus.generation  # read before: a commit racing this decision voids it
        trace: list[Decision] = []
        token = decision_trace.set(trace)
        try:
            identity: Identity = self.bus.handle(c.AuthorizeInvocation(account, endpoint), None, request_id,
                                                 bearer=bearer)
        finally:
            decision_trace.reset(token)
        for decision in trace:
            _note(decision)
        if bearer and self.reuse_seconds > 0 and trace:
            now = self.monotonic()
            until = now + self.reuse_seconds
            if identity.valid_until is not None:
                until = min(until, now + (identity.valid_until - self.bus.clock.now()).total_seconds())
            with self._lock:
                self._remembered[_key(bearer, account, endpoint)] = _Remembered(identity, trace[-1], generation, until)
                while len(self._remembered) > self.max_remembered:
                    self._remembered.popitem(last=False)
        return identity
