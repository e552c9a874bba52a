"""Governed data as a repository: datasets, gap-free versions, subscriptions and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

from charter.adapters.db import tables as t
from charter.domain.datasets import (
    Column,
    DataFormat,
    Dataset,
    DatasetRead,
    DatasetVersion,
    Subscription,
    SubscriptionChange,
    SubscriptionStatus,
)

d, v, s, r = t.datasets.c, t.dataset_versions.c, t.dataset_subscriptions.c, t.dataset_reads.c

_ALLOCATE = (
    update(t.datasets)
    .where(and_(d.account == bindparam("a"), d.name == bindparam("n")))
    .values(next_version=d.next_version + 1)
    .returning(d.next_version)
)
_DATASET = select(t.datasets).where(and_(d.account == bindparam("a"), d.name == bindparam("n")))
_VERSION = select(t.dataset_versions).where(and_(
    v.account == bindparam("a"), v.dataset == bindparam("n"), v.version == bindparam("v")))
_LATEST = (select(t.dataset_versions).where(and_(v.account == bindparam("a"), v.dataset == bindparam("n")))
           .order_by(v.version.desc()).limit(1))
_SUBSCRIPTION = select(t.dataset_subscriptions).where(s.id == bindparam("id"))
_SUBSCRIPTIONS_TO = (select(t.dataset_subscriptions).where(and_(
    s.account == bindparam("a"), s.dataset == bindparam("n"), s.subscriber == bindparam("sub")))
    .order_by(s.id))
_SAVE = update(t.dataset_subscriptions).where(s.id == bindparam("sid")).values(
    status=bindparam("status"), decided_by=bindparam("decided_by"), decided_at=bindparam("decided_at"),
    comment=bindparam("comment"), expires_at=bindparam("expires_at"), revoked_by=bindparam("revoked_by"),
    revoked_at=bindparam("revoked_at"), history=bindparam("history"))


def _dataset(row: Row[Any]) -> Dataset:
    return Dataset(row.account, row.name, row.owner, row.created_at, row.description,
                   tuple((k, val) for k, val in row.tags))


def _version(row: Row[Any]) -> DatasetVersion:
    return DatasetVersion(row.account, row.dataset, row.version, DataFormat(row.format), row.sha256,
                          int(row.size), tuple(Column(col["name"], col["dtype"]) for col in row.columns),
                          int(row.rows), row.registered_by, row.created_at)


def _change(h: dict[str, Any]) -> SubscriptionChange:
    return SubscriptionChange(SubscriptionStatus(h["status"]),
                              SubscriptionStatus(h["previous"]) if h["previous"] else None,
                              h["actor"], h["comment"], datetime.fromisoformat(h["time"]))


def _history(sub: Subscription) -> list[dict[str, Any]]:
    return [{"status": str(h.status), "previous": str(h.previous) if h.previous else None,
             "actor": h.actor, "comment": h.comment, "time": h.time.isoformat()} for h in sub.history]


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(
        id=row.id, account=row.account, dataset=row.dataset, subscriber=row.subscriber,
        requested_by=row.requested_by, reason=row.reason, created_at=row.created_at, project=row.project,
        status=SubscriptionStatus(row.status), decided_by=row.decided_by, decided_at=row.decided_at,
        comment=row.comment, expires_at=row.expires_at, revoked_by=row.revoked_by, revoked_at=row.revoked_at,
        history=tuple(_change(h) for h in row.history))


def _decision(sub: Subscription) -> dict[str, Any]:
    return {"status": str(sub.status), "decided_by": sub.decided_by, "decided_at": sub.decided_at,
            "comment": sub.comment, "expires_at": sub.expires_at, "revoked_by": sub.revoked_by,
            "revoked_at": sub.revoked_at, "history": _history(sub)}


def _read(row: Row[Any]) -> DatasetRead:
    return DatasetRead(row.id, row.account, row.dataset, row.version, row.reader, row.for_account, row.time,
                       row.project, row.run, row.subscription)


class SqlDatasetRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_dataset(self, account: str, name: str) -> Dataset | None:
        row = self.conn.execute(_DATASET, {"a": account, "n": name}).first()
        return _dataset(row) if row else None

    def add_dataset(self, dataset: Dataset) -> None:
        self.conn.execute(insert(t.datasets).values(
            account=dataset.account, name=dataset.name, owner=dataset.owner,
            description=dataset.description, tags=[list(kv) for kv in dataset.tags],
            created_at=dataset.created_at, next_version=1))

    def list_datasets(self, account: str, after: str | None, limit: int) -> list[Dataset]:
        q = select(t.datasets).where(d.account == account).order_by(d.name).limit(limit)
        if after is not None:
            q = q.where(d.name > after)
        return [_dataset(row) for row in self.conn.execute(q)]

    def allocate_version(self, account: str, name: str) -> int:
        allocated = self.conn.execute(_ALLOCATE, {"a": account, "n": name}).scalar_one()
        return int(allocated) - 1

    def add_version(self, version: DatasetVersion) -> None:
        self.conn.execute(insert(t.dataset_versions).values(
            account=version.account, dataset=version.dataset, version=version.version,
            format=str(version.format), sha256=version.sha256, size=version.size,
            columns=[{"name": col.name, "dtype": col.dtype} for col in version.columns],
            rows=version.rows, registered_by=version.registered_by, created_at=version.created_at))

    def get_version(self, account: str, name: str, version: int) -> DatasetVersion | None:
        row = self.conn.execute(_VERSION, {"a": account, "n": name, "v": version}).first()
        return _version(row) if row else None

    def latest_version(self, account: str, name: str) -> DatasetVersion | None:
        row = self.conn.execute(_LATEST, {"a": account, "n": name}).first()
        return _version(row) if row else None

    def list_versions(self, account: str, name: str, after: int | None, limit: int) -> list[DatasetVersion]:
        q = (select(t.dataset_versions).where(and_(v.account == account, v.dataset == name))
             .order_by(v.version).limit(limit))
        if after is not None:
            q = q.where(v.version > after)
        return [_version(row) for row in self.conn.execute(q)]

    def add_subscription(self, subscription: Subscription) -> None:
        sub = subscription
        self.conn.execute(insert(t.dataset_subscriptions).values(
            id=sub.id, account=sub.account, dataset=sub.dataset, subscriber=sub.subscriber,
            project=sub.project, requested_by=sub.requested_by, reason=sub.reason,
            created_at=sub.created_at, **_decision(sub)))

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self.conn.execute(_SUBSCRIPTION, {"id": subscription_id}).first()
        return _subscription(row) if row else None

    def save_subscription(self, subscription: Subscription) -> None:
        self.conn.execute(_SAVE, {"sid": subscription.id, **_decision(subscription)})

    def list_subscriptions(self, *, account: str | None = None, subscriber: str | None = None,
                           dataset: str | None = None, status: SubscriptionStatus | None = None,
                           after: str | None = None, limit: int = 50) -> list[Subscription]:
        q = select(t.dataset_subscriptions).order_by(s.id).limit(limit)
        if account is not None:
            q = q.where(s.account == account)
        if subscriber is not None:
            q = q.where(s.subscriber == subscriber)
        if dataset is not None:
            q = q.where(s.dataset == dataset)
        if status is not None:
            q = q.where(s.status == str(status))
        if after is not None:
            q = q.where(s.id > after)
        return [_subscription(row) for row in self.conn.execute(q)]

    def subscriptions_to(self, account: str, dataset: str, subscriber: str) -> list[Subscription]:
        rows = self.conn.execute(_SUBSCRIPTIONS_TO, {"a": account, "n": dataset, "sub": subscriber})
        return [_subscription(row) for row in rows]

    def add_read(self, read: DatasetRead) -> None:
        self.conn.execute(insert(t.dataset_reads).values(
            id=read.id, account=read.account, dataset=read.dataset, version=read.version, reader=read.reader,
            for_account=read.for_account, project=read.project, run=read.run,
            subscription=read.subscription, time=read.time))

    def reads_for_run(self, for_account: str, run: str) -> list[DatasetRead]:
        q = select(t.dataset_reads).where(and_(r.for_account == for_account, r.run == run)).order_by(r.id)
        return [_read(row) for row in self.conn.execute(q)]

    def list_reads(self, account: str, dataset: str, after: str | None, limit: int) -> list[DatasetRead]:
        q = (select(t.dataset_reads).where(and_(r.account == account, r.dataset == dataset))
             .order_by(r.id).limit(limit))
        if after is not None:
            q = q.where(r.id > after)
        return [_read(row) for row in self.conn.execute(q)]
