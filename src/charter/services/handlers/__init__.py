"""Command and query handlers, and the table that wires each message to its one handler."""

from __future__ import annotations

from charter.services.handlers import (
    abilities,
    account_requests,
    audit,
    cards,
    catalog,
    datasets,
    deployments,
    endpoints,
    events,
    identity,
    org,
    pipelines,
    projects,
    promotion,
    registry,
    workspaces,
)
from charter.services.messagebus import MessageBus


def register_all(bus: MessageBus) -> None:
    for module in (org, identity, audit, registry, cards, promotion, events, datasets, catalog,
                   account_requests, projects, workspaces, pipelines, endpoints, deployments,
                   abilities):
        for message_type, handler in module.HANDLERS.items():
            bus.register(message_type, handler)
