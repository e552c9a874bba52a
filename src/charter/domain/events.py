"""Domain events as CloudEvents 1.0: every state change of every resource emits one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    source: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
            "data": self.data,
        }


def event_type(service: str, resource: str, what: str) -> str:
    return f"charter.{service}.{resource}.{what}"


def event_service(type_: str) -> str:
    """The ``<service>`` of ``charter.<service>.<resource>.<what>`` (the whole type otherwise)."""
    prefix, _, rest = type_.partition(".")
    return rest.partition(".")[0] if prefix == "charter" and rest else type_


def event_from_cloudevent(doc: dict[str, Any]) -> Event:
    """The Event that ``Event.to_cloudevent`` wrote."""
    return Event(doc["type"], doc["source"], doc["subject"], dict(doc.get("data") or {}), doc["id"],
                 datetime.fromisoformat(doc["time"]))
