"""Endpoints as the deployments service (and the API) use them: commands through the bus, and
invocations authorized through the bus then served by the serving supervisor."""

from __future__ import annotations

from typing import Any

from charter.domain import commands as c
from charter.domain.endpoints import Endpoint
from charter.domain.identity import Identity
from charter.errors import NotFound, ServiceUnavailable
from charter.services.messagebus import MessageBus
from charter.services.ports import Rollout, RolloutStatus


def invoke(bus: MessageBus, account: str, endpoint: str, payload: dict[str, Any], *,
           identity: Identity | None = None, bearer: str | None = None,
           request_id: str | None = None) -> dict[str, Any]:
    """One invocation as ``identity`` (or whoever ``bearer`` authenticates): one read-only
    transaction for the decision, then the worker; nothing is written."""
    bus.handle(c.AuthorizeInvocation(account, endpoint), identity, request_id, bearer=bearer)
    if bus.endpoints is None:
        raise ServiceUnavailable("this server runs no endpoint workers (endpoints_in_server is off)")
    return bus.endpoints.invoke(account, endpoint, payload)


def rollout_of(endpoint: Endpoint, revision: int) -> Rollout:
    try:
        found = endpoint.revision(revision)
    except KeyError:
        raise NotFound(f"{endpoint.crn} has no revision {revision}", endpoint=endpoint.name,
                       revision=revision) from None
    serving = endpoint.serving
    return Rollout(revision, RolloutStatus(str(found.status)), found.status_reason,
                   serving.number if serving else None,
                   serving.variants[0].package if serving and len(serving.variants) == 1 else None)


class BusEndpointOperations:
    """The EndpointOperations port on the message bus: every call authorized and audited as the
    identity given."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    def deploy(self, identity: Identity, account: str, endpoint: str, package: str, *, reason: str) -> int:
        done: Endpoint = self.bus.handle(c.DeployEndpoint(account, endpoint, (c.VariantSpec(package),),
                                                          reason=reason), identity)
        return done.latest.number

    def rollout(self, identity: Identity, account: str, endpoint: str, revision: int) -> Rollout:
        found: Endpoint = self.bus.handle(c.GetEndpoint(account, endpoint), identity)
        return rollout_of(found, revision)

    def revision_for(self, identity: Identity, account: str, endpoint: str, reason: str) -> int | None:
        try:
            found: Endpoint = self.bus.handle(c.GetEndpoint(account, endpoint), identity)
        except NotFound:
            return None
        return next((r.number for r in reversed(found.revisions) if r.reason == reason), None)

    def invoke(self, identity: Identity, account: str, endpoint: str,
               payload: dict[str, Any]) -> dict[str, Any]:
        return invoke(self.bus, account, endpoint, payload, identity=identity)

    def rollback(self, identity: Identity, account: str, endpoint: str, *, reason: str) -> int:
        done: Endpoint = self.bus.handle(c.RollbackEndpoint(account, endpoint, reason), identity)
        return done.latest.number
