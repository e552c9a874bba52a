"""Deliveries as a repository: idempotent inserts, leased claims, outcomes guarded by the lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, Row, and_, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from charter.adapters.db import tables as t
from charter.adapters.db.engine import locking
from charter.domain.deliveries import Delivery, DeliveryStatus
from charter.domain.events import event_from_cloudevent
from charter.domain.org import EventTarget, TargetKind
from charter.errors import ValidationError

d = t.event_deliveries.c


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id, event=event_from_cloudevent(row.event), bus=row.bus, rule=row.rule,
        target=EventTarget(TargetKind(row.target_kind), row.target_value, row.target_run_as or None),
        created_at=row.created_at, next_attempt_at=row.next_attempt_at,
        status=DeliveryStatus(row.status), attempts=row.attempts, last_error=row.last_error,
        claim=row.claim, claimed_until=row.claimed_until, updated_at=row.updated_at,
    )


def _state(delivery: Delivery) -> dict[str, Any]:
    return {"status": str(delivery.status), "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at, "last_error": delivery.last_error,
            "updated_at": delivery.updated_at or delivery.created_at,
            "claim": delivery.claim, "claimed_until": delivery.claimed_until}


def encode_after(delivery: Delivery) -> str:
    return f"{delivery.created_at.isoformat()}|{delivery.id}"


def _decode_after(after: str) -> tuple[datetime, str]:
    when, sep, ident = after.partition("|")
    try:
        if not sep:
            raise ValueError(after)
        return datetime.fromisoformat(when), ident
    except ValueError:
        raise ValidationError("invalid cursor", field="cursor") from None


class SqlDeliveryRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    def _insert(self) -> Insert:
        if self._postgres:
            return postgresql.insert(t.event_deliveries).on_conflict_do_nothing()
        return sqlite.insert(t.event_deliveries).on_conflict_do_nothing()

    def add(self, delivery: Delivery) -> bool:
        target = delivery.target
        result = self.conn.execute(self._insert().values(
            id=delivery.id, event_id=delivery.event.id, event=delivery.event.to_cloudevent(),
            bus=delivery.bus, rule=delivery.rule, target_kind=str(target.kind),
            target_value=target.value, target_run_as=target.run_as or "",
            created_at=delivery.created_at, **_state(delivery)))
        return bool(result.rowcount)

    def get(self, delivery_id: str) -> Delivery | None:
        row = self.conn.execute(select(t.event_deliveries).where(d.id == delivery_id)).first()
        return _delivery(row) if row else None

    def claim_due(self, now: datetime, lease_until: datetime, claim: str, limit: int) -> list[Delivery]:
        due = or_(
            and_(d.status == str(DeliveryStatus.PENDING), d.next_attempt_at <= now),
            and_(d.status == str(DeliveryStatus.DELIVERING), d.claimed_until <= now),
        )
        q = select(d.id).where(due).order_by(d.next_attempt_at).limit(limit)
        ids = [row.id for row in self.conn.execute(locking(self.conn, q, skip_locked=True))]
        if not ids:
            return []
        self.conn.execute(update(t.event_deliveries).where(d.id.in_(ids)).values(
            status=str(DeliveryStatus.DELIVERING), claim=claim, claimed_until=lease_until,
            attempts=d.attempts + 1, updated_at=now))
        rows = self.conn.execute(select(t.event_deliveries).where(d.id.in_(ids)).order_by(d.next_attempt_at))
        return [_delivery(r) for r in rows]

    def finish(self, delivery: Delivery, claim: str) -> bool:
        result = self.conn.execute(update(t.event_deliveries).where(and_(
            d.id == delivery.id, d.claim == claim, d.status == str(DeliveryStatus.DELIVERING),
        )).values(**_state(delivery)))
        return result.rowcount == 1

    def save(self, delivery: Delivery) -> None:
        self.conn.execute(update(t.event_deliveries).where(d.id == delivery.id).values(**_state(delivery)))

    def list(self, bus: str, status: DeliveryStatus | None, after: str | None, limit: int) -> list[Delivery]:
        q = select(t.event_deliveries).where(d.bus == bus).order_by(d.created_at, d.id).limit(limit)
        if status is not None:
            q = q.where(d.status == str(status))
        if after is not None:
            q = q.where(tuple_(d.created_at, d.id) > tuple_(*_decode_after(after)))
        return [_delivery(r) for r in self.conn.execute(q)]
