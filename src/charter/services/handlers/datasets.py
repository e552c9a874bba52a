"""Governed data: dataset registration, the published catalogue, subscriptions and their
decisions, and reads that need an active grant and leave a lineage record."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from charter.domain import commands as c
from charter.domain.artifacts import BlobInfo, check_digest
from charter.domain.authz import Action, Resource
from charter.domain.crn import CRN
from charter.domain.datasets import (
    MAX_TEXT,
    DataFormat,
    Dataset,
    DatasetRead,
    DatasetVersion,
    Subscription,
    SubscriptionStatus,
    data_format,
)
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account, AccountKind
from charter.errors import Conflict, NotFound, TooLarge, ValidationError
from charter.services.handlers.registry import artifact_store
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate
from charter.services.profiling import Profile, profile

SPOOL_BYTES = 64 * 1024 * 1024  # files up to this size are profiled in memory
MAX_TAGS = 200
MAX_EXPIRY_SECONDS = 5 * 366 * 86400
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadedDataset:
    blob: BlobInfo
    profile: Profile


@dataclass(frozen=True, slots=True)
class DatasetDownload:
    version: DatasetVersion
    read: DatasetRead
    chunks: Iterator[bytes]


class _Profiles:
    """Profiles already made, by (digest, format). A blob never changes under its digest, so a
    profile made at upload — outside any write transaction — holds at registration."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: dict[tuple[str, DataFormat], Profile] = {}

    def get(self, sha256: str, fmt: DataFormat) -> Profile | None:
        return self._items.get((sha256, fmt))

    def put(self, sha256: str, fmt: DataFormat, made: Profile) -> None:
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[(sha256, fmt)] = made


PROFILES = _Profiles()


def _new_id(now: datetime) -> str:
    """32 hex digits that sort by creation time (microseconds, then randomness)."""
    return f"{int(now.timestamp() * 1_000_000):016x}{secrets.token_hex(8)}"


# --- resources ----------------------------------------------------------------------------

def _kind(account: Account) -> dict[str, Any]:
    return {"account_kind": str(account.kind), "stage": str(account.stage or "")}


def dataset_resource(account: Account, dataset: Dataset) -> Resource:
    return Resource(dataset.crn, "Dataset", {**_kind(account), "owner": dataset.owner})


def _catalogue(account: Account) -> Resource:
    return Resource(CRN(account.name, "data", "dataset", "*"), "DataCatalogue", _kind(account))


def _version_resource(account: Account, dataset: Dataset, version: DatasetVersion,
                      **extra: Any) -> Resource:
    return Resource(version.crn, "DatasetVersion", {**_kind(account), "owner": dataset.owner, **extra})


def subscription_resource(account: Account, dataset: Dataset, sub: Subscription) -> Resource:
    """The subscription as its dataset's owner decides it, in the dataset's account."""
    return Resource(sub.crn, "Subscription", {
        **_kind(account), "owner": dataset.owner, "requested_by": sub.requested_by,
        "subscriber": sub.subscriber, "dataset": dataset.name, "status": str(sub.status)})


def _request_resource(subscriber: Account, dataset: Dataset, sub: Subscription) -> Resource:
    """The same subscription as the subscribing account asks for it: decided in that account, by
    the roles the requester holds there."""
    return Resource(CRN(subscriber.name, "data", "subscription", sub.id), "Subscription", {
        **_kind(subscriber), "owner": dataset.owner, "requested_by": sub.requested_by,
        "subscriber": sub.subscriber, "dataset": str(dataset.crn), "status": str(sub.status)})


def _subscriptions_of(account: Account) -> Resource:
    return Resource(CRN(account.name, "data", "subscription", "*"), "Subscriptions", _kind(account))


# --- registration -------------------------------------------------------------------------

def _home(ctx: HandlerContext, name: str) -> Account:
    account = ctx.account(name)
    return account


def _require_governance(account: Account) -> None:
    if account.kind is not AccountKind.DATA_GOVERNANCE:
        raise ValidationError(f"datasets live in data-governance accounts; {account.name} is a "
                              f"{account.kind} account", field="account", account=account.name)


def _dataset_name(ctx: HandlerContext, account: Account, name: str) -> str:
    """A valid name to register under; an invalid one is refused after the policy has decided
    whether the caller may register here at all (so a bad request still reaches a decision)."""
    try:
        return check_name(name, "dataset")
    except ValidationError:
        ctx.authorize(Action.REGISTER_DATASET, Resource(CRN(account.name, "data", "dataset", "*"), "Dataset",
                                                        {**_kind(account), "owner": ctx.identity.principal}))
        raise


def _prospective(ctx: HandlerContext, account: Account, name: str) -> Dataset:
    """The dataset a registration adds to: the existing one, or a new one the caller would own."""
    existing = ctx.uow.datasets.get_dataset(account.name, _dataset_name(ctx, account, name))
    return existing or Dataset(account.name, name, ctx.identity.principal, ctx.clock.now())


def _spool(chunks: Iterable[bytes], max_bytes: int, spool: IO[bytes]) -> int:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"the dataset file is larger than {max_bytes} bytes", limit=max_bytes)
        spool.write(chunk)
    return size


def _read_back(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(CHUNK):
        yield chunk


def upload_dataset(cmd: c.UploadDataset, ctx: HandlerContext) -> UploadedDataset:
    account = _home(ctx, cmd.account)
    dataset = _prospective(ctx, account, cmd.name)
    ctx.authorize(Action.REGISTER_DATASET, dataset_resource(account, dataset))
    _require_governance(account)
    fmt = data_format(cmd.format)
    store = artifact_store(ctx)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        _spool(cmd.chunks, cmd.max_bytes, spool)
        spool.seek(0)
        made = profile(fmt, spool)
        # Only a file that profiles reaches the store: a refused one leaves nothing behind.
        info = store.put(account.name, _read_back(spool), max_bytes=cmd.max_bytes)
    PROFILES.put(info.sha256, fmt, made)
    ctx.audit(Action.REGISTER_DATASET, Resource(CRN(account.name, "data", "dataset-file", info.sha256),
                                                "DatasetFile"),
              dataset=dataset.name, sha256=info.sha256, size=info.size, format=str(fmt), rows=made.rows,
              columns=len(made.columns))
    return UploadedDataset(info, made)


def _profile_of(ctx: HandlerContext, account: str, sha256: str, fmt: DataFormat) -> Profile:
    known = PROFILES.get(sha256, fmt)
    if known is not None:
        return known
    # Another server replica took the upload: profile the stored file again (read-only work).
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for chunk in artifact_store(ctx).open(account, sha256):
            spool.write(chunk)
        spool.seek(0)
        made = profile(fmt, spool)
    PROFILES.put(sha256, fmt, made)
    return made


def register_version(cmd: c.RegisterDatasetVersion, ctx: HandlerContext) -> DatasetVersion:
    account = _home(ctx, cmd.account)
    existing = ctx.uow.datasets.get_dataset(account.name, _dataset_name(ctx, account, cmd.name))
    dataset = existing or Dataset(account.name, cmd.name, ctx.identity.principal, ctx.clock.now(),
                                  cmd.description[:MAX_TEXT], _tags(cmd.tags))
    ctx.authorize(Action.REGISTER_DATASET, dataset_resource(account, dataset))
    _require_governance(account)
    fmt = data_format(cmd.format)
    info = artifact_store(ctx).stat(account.name, check_digest(cmd.sha256))
    if info is None:
        raise ValidationError(f"no uploaded file {cmd.sha256} in {account.name}: upload it first",
                              field="sha256", sha256=cmd.sha256)
    made = _profile_of(ctx, account.name, info.sha256, fmt)
    if existing is None:
        ctx.uow.datasets.add_dataset(dataset)
    number = ctx.uow.datasets.allocate_version(account.name, dataset.name)
    version = DatasetVersion(account.name, dataset.name, number, fmt, info.sha256, info.size,
                             made.columns, made.rows, ctx.identity.principal, ctx.clock.now())
    ctx.uow.datasets.add_version(version)
    resource = _version_resource(account, dataset, version)
    ctx.audit(Action.REGISTER_DATASET, resource, version=number, sha256=info.sha256, size=info.size,
              format=str(fmt), rows=made.rows, created=existing is None)
    ctx.emit(Event(event_type("data", "dataset", "version-registered"), account.name, str(version.crn), {
        "dataset": dataset.name, "version": number, "format": str(fmt), "sha256": info.sha256,
        "size": info.size, "rows": made.rows,
        "columns": [{"name": col.name, "dtype": col.dtype} for col in made.columns],
        "registered_by": ctx.identity.principal, "owner": dataset.owner}))
    return version


def _tags(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if len(items) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags", field="tags")
    for key, value in items:
        if not key or len(key) > 128 or len(value) > 1024:
            raise ValidationError("tags: keys are 1-128 characters, values at most 1024", field="tags")
    return tuple(sorted(dict(items).items()))


# --- the catalogue ------------------------------------------------------------------------

def _require_dataset(ctx: HandlerContext, account: Account, name: str) -> Dataset:
    dataset = ctx.uow.datasets.get_dataset(account.name, name)
    if dataset is None:
        ctx.authorize(Action.LIST_DATASETS, _catalogue(account))
        raise NotFound(f"no dataset {name!r} in {account.name}", dataset=name, account=account.name)
    return dataset


def _require_version(ctx: HandlerContext, account: Account, dataset: Dataset,
                     number: int | None) -> DatasetVersion:
    found = (ctx.uow.datasets.latest_version(account.name, dataset.name) if number is None
             else ctx.uow.datasets.get_version(account.name, dataset.name, number))
    if found is None:
        ctx.authorize(Action.LIST_DATASET_VERSIONS, dataset_resource(account, dataset))
        what = "no version" if number is None else f"no version {number}"
        raise NotFound(f"{what} of {dataset.crn}", dataset=dataset.name, version=number)
    return found


def list_datasets(cmd: c.ListDatasets, ctx: HandlerContext) -> Page[Dataset]:
    account = _home(ctx, cmd.account)
    ctx.authorize(Action.LIST_DATASETS, _catalogue(account))
    items = ctx.uow.datasets.list_datasets(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda d: d.name)


def get_dataset(cmd: c.GetDataset, ctx: HandlerContext) -> tuple[Dataset, DatasetVersion | None]:
    account = _home(ctx, cmd.account)
    dataset = _require_dataset(ctx, account, cmd.name)
    ctx.authorize(Action.READ_DATASET, dataset_resource(account, dataset))
    return dataset, ctx.uow.datasets.latest_version(account.name, dataset.name)


def list_versions(cmd: c.ListDatasetVersions, ctx: HandlerContext) -> Page[DatasetVersion]:
    account = _home(ctx, cmd.account)
    dataset = _require_dataset(ctx, account, cmd.name)
    ctx.authorize(Action.LIST_DATASET_VERSIONS, dataset_resource(account, dataset))
    after = _int_cursor(cmd.page.after)
    items = ctx.uow.datasets.list_versions(account.name, dataset.name, after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda v: str(v.version))


def get_version(cmd: c.GetDatasetVersion, ctx: HandlerContext) -> DatasetVersion:
    account = _home(ctx, cmd.account)
    dataset = _require_dataset(ctx, account, cmd.name)
    version = _require_version(ctx, account, dataset, cmd.version)
    ctx.authorize(Action.READ_DATASET_VERSION, _version_resource(account, dataset, version))
    return version


def _int_cursor(after: str | None) -> int | None:
    try:
        return int(after) if after else None
    except ValueError:
        raise ValidationError("invalid cursor", field="cursor") from None


# --- subscriptions ------------------------------------------------------------------------

def _subscription_changed(ctx: HandlerContext, sub: Subscription, previous: SubscriptionStatus | None,
                          comment: str) -> None:
    ctx.emit(Event(event_type("data", "subscription", "state-changed"), sub.account, str(sub.crn), {
        "dataset": str(sub.dataset_crn), "subscription": sub.id, "status": str(sub.status),
        "previous_status": str(previous) if previous else None, "actor": ctx.identity.principal,
        "account": sub.subscriber, "project": sub.project, "comment": comment,
        "expires_at": sub.expires_at.isoformat() if sub.expires_at else None}))


def subscribe(cmd: c.Subscribe, ctx: HandlerContext) -> Subscription:
    account = _home(ctx, cmd.account)
    dataset = _require_dataset(ctx, account, cmd.dataset)
    ctx.authorize(Action.READ_DATASET, dataset_resource(account, dataset))
    subscriber = ctx.account(check_name(cmd.subscriber, "subscriber account"))
    now = ctx.clock.now()
    sub = Subscription(_new_id(now), account.name, dataset.name, subscriber.name, ctx.identity.principal,
                       cmd.reason.strip(), now, cmd.project)
    ctx.authorize(Action.SUBSCRIBE, _request_resource(subscriber, dataset, sub))
    if subscriber.name == account.name:
        raise ValidationError(f"{account.name} owns {dataset.name}: its members read it without a "
                              "subscription", field="subscriber")
    for other in ctx.uow.datasets.subscriptions_to(account.name, dataset.name, subscriber.name):
        if other.project == sub.project and (
                other.status is SubscriptionStatus.PENDING
                or (other.status is SubscriptionStatus.APPROVED and other.grant and other.grant.active(now))):
            raise Conflict(f"{subscriber.name} already has a {other.status} subscription to {dataset.name} "
                           f"({other.id})", subscription=other.id, status=str(other.status))
    ctx.uow.datasets.add_subscription(sub)
    ctx.audit(Action.SUBSCRIBE, subscription_resource(account, dataset, sub), subscriber=subscriber.name,
              project=sub.project, reason=sub.reason, dataset=str(dataset.crn))
    _subscription_changed(ctx, sub, None, "")
    return sub


def list_subscriptions(cmd: c.ListSubscriptions, ctx: HandlerContext) -> Page[Subscription]:
    account = _home(ctx, cmd.account)
    ctx.authorize(Action.LIST_SUBSCRIPTIONS, _subscriptions_of(account))
    status = _status(cmd.status) if cmd.status else None
    # A dataset-owning account sees every request to its datasets; any other account its own.
    owner_view = account.kind is AccountKind.DATA_GOVERNANCE
    items = ctx.uow.datasets.list_subscriptions(
        account=account.name if owner_view else None, subscriber=None if owner_view else account.name,
        dataset=cmd.dataset, status=status, after=cmd.page.after, limit=cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda s: s.id)


def _require_subscription(ctx: HandlerContext, account: Account, subscription_id: str) -> Subscription:
    sub = ctx.uow.datasets.get_subscription(subscription_id)
    if sub is None or account.name not in (sub.account, sub.subscriber):
        ctx.authorize(Action.LIST_SUBSCRIPTIONS, _subscriptions_of(account))
        raise NotFound(f"no subscription {subscription_id!r} in {account.name}",
                       subscription=subscription_id)
    return sub


def get_subscription(cmd: c.GetSubscription, ctx: HandlerContext) -> Subscription:
    account = _home(ctx, cmd.account)
    sub = _require_subscription(ctx, account, cmd.subscription_id)
    ctx.authorize(Action.READ_SUBSCRIPTION, _subscriptions_of(account))
    return sub


_DECISIONS = {
    SubscriptionStatus.APPROVED: Action.APPROVE_SUBSCRIPTION,
    SubscriptionStatus.REJECTED: Action.REJECT_SUBSCRIPTION,
    SubscriptionStatus.REVOKED: Action.REVOKE_SUBSCRIPTION,
}


def decide_subscription(cmd: c.DecideSubscription, ctx: HandlerContext) -> Subscription:
    status = _status(cmd.status)
    if status not in _DECISIONS:
        raise ValidationError("a decision is Approved, Rejected or Revoked", field="status")
    account = _home(ctx, cmd.account)
    sub = _require_subscription(ctx, account, cmd.subscription_id)
    if sub.account != account.name:  # the subscriber's account sees it, but decides nothing
        raise NotFound(f"subscription {sub.id} is decided in {sub.account}, not {account.name}",
                       subscription=sub.id, account=sub.account)
    dataset = _require_dataset(ctx, account, sub.dataset)
    action = _DECISIONS[status]
    ctx.authorize(action, subscription_resource(account, dataset, sub))
    if status is SubscriptionStatus.REJECTED and not cmd.comment.strip():
        raise ValidationError("a rejection needs a comment: say why", field="comment")
    now = ctx.clock.now()
    expires_at = None
    if cmd.expires_in_seconds is not None:
        if not 0 < cmd.expires_in_seconds <= MAX_EXPIRY_SECONDS:
            raise ValidationError(f"an expiry lies 1 second to {MAX_EXPIRY_SECONDS // 86400} days ahead",
                                  field="expires_in_seconds")
        expires_at = now + timedelta(seconds=cmd.expires_in_seconds)
    decided = sub.transition(status, ctx.identity.principal, cmd.comment, now, expires_at=expires_at)
    ctx.uow.datasets.save_subscription(decided)
    ctx.audit(action, subscription_resource(account, dataset, decided), status=str(status),
              previous=str(sub.status), comment=cmd.comment[:MAX_TEXT], subscriber=sub.subscriber,
              expires_at=expires_at.isoformat() if expires_at else None)
    _subscription_changed(ctx, decided, sub.status, cmd.comment[:MAX_TEXT])
    return decided


def _status(value: str) -> SubscriptionStatus:
    try:
        return SubscriptionStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in SubscriptionStatus)
        raise ValidationError(f"unknown subscription status {value!r}: use one of {allowed}",
                              field="status") from None


# --- reads --------------------------------------------------------------------------------

def read_dataset(cmd: c.ReadDataset, ctx: HandlerContext) -> DatasetDownload:
    account = _home(ctx, cmd.account)
    dataset = _require_dataset(ctx, account, cmd.dataset)
    version = _require_version(ctx, account, dataset, cmd.version)
    reader = ctx.account(check_name(cmd.for_account, "account"))
    project = check_name(cmd.project, "project") if cmd.project else None
    if cmd.run is not None and not 0 < len(cmd.run) <= 200:
        raise ValidationError("a run id has 1 to 200 characters", field="run")
    now = ctx.clock.now()
    grants = [s.grant for s in ctx.uow.datasets.subscriptions_to(account.name, dataset.name, reader.name)
              if s.grant is not None and s.grant.active(now)]
    resource = _version_resource(account, dataset, version, for_account=reader.name,
                                 for_project=f"{reader.name}/{project}" if project else "",
                                 grantees=sorted({g.scope for g in grants}))
    # Cedar decides: a role in the reading account, and (outside the owning account) an active
    # grant for it — "no-grant-no-read" names a denial, which the bus audits.
    ctx.authorize(Action.READ_DATASET_DATA, resource)
    admitting = next((g for g in grants if g.admits(reader.name, project, now)), None)
    read = DatasetRead(_new_id(now), account.name, dataset.name, version.version, ctx.identity.principal,
                       reader.name, now, project, cmd.run, admitting.subscription if admitting else None)
    ctx.uow.datasets.add_read(read)
    ctx.audit(Action.READ_DATASET_DATA, resource, version=version.version, for_account=reader.name,
              project=project, run=cmd.run, sha256=version.sha256, subscription=read.subscription)
    chunks = artifact_store(ctx).open(account.name, version.sha256)
    return DatasetDownload(version, read, chunks)


def list_reads(cmd: c.ListDatasetReads, ctx: HandlerContext) -> Page[DatasetRead]:
    account = _home(ctx, cmd.account)
    dataset = _require_dataset(ctx, account, cmd.dataset)
    ctx.authorize(Action.LIST_DATASET_READS, dataset_resource(account, dataset))
    items = ctx.uow.datasets.list_reads(account.name, dataset.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda r: r.id)


HANDLERS: dict[type, Any] = {
    c.UploadDataset: upload_dataset,
    c.RegisterDatasetVersion: register_version,
    c.ListDatasets: list_datasets,
    c.GetDataset: get_dataset,
    c.ListDatasetVersions: list_versions,
    c.GetDatasetVersion: get_version,
    c.Subscribe: subscribe,
    c.ListSubscriptions: list_subscriptions,
    c.GetSubscription: get_subscription,
    c.DecideSubscription: decide_subscription,
    c.ReadDataset: read_dataset,
    c.ListDatasetReads: list_reads,
}
