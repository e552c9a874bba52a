"""The invocation gate on a real store: an allowed decision is reused for a moment, and ends at
once when this server commits anything (a revoked token, a removed role), when its time is up or
when the credential expires; a refusal is never reused and audited every time."""

from __future__ import annotations

import pytest

from charter.bootstrap import Platform
from charter.domain import commands as c
from charter.errors import PermissionDenied, Unauthenticated
from charter.services.authorization import decision_trace
from charter.services.invocation_gate import InvocationGate
from tests.integration.conftest import Org

TEST, ENDPOINT = "ml-test", "churn"


def test_an_allowed_decision_is_reused_and_still_counts_as_the_requests_decision(org: Org) -> None:
    gate = InvocationGate(org.bus, reuse_seconds=60)
    bearer = org.bearer("mei")
    assert gate.remembered(bearer, TEST, ENDPOINT) is None
    assert gate.authorize(bearer, TEST, ENDPOINT).principal == "mei"
    trace: list[object] = []
    token = decision_trace.set(trace)
    try:
        identity = gate.remembered(bearer, TEST, ENDPOINT)
    finally:
        decision_trace.reset(token)
    assert identity is not None and identity.principal == "mei"
    assert len(trace) == 1 and trace[0].allowed  # type: ignore[attr-defined]
    # Another endpoint, or another credential, is decided on its own.
    assert gate.remembered(bearer, TEST, "other") is None
    assert gate.remembered(org.bearer("lena"), TEST, ENDPOINT) is None


def test_a_revocation_committed_on_this_server_ends_the_reused_decision_at_once(org: Org) -> None:
    gate = InvocationGate(org.bus, reuse_seconds=60)
    issued = org.bus.handle(c.CreateToken("mei"), org.admin)
    gate.authorize(issued.bearer, TEST, ENDPOINT)
    assert gate.remembered(issued.bearer, TEST, ENDPOINT) is not None
    org.bus.handle(c.RevokeToken(issued.token.id), org.admin)
    assert gate.remembered(issued.bearer, TEST, ENDPOINT) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        gate.authorize(issued.bearer, TEST, ENDPOINT)


def test_a_reused_decision_ends_with_its_time_and_with_the_credentials_expiry(org: Org) -> None:
    clock = [1000.0]
    gate = InvocationGate(org.bus, reuse_seconds=5, monotonic=lambda: clock[0])
    bearer = org.bearer("mei")
    gate.authorize(bearer, TEST, ENDPOINT)
    clock[0] += 4.9
    assert gate.remembered(bearer, TEST, ENDPOINT) is not None
    clock[0] += 0.2
    assert gate.remembered(bearer, TEST, ENDPOINT) is None

    # A credential that expires sooner than the reuse time: its expiry ends the reuse.
    long = InvocationGate(org.bus, reuse_seconds=3600, monotonic=lambda: clock[0])
    expiring = org.bus.handle(c.CreateToken("mei", expires_in_seconds=60), org.admin).bearer
    long.authorize(expiring, TEST, ENDPOINT)
    clock[0] += 58
    assert long.remembered(expiring, TEST, ENDPOINT) is not None
    clock[0] += 3
    assert long.remembered(expiring, TEST, ENDPOINT) is None


def test_a_refusal_is_never_reused_and_audited_each_time(org: Org) -> None:
    gate = InvocationGate(org.bus, reuse_seconds=60)
    bearer = org.bearer("sam")  # a data scientist: no role in the test account

    def denials() -> int:
        with org.bus.uow_factory(readonly=True) as uow:
            return sum(1 for r in uow.audit.find(c.AuditFilter(actor="sam", account=TEST), None, 100)
                       if r.outcome == "denied")

    before = denials()
    for _ in range(3):
        with pytest.raises(PermissionDenied):
            gate.authorize(bearer, TEST, ENDPOINT)
        assert gate.remembered(bearer, TEST, ENDPOINT) is None
    assert denials() == before + 3


def test_with_no_reuse_every_invocation_is_decided_afresh(org: Org) -> None:
    gate = InvocationGate(org.bus, reuse_seconds=0)
    gate.authorize(org.bearer("mei"), TEST, ENDPOINT)
    assert gate.remembered(org.bearer("mei"), TEST, ENDPOINT) is None


def test_the_platform_gate_reuses_decisions_for_the_configured_time(platform: Platform) -> None:
    assert platform.invocations.reuse_seconds == platform.settings.invocation_decision_seconds == 1.0
