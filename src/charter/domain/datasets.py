"""Governed data: datasets owned by a data-governance account, their immutable versions, the
subscriptions other accounts request, the grants an approval gives, and the record of every read.

Data leaves the data-governance account only through an approved, unexpired, unrevoked
subscription; every read names who read which version, for which account and run (lineage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from charter.domain.crn import CRN
from charter.domain.names import check_name
from charter.errors import InvalidTransition, ValidationError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_COLUMNS = 10_000
MAX_COLUMN_NAME = 256
MAX_REASON = 2000
MAX_TEXT = 4000


class DataFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


def data_format(value: str) -> DataFormat:
    try:
        return DataFormat(value)
    except ValueError:
        raise ValidationError(f"unsupported dataset format {value!r}: use csv or parquet",
                              field="format", value=str(value)[:32]) from None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str


def check_columns(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """An ordered schema: at least one column, names non-empty, unique and of bounded length."""
    if not columns:
        raise ValidationError("a dataset needs at least one column", field="schema")
    if len(columns) > MAX_COLUMNS:
        raise ValidationError(f"a dataset has at most {MAX_COLUMNS} columns", field="schema")
    seen: set[str] = set()
    for i, column in enumerate(columns, start=1):
        if not column.name.strip():
            raise ValidationError(f"column {i} has an empty name", field="schema", column=i)
        if len(column.name) > MAX_COLUMN_NAME:
            raise ValidationError(f"column {i}'s name is longer than {MAX_COLUMN_NAME} characters",
                                  field="schema", column=i)
        if column.name in seen:
            raise ValidationError(f"column {i}: duplicate column name {column.name!r}", field="schema",
                                  column=i, name=column.name)
        seen.add(column.name)
        if not column.dtype:
            raise ValidationError(f"column {column.name!r} has no dtype", field="schema", column=i)
    return columns


@dataclass(frozen=True, slots=True)
class Dataset:
    account: str
    name: str
    owner: str
    """The principal who registered it: they decide its subscriptions."""
    created_at: datetime
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.name, "dataset")
        if len(self.description) > MAX_TEXT:
            raise ValidationError(f"a description has at most {MAX_TEXT} characters", field="description")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "data", "dataset", self.name)


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    account: str
    dataset: str
    version: int
    format: DataFormat
    sha256: str
    size: int
    columns: tuple[Column, ...]
    rows: int
    registered_by: str
    created_at: datetime

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValidationError("dataset versions start at 1", field="version")
        if not SHA256.fullmatch(self.sha256):
            raise ValidationError("invalid SHA-256 digest", field="sha256")
        if self.size < 0 or self.rows < 0:
            raise ValidationError("size and row count cannot be negative", field="size")
        check_columns(self.columns)

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "data", "dataset", self.dataset, str(self.version))


class SubscriptionStatus(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    REVOKED = "Revoked"


# Rejected and Revoked are final: a new request is a new subscription, with its own reason.
TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.PENDING: frozenset({SubscriptionStatus.APPROVED, SubscriptionStatus.REJECTED}),
    SubscriptionStatus.APPROVED: frozenset({SubscriptionStatus.REVOKED}),
    SubscriptionStatus.REJECTED: frozenset(),
    SubscriptionStatus.REVOKED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    status: SubscriptionStatus
    previous: SubscriptionStatus | None
    actor: str
    comment: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Grant:
    """What an approved subscription admits: an account, or one project of it, until it expires
    or is revoked."""

    dataset: str
    """The dataset's CRN."""
    subscription: str
    account: str
    project: str | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    @property
    def scope(self) -> str:
        """``account`` for an account-wide grant, ``account/project`` for a project's."""
        return f"{self.account}/{self.project}" if self.project else self.account

    def admits(self, account: str, project: str | None, now: datetime) -> bool:
        return (self.active(now) and self.account == account
                and (self.project is None or self.project == project))


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    account: str
    """The dataset's (data-governance) account, where the subscription is decided."""
    dataset: str
    subscriber: str
    """The account asking for the data."""
    requested_by: str
    reason: str
    created_at: datetime
    project: str | None = None
    status: SubscriptionStatus = SubscriptionStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str = ""
    expires_at: datetime | None = None
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    history: tuple[SubscriptionChange, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.dataset, "dataset")
        check_name(self.subscriber, "subscriber account")
        if self.project is not None:
            check_name(self.project, "project")
        if not self.reason.strip():
            raise ValidationError("a subscription needs a reason: say what the data is for", field="reason")
        if len(self.reason) > MAX_REASON:
            raise ValidationError(f"a reason has at most {MAX_REASON} characters", field="reason")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "data", "subscription", self.id)

    @property
    def dataset_crn(self) -> CRN:
        return CRN(self.account, "data", "dataset", self.dataset)

    def transition(self, status: SubscriptionStatus, actor: str, comment: str, time: datetime, *,
                   expires_at: datetime | None = None) -> Subscription:
        """Pending -> Approved or Rejected; Approved -> Revoked. Anything else is refused."""
        if status not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"subscription {self.id} is {self.status}: it cannot become {status}",
                                    subscription=self.id, status=str(self.status), requested=str(status))
        if expires_at is not None and status is not SubscriptionStatus.APPROVED:
            raise ValidationError("only an approval sets an expiry", field="expires_at")
        if expires_at is not None and expires_at <= time:
            raise ValidationError("an expiry must lie in the future", field="expires_at")
        change = SubscriptionChange(status, self.status, actor, comment[:MAX_TEXT], time)
        if status is SubscriptionStatus.REVOKED:
            return replace(self, status=status, revoked_by=actor, revoked_at=time,
                           history=(*self.history, change))
        return replace(self, status=status, decided_by=actor, decided_at=time, comment=comment[:MAX_TEXT],
                       expires_at=expires_at, history=(*self.history, change))

    @property
    def grant(self) -> Grant | None:
        """The grant an approval gave; it stays (inactive) once revoked, for the record."""
        if self.status not in (SubscriptionStatus.APPROVED, SubscriptionStatus.REVOKED):
            return None
        return Grant(str(self.dataset_crn), self.id, self.subscriber, self.project, self.expires_at,
                     self.revoked_at)


@dataclass(frozen=True, slots=True)
class DatasetRead:
    """Lineage: one allowed read of one version, by whom, for which account (and project, run)."""

    id: str
    account: str
    dataset: str
    version: int
    reader: str
    for_account: str
    time: datetime
    project: str | None = None
    run: str | None = None
    subscription: str | None = None
    """The subscription whose grant admitted the read; None for the owning account's own reads."""

    @property
    def version_crn(self) -> CRN:
        return CRN(self.account, "data", "dataset", self.dataset, str(self.version))
