from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from charter.adapters.cedar import CedarPolicyEngine
from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.services.audit import AuditTrail
from charter.services.authorization import Authorizer
from charter.services.handlers import register_all
from charter.services.messagebus import MessageBus
from tests.unit.fakes import FakeClock, FakeSigner, FakeStore, MemoryArtifactStore, MemoryWitness

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "charter.yaml"
SYSTEM = Identity("system", "test")


class World:
    """A bus on in-memory fakes with the example organization applied, and a way to act as anyone."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.clock = FakeClock()
        self.witness = MemoryWitness()
        self.trail = AuditTrail(FakeSigner(), self.witness, self.clock, checkpoint_every=4)
        self.artifacts = MemoryArtifactStore()
        self.bus = MessageBus(self.store.uow, Authorizer(CedarPolicyEngine()), self.trail, self.clock,
                              artifacts=self.artifacts)
        register_all(self.bus)
        self.init = self.bus.handle(c.InitOrg("acme"), SYSTEM)
        self.admin = self.bus.authenticate(self.init.bearer)
        self.bus.handle(c.ApplyOrg(EXAMPLE.read_text(), "charter.yaml"), self.admin)

    def token_for(self, principal: str) -> Identity:
        issued = self.bus.handle(c.CreateToken(principal), self.admin)
        return self.bus.authenticate(issued.bearer)

    def session_for(self, principal: str, account: str, role: str) -> Identity:
        issued = self.bus.handle(c.AssumeRole(account, role), self.token_for(principal))
        return self.bus.authenticate(issued.bearer)

    def as_(self, identity: Identity) -> Callable[[c.Message], object]:
        return lambda message: self.bus.handle(message, identity)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture(scope="session")
def example_text() -> str:
    return EXAMPLE.read_text()
