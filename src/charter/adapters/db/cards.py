"""Model cards as a repository: a card row updated in place, version rows only ever inserted.

A save is optimistic. Every change of a card adds a version, a status change, or both (an edit
of an approved card), so the stored card must be exactly one step behind the card saved: its
version count and history a prefix of the new ones. The update is then conditional on the
revision read, so a concurrent writer that got there first turns this save into a Conflict
rather than being overwritten.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from typing import Any

import pydantic_core
from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from charter.adapters.db import tables as t
from charter.adapters.db.engine import locking
from charter.domain.card_json import (
    evaluation_from_json,
    evaluation_to_json,
    history_from_json,
    history_to_json,
    training_from_json,
    training_to_json,
)
from charter.domain.cards import (
    CardContent,
    CardStatus,
    CardVersion,
    ModelCard,
    card_content_from_document,
    to_document,
)
from charter.errors import Conflict, NotFound

k, v = t.model_cards.c, t.model_card_versions.c

_CARD = select(t.model_cards).where(and_(k.account == bindparam("a"), k.group == bindparam("g")))
_VERSIONS = (select(t.model_card_versions)
             .where(and_(v.account == bindparam("a"), v.group == bindparam("g")))
             .order_by(v.version))
_VERSION = select(t.model_card_versions).where(and_(
    v.account == bindparam("a"), v.group == bindparam("g"), v.version == bindparam("n")))
_DOCUMENTING = select(v.version).where(and_(
    v.package == bindparam("p"), v.account == bindparam("a"), v.group == bindparam("g")))
_STEPS = frozenset({(1, 0), (0, 1), (1, 1)})
"""(new versions, new status changes) of one change: an edit, a status move, an approved card's edit."""


def _version(row: Row[Any]) -> CardVersion:
    return CardVersion(row.version, row.author, row.time, row.summary,
                       _content(pydantic_core.to_json(row.content)), training_from_json(row.training),
                       evaluation_from_json(row.evaluation))


@lru_cache(maxsize=256)  # bounded: a document may be up to a few hundred KiB
def _content(document: bytes) -> CardContent:
    """The content a stored document describes, checked as any document is, once per distinct
    document: a card's versions mostly carry the same content forward (a promotion changes only
    the sections filled from the package), and checking every field of every version made reading
    a card of a few hundred versions cost tens of milliseconds. The content is an immutable value,
    so one instance serves every version that stores the same document."""
    return card_content_from_document(pydantic_core.from_json(document))


def _version_row(card: ModelCard, version: CardVersion) -> dict[str, Any]:
    return {"account": card.account, "group": card.group, "version": version.number,
            "author": version.author, "time": version.time, "summary": version.summary,
            "content": to_document(version.content), "training": training_to_json(version.training),
            "evaluation": evaluation_to_json(version.evaluation),
            "package": str(version.package) if version.package else None}


def _card(row: Row[Any], versions: list[CardVersion]) -> ModelCard:
    return ModelCard(row.account, row.group, tuple(versions), CardStatus(row.status),
                     row.approved_version, history_from_json(row.history), first=versions[0].number)


def _revision(card: ModelCard) -> int:
    return card.count + len(card.history)


def _updated_at(card: ModelCard) -> datetime:
    times = [card.latest.time, *(h.time for h in card.history)]
    return max(times)


class SqlCardRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, account: str, group: str) -> ModelCard | None:
        row = self.conn.execute(_CARD, {"a": account, "g": group}).first()
        if row is None:
            return None
        versions = [_version(r) for r in self.conn.execute(_VERSIONS, {"a": account, "g": group})]
        return _card(row, versions)

    def get_latest(self, account: str, group: str) -> ModelCard | None:
        row = self.conn.execute(_CARD, {"a": account, "g": group}).first()
        if row is None:
            return None
        latest = self.conn.execute(_VERSION, {"a": account, "g": group, "n": row.version_count}).one()
        return _card(row, [_version(latest)])

    def documenting(self, account: str, group: str, package: str) -> int | None:
        return self.conn.execute(_DOCUMENTING, {"p": package, "a": account, "g": group}).scalar()

    def add(self, card: ModelCard) -> None:
        if self.conn.execute(_CARD, {"a": card.account, "g": card.group}).first() is not None:
            raise Conflict(f"{card.crn} already exists", card=str(card.crn))
        try:
            self.conn.execute(insert(t.model_cards).values(
                account=card.account, group=card.group, status=str(card.status),
                approved_version=card.approved_version, version_count=len(card.versions),
                revision=_revision(card), history=history_to_json(card.history),
                created_at=card.versions[0].time, updated_at=_updated_at(card)))
        except IntegrityError:
            # A concurrent creation of the same card, or a group that does not exist.
            raise Conflict(f"{card.crn} cannot be created: it exists already or its model package "
                           "group does not", card=str(card.crn)) from None
        self.conn.execute(insert(t.model_card_versions), [_version_row(card, x) for x in card.versions])

    def save(self, card: ModelCard) -> None:
        row = self.conn.execute(locking(self.conn, _CARD), {"a": card.account, "g": card.group}).first()
        if row is None:
            raise NotFound(f"{card.crn} does not exist", card=str(card.crn))
        stored_versions, stored_history = int(row.version_count), history_from_json(row.history)
        step = (card.count - stored_versions, len(card.history) - len(stored_history))
        if step not in _STEPS or card.history[:len(stored_history)] != stored_history:
            raise Conflict(f"{card.crn} changed since it was read (now version {stored_versions}, "
                           f"{row.status}); read it again and retry", card=str(card.crn),
                           version=stored_versions, status=str(row.status))
        result = self.conn.execute(
            update(t.model_cards)
            .where(and_(k.account == card.account, k.group == card.group, k.revision == row.revision))
            .values(status=str(card.status), approved_version=card.approved_version,
                    version_count=card.count, revision=_revision(card),
                    history=history_to_json(card.history), updated_at=_updated_at(card)))
        if result.rowcount != 1:
            raise Conflict(f"{card.crn} was changed by someone else meanwhile; read it again and retry",
                           card=str(card.crn))
        added = [x for x in card.versions if x.number > stored_versions]
        if added:
            self.conn.execute(insert(t.model_card_versions), [_version_row(card, x) for x in added])

    def list(self, account: str, after: str | None, limit: int) -> list[ModelCard]:
        q = select(t.model_cards).where(k.account == account).order_by(k.group).limit(limit)
        if after is not None:
            q = q.where(k.group > after)
        rows = list(self.conn.execute(q))
        if not rows:
            return []
        versions: dict[str, list[CardVersion]] = defaultdict(list)
        query = (select(t.model_card_versions)
                 .where(and_(v.account == account, v.group.in_([r.group for r in rows])))
                 .order_by(v.group, v.version))
        for r in self.conn.execute(query):
            versions[r.group].append(_version(r))
        return [_card(r, versions[r.group]) for r in rows]
