"""The registry's tables as a repository: groups, packages, gap-free version numbers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

from charter.adapters.db import tables as t
from charter.domain.registry import (
    ApprovalStatus,
    Artifact,
    ColumnSpec,
    Lineage,
    ModelFormat,
    ModelPackage,
    ModelPackageGroup,
    Signature,
    StatusChange,
)

if TYPE_CHECKING:
    from charter.adapters.db.store import SqlOrgRepository

g, p = t.model_package_groups.c, t.model_packages.c
# A package's columns in the order ``_package`` unpacks them: a row read by position costs a
# fraction of one read by column name (16 names a row, 51 rows a page).
_PACKAGE_COLUMNS = (p.account, p.group, p.version, p.status, p.format, p.artifacts, p.lineage, p.signature,
                    p.metrics, p.sample_payload, p.description, p.tags, p.origin, p.history, p.created_at)
assert len(_PACKAGE_COLUMNS) == len(t.model_packages.c), "a model_packages column _package does not read"
_PACKAGES = select(*_PACKAGE_COLUMNS)

_ALLOCATE = (
    update(t.model_package_groups)
    .where(and_(g.account == bindparam("a"), g.name == bindparam("n")))
    .values(next_version=g.next_version + 1)
    .returning(g.next_version)
)
_GROUP = select(t.model_package_groups).where(and_(g.account == bindparam("a"), g.name == bindparam("n")))
_SAVE_DECISION = update(t.model_packages).where(and_(
    p.account == bindparam("a"), p.group == bindparam("g"), p.version == bindparam("v"),
)).values(status=bindparam("s"), history=bindparam("h"))
_PACKAGE = _PACKAGES.where(
    and_(p.account == bindparam("a"), p.group == bindparam("g"), p.version == bindparam("v")))
_BY_ORIGIN = _PACKAGES.where(and_(p.account == bindparam("a"), p.origin == bindparam("o")))
# A page of a group's packages after a version (0: from the first), optionally of one status.
_LIST = (_PACKAGES.where(and_(p.account == bindparam("a"), p.group == bindparam("g"), p.version > bindparam("after")))
         .order_by(p.version).limit(bindparam("limit")))
_LIST_IN_STATUS = _LIST.where(p.status == bindparam("s"))
_LATEST = (
    _PACKAGES
    .where(and_(p.account == bindparam("a"), p.group == bindparam("g"), p.status == bindparam("s")))
    .order_by(p.version.desc())
    .limit(1)
)


def _group(row: Row[Any]) -> ModelPackageGroup:
    return ModelPackageGroup(row.account, row.name, row.description,
                             tuple((k, v) for k, v in row.tags), tuple(row.readers))


def _columns(specs: list[dict[str, str]]) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(c["name"], c["dtype"]) for c in specs)


def _package(row: Sequence[Any]) -> ModelPackage:
    (account, group, version, status, model_format, artifacts, lineage, signature, metrics, sample_payload,
     description, tags, origin, history, created_at) = row
    return ModelPackage(
        account=account, group=group, version=version,
        format=ModelFormat(model_format),
        artifacts=tuple(Artifact(a["path"], a["size"], a["sha256"]) for a in artifacts),
        lineage=Lineage(lineage["registered_by"], lineage.get("run"), lineage.get("run_started_by"),
                        tuple(lineage.get("datasets", ())), lineage.get("product_version"),
                        tuple((k, v) for k, v in lineage.get("parameters", ()))),
        created_at=created_at,
        status=ApprovalStatus(status),
        signature=(Signature(_columns(signature["inputs"]), _columns(signature["outputs"]))
                   if signature else None),
        metrics=tuple((k, float(v)) for k, v in metrics),
        sample_payload=sample_payload,
        description=description,
        tags=tuple((k, v) for k, v in tags),
        origin=origin,
        history=tuple(_change(h) for h in history),
    )


def _change(h: dict[str, Any]) -> StatusChange:
    return StatusChange(ApprovalStatus(h["status"]),
                        ApprovalStatus(h["previous"]) if h["previous"] else None,
                        h["actor"], h["comment"], datetime.fromisoformat(h["time"]), tuple(h["digests"]))


def _history(package: ModelPackage) -> list[dict[str, Any]]:
    return [{"status": str(h.status), "previous": str(h.previous) if h.previous else None,
             "actor": h.actor, "comment": h.comment, "time": h.time.isoformat(),
             "digests": list(h.digests)} for h in package.history]


def _row(package: ModelPackage) -> dict[str, Any]:
    lineage = package.lineage
    signature = package.signature
    return {
        "account": package.account, "group": package.group, "version": package.version,
        "status": str(package.status), "format": str(package.format),
        "artifacts": [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in package.artifacts],
        "lineage": {"registered_by": lineage.registered_by, "run": lineage.run,
                    "run_started_by": lineage.run_started_by, "datasets": list(lineage.datasets),
                    "product_version": lineage.product_version,
                    "parameters": [list(kv) for kv in lineage.parameters]},
        "signature": None if signature is None else {
            "inputs": [{"name": c.name, "dtype": c.dtype} for c in signature.inputs],
            "outputs": [{"name": c.name, "dtype": c.dtype} for c in signature.outputs]},
        "metrics": [list(kv) for kv in package.metrics],
        "sample_payload": package.sample_payload,
        "description": package.description,
        "tags": [list(kv) for kv in package.tags],
        "origin": package.origin,
        "history": _history(package),
        "created_at": package.created_at,
    }


class SqlRegistryRepository:
    """Groups are read on every registry request, so they are served from the org cache
    (``adapters/db/orgcache.py``): creating a group or changing its readers bumps the org's state
    revision in the same transaction. (A group's version counter is no part of what is cached.)"""

    def __init__(self, conn: Connection, org: SqlOrgRepository) -> None:
        self.conn = conn
        self.org = org

    def get_group(self, account: str, name: str) -> ModelPackageGroup | None:
        return self.org.cached(("group", f"{account}/{name}"), lambda: self._load_group(account, name))

    def _load_group(self, account: str, name: str) -> ModelPackageGroup | None:
        row = self.conn.execute(_GROUP, {"a": account, "n": name}).first()
        return _group(row) if row else None

    def add_group(self, group: ModelPackageGroup, created_at: datetime, created_by: str) -> None:
        self.org.touch()
        self.conn.execute(insert(t.model_package_groups).values(
            account=group.account, name=group.name, description=group.description,
            tags=[list(kv) for kv in group.tags], readers=list(group.readers),
            created_at=created_at, created_by=created_by, next_version=1))

    def set_readers(self, account: str, name: str, readers: tuple[str, ...]) -> None:
        self.org.touch()
        self.conn.execute(update(t.model_package_groups).where(and_(
            t.model_package_groups.c.account == account, t.model_package_groups.c.name == name)).values(
            readers=list(readers)))

    def list_groups(self, account: str, after: str | None, limit: int) -> list[ModelPackageGroup]:
        q = select(t.model_package_groups).where(g.account == account).order_by(g.name).limit(limit)
        if after is not None:
            q = q.where(g.name > after)
        return [_group(r) for r in self.conn.execute(q)]

    def allocate_version(self, account: str, group: str) -> int:
        allocated = self.conn.execute(_ALLOCATE, {"a": account, "n": group}).scalar_one()
        return int(allocated) - 1

    def add_package(self, package: ModelPackage) -> None:
        self.conn.execute(insert(t.model_packages), _row(package))

    def get_package(self, account: str, group: str, version: int) -> ModelPackage | None:
        row = self.conn.execute(_PACKAGE, {"a": account, "g": group, "v": version}).first()
        return _package(row) if row else None

    def list_packages(self, account: str, group: str, after: int | None, limit: int,
                      status: ApprovalStatus | None = None) -> list[ModelPackage]:
        params = {"a": account, "g": group, "after": after or 0, "limit": limit}
        if status is None:
            rows = self.conn.execute(_LIST, params).all()
        else:
            rows = self.conn.execute(_LIST_IN_STATUS, {**params, "s": str(status)}).all()
        return [_package(r) for r in rows]

    def latest_package(self, account: str, group: str, status: ApprovalStatus) -> ModelPackage | None:
        row = self.conn.execute(_LATEST, {"a": account, "g": group, "s": str(status)}).first()
        return _package(row) if row else None

    def find_promoted(self, account: str, origin: str) -> ModelPackage | None:
        row = self.conn.execute(_BY_ORIGIN, {"a": account, "o": origin}).first()
        return _package(row) if row else None

    def save_decision(self, package: ModelPackage) -> None:
        self.conn.execute(_SAVE_DECISION, {"a": package.account, "g": package.group, "v": package.version,
                                           "s": str(package.status), "h": _history(package)})
