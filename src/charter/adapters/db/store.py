"""Repositories and the unit of work on SQLAlchemy Core. They return domain objects, never rows."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    select,
    type_coerce,
    update,
)

from charter.adapters.db import tables as t
from charter.adapters.db.account_requests import SqlAccountRequestRepository
from charter.adapters.db.cards import SqlCardRepository
from charter.adapters.db.catalog import SqlCatalogRepository
from charter.adapters.db.datasets import SqlDatasetRepository
from charter.adapters.db.deliveries import SqlDeliveryRepository
from charter.adapters.db.deployments import SqlDeploymentRepository
from charter.adapters.db.endpoints import SqlEndpointRepository
from charter.adapters.db.engine import locking, read_only
from charter.adapters.db.orgcache import OrgCache
from charter.adapters.db.pipelines import SqlPipelineRepository
from charter.adapters.db.projects import SqlProjectRepository
from charter.adapters.db.registry import SqlRegistryRepository
from charter.domain.audit import AuditHead, AuditRecord, Checkpoint, Outcome, UnreadableRecord
from charter.domain.blueprints import Blueprint
from charter.domain.commands import AuditFilter
from charter.domain.events import Event
from charter.domain.identity import ApiToken, Session
from charter.domain.org import (
    Account,
    AccountKind,
    BusPolicy,
    EventRule,
    EventTarget,
    Organization,
    OrgPolicy,
    OrgState,
    OrgUnit,
    Principal,
    PrincipalKind,
    RoleBinding,
    RoleDefinition,
    Stage,
    TargetKind,
)
from charter.domain.plan import builtin_roles

T = TypeVar("T")

AUDIT_PAGE = 2000  # audit records read at a time by a walk of the whole trail

# The statements on every request's path are built once: constructing a SQLAlchemy statement costs
# more than SQLite takes to run it.
_ORG = select(t.organization).where(t.organization.c.id == 1)
_PRINCIPAL = select(t.principals).where(t.principals.c.name == bindparam("name"))
_ACCOUNT = select(t.accounts).where(t.accounts.c.name == bindparam("name"))
_ROLES_OF = select(t.role_bindings.c.account, t.role_bindings.c.role).where(
    t.role_bindings.c.principal == bindparam("principal"))
_TOKEN = select(t.api_tokens).where(t.api_tokens.c.id == bindparam("id"))
_SESSION = select(t.sessions).where(t.sessions.c.id == bindparam("id"))
_INSERT_RECORD = insert(t.audit_records)
# Conditional on the head the record was sealed after: no row updated means the chain had moved.
_ADVANCE_HEAD = update(t.audit_head).where(and_(
    t.audit_head.c.id == 1, t.audit_head.c.seq == bindparam("old_seq"),
    t.audit_head.c.hash == bindparam("old_hash"), t.audit_head.c.checkpoint_seq == bindparam("old_checkpoint"),
)).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
_INSERT_EVENT = insert(t.outbox)
_INSERT_TOKEN = insert(t.api_tokens)
_BUMP_STATE = update(t.organization).where(t.organization.c.id == 1).values(
    state_revision=t.organization.c.state_revision + 1)


class _Repo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn


def _account(row: Row[Any]) -> Account:
    return Account(row.name, AccountKind(row.kind), Stage(row.stage) if row.stage else None, row.ou,
                   row.description)


def _rule(row: Row[Any]) -> EventRule:
    return EventRule(row.account, row.name, row.pattern,
                     tuple(_target(x) for x in row.targets),
                     row.description, bool(row.enabled), row.managed_by)


def _target(stored: list[str]) -> EventTarget:
    # Targets are stored as [kind, value], with a runAs principal [kind, value, run_as], and with
    # retry limits of their own [kind, value, run_as or "", max_attempts or 0, max_age_seconds or 0].
    limits = stored[3:5] if len(stored) > 4 else [0, 0]
    return EventTarget(TargetKind(stored[0]), stored[1], (stored[2] or None) if len(stored) > 2 else None,
                       int(limits[0]) or None, int(limits[1]) or None)


def _stored_target(target: EventTarget) -> list[str | int]:
    head: list[str | int] = [str(target.kind), target.value]
    if target.max_attempts is not None or target.max_age_seconds is not None:
        return [*head, target.run_as or "", target.max_attempts or 0, target.max_age_seconds or 0]
    return head if target.run_as is None else [*head, target.run_as]


def _principal(row: Row[Any]) -> Principal:
    return Principal(row.name, PrincipalKind(row.kind), row.display_name, row.email)


def _upsert(conn: Connection, table: Table, key: str, values: dict[str, Any]) -> None:
    exists = conn.execute(select(table.c[key]).where(table.c[key] == values[key])).first()
    if exists:
        conn.execute(update(table).where(table.c[key] == values[key]).values(**values))
    else:
        conn.execute(insert(table).values(**values))


class SqlOrgRepository(_Repo):
    """With an ``OrgCache``, the principal, binding and account lookups of a request are served
    from the process's cache when the org row this transaction reads shows the state revision they
    were read under; every write here bumps that revision (see adapters/db/orgcache.py)."""

    def __init__(self, conn: Connection, cache: OrgCache | None = None) -> None:
        super().__init__(conn)
        self.cache = cache
        self._org: Organization | None = None
        self._revision: int | None = None
        self._changed = False

    def _read_org(self) -> Organization | None:
        row = self.conn.execute(_ORG).first()
        if row is None:
            return None
        self._org, self._revision = Organization(row.name, row.created_at, row.policy_revision), row.state_revision
        return self._org

    def cached(self, key: tuple[str, str], load: Callable[[], T]) -> T:
        if self.cache is None or self._changed:
            return load()
        if self._revision is None and self._read_org() is None:
            return load()
        assert self._revision is not None
        return self.cache.get(self._revision, key, load)

    def touch(self) -> None:
        """Every write to the org's state bumps its revision, once per transaction (the token
        repository's writes too: tokens are served from the same cache)."""
        if not self._changed:
            self._changed = True
            self.conn.execute(_BUMP_STATE)

    def get_org(self) -> Organization | None:
        if self._org is not None and not self._changed:
            return self._org
        return self._read_org()

    def add_org(self, org: Organization) -> None:
        self.touch()
        self.conn.execute(insert(t.organization).values(
            id=1, name=org.name, created_at=org.created_at, policy_revision=org.policy_revision))

    def set_policy_revision(self, revision: int) -> None:
        self.touch()
        self.conn.execute(update(t.organization).where(t.organization.c.id == 1).values(policy_revision=revision))

    def load_state(self) -> OrgState:
        c = self.conn
        return OrgState(
            units={r.name: OrgUnit(r.name, r.parent, r.description) for r in c.execute(select(t.org_units))},
            accounts={r.name: _account(r) for r in c.execute(select(t.accounts))},
            principals={r.name: _principal(r) for r in c.execute(select(t.principals))},
            roles={**builtin_roles(),
                   **{r.name: RoleDefinition(r.name, r.description) for r in c.execute(select(t.roles))}},
            bindings={RoleBinding(r.principal, r.account, r.role, r.managed_by)
                      for r in c.execute(select(t.role_bindings))},
            policies={r.id: OrgPolicy(r.id, r.text, r.description) for r in c.execute(select(t.policies))},
            bus_policies={r.account: BusPolicy(r.account, tuple(r.allow), r.managed_by)
                          for r in c.execute(select(t.event_bus_policies))},
            rules={rule.key: rule for rule in map(_rule, c.execute(select(t.event_rules)))},
            blueprints={r.name: Blueprint.from_document(r.name, r.kind, r.stage, r.description, r.baseline)
                        for r in c.execute(select(t.blueprints))},
        )

    def get_account(self, name: str) -> Account | None:
        return self.cached(("account", name), lambda: self._load_account(name))

    def _load_account(self, name: str) -> Account | None:
        row = self.conn.execute(_ACCOUNT, {"name": name}).first()
        return _account(row) if row else None

    def list_accounts(self, after: str | None, limit: int) -> list[Account]:
        q = select(t.accounts).order_by(t.accounts.c.name).limit(limit)
        if after is not None:
            q = q.where(t.accounts.c.name > after)
        return [_account(r) for r in self.conn.execute(q)]

    def get_principal(self, name: str) -> Principal | None:
        return self.cached(("principal", name), lambda: self._load_principal(name))

    def _load_principal(self, name: str) -> Principal | None:
        row = self.conn.execute(_PRINCIPAL, {"name": name}).first()
        return _principal(row) if row else None

    def list_principals(self, after: str | None, limit: int) -> list[Principal]:
        q = select(t.principals).order_by(t.principals.c.name).limit(limit)
        if after is not None:
            q = q.where(t.principals.c.name > after)
        return [_principal(r) for r in self.conn.execute(q)]

    def roles_of(self, principal: str) -> dict[str, set[str]]:
        cached = self.cached(("roles", principal), lambda: self._load_roles(principal))
        return {account: set(roles) for account, roles in cached.items()}  # callers may change theirs

    def _load_roles(self, principal: str) -> dict[str, frozenset[str]]:
        roles: dict[str, set[str]] = defaultdict(set)
        for account, role in self.conn.execute(_ROLES_OF, {"principal": principal}):
            roles[account].add(role)
        return {account: frozenset(names) for account, names in roles.items()}

    def list_bindings(self, account: str) -> list[RoleBinding]:
        rows = self.conn.execute(
            select(t.role_bindings).where(t.role_bindings.c.account == account)
            .order_by(t.role_bindings.c.principal, t.role_bindings.c.role)
        )
        return [RoleBinding(r.principal, r.account, r.role, r.managed_by) for r in rows]

    def list_policies(self) -> list[OrgPolicy]:
        rows = self.conn.execute(select(t.policies).order_by(t.policies.c.id))
        return [OrgPolicy(r.id, r.text, r.description) for r in rows]

    def put_unit(self, unit: OrgUnit) -> None:
        self.touch()
        _upsert(self.conn, t.org_units, "name",
                {"name": unit.name, "parent": unit.parent, "description": unit.description})

    def put_account(self, account: Account) -> None:
        self.touch()
        _upsert(self.conn, t.accounts, "name", {
            "name": account.name, "kind": str(account.kind),
            "stage": str(account.stage) if account.stage else None,
            "ou": account.ou, "description": account.description})

    def put_principal(self, principal: Principal) -> None:
        self.touch()
        _upsert(self.conn, t.principals, "name", {
            "name": principal.name, "kind": str(principal.kind),
            "display_name": principal.display_name, "email": principal.email})

    def put_role(self, role: RoleDefinition) -> None:
        self.touch()
        _upsert(self.conn, t.roles, "name", {"name": role.name, "description": role.description})

    def delete_role(self, name: str) -> None:
        self.touch()
        self.conn.execute(delete(t.roles).where(t.roles.c.name == name))

    def add_binding(self, binding: RoleBinding) -> None:
        self.touch()
        self.conn.execute(insert(t.role_bindings).values(
            principal=binding.principal, account=binding.account, role=binding.role,
            managed_by=binding.managed_by))

    def delete_binding(self, binding: RoleBinding) -> None:
        self.touch()
        b = t.role_bindings.c
        self.conn.execute(delete(t.role_bindings).where(
            and_(b.principal == binding.principal, b.account == binding.account, b.role == binding.role)))

    def put_policy(self, policy: OrgPolicy) -> None:
        self.touch()
        _upsert(self.conn, t.policies, "id",
                {"id": policy.id, "text": policy.text, "description": policy.description})

    def delete_policy(self, policy_id: str) -> None:
        self.touch()
        self.conn.execute(delete(t.policies).where(t.policies.c.id == policy_id))

    def put_bus_policy(self, policy: BusPolicy) -> None:
        self.touch()
        _upsert(self.conn, t.event_bus_policies, "account",
                {"account": policy.account, "allow": list(policy.allow), "managed_by": policy.managed_by})

    def delete_bus_policy(self, account: str) -> None:
        self.touch()
        self.conn.execute(delete(t.event_bus_policies).where(t.event_bus_policies.c.account == account))

    def put_rule(self, rule: EventRule) -> None:
        self.touch()
        self.delete_rule(rule.account, rule.name)
        self.conn.execute(insert(t.event_rules).values(
            account=rule.account, name=rule.name, pattern=rule.pattern,
            targets=[_stored_target(x) for x in rule.targets], description=rule.description,
            enabled=rule.enabled, managed_by=rule.managed_by))

    def delete_rule(self, account: str, name: str) -> None:
        self.touch()
        r = t.event_rules.c
        self.conn.execute(delete(t.event_rules).where(and_(r.account == account, r.name == name)))

    def list_rules(self, account: str) -> list[EventRule]:
        r = t.event_rules.c
        rows = self.conn.execute(select(t.event_rules).where(r.account == account).order_by(r.name))
        return [_rule(row) for row in rows]

    def put_blueprint(self, blueprint: Blueprint) -> None:
        self.touch()
        self.delete_blueprint(blueprint.name)
        self.conn.execute(insert(t.blueprints).values(
            name=blueprint.name, kind=str(blueprint.kind),
            stage=str(blueprint.stage) if blueprint.stage else None,
            description=blueprint.description, baseline=blueprint.to_document()))

    def delete_blueprint(self, name: str) -> None:
        self.touch()
        self.conn.execute(delete(t.blueprints).where(t.blueprints.c.name == name))


def _token(row: Row[Any]) -> ApiToken:
    return ApiToken(row.id, row.principal, row.secret_hash, row.created_at, row.created_by,
                    row.expires_at, row.revoked_at, row.description)


class SqlTokenRepository(_Repo):
    """Tokens are read on every request, so they are served from the org cache: every write here
    bumps the org's state revision in the same transaction, and a revoked token is refused at its
    next request, in this process and in every other one."""

    def __init__(self, conn: Connection, org: SqlOrgRepository) -> None:
        super().__init__(conn)
        self.org = org

    def add(self, token: ApiToken) -> None:
        self.org.touch()
        self.conn.execute(_INSERT_TOKEN, {
            "id": token.id, "principal": token.principal, "secret_hash": token.secret_hash,
            "description": token.description, "created_at": token.created_at,
            "created_by": token.created_by, "expires_at": token.expires_at, "revoked_at": token.revoked_at})

    def get(self, token_id: str) -> ApiToken | None:
        return self.org.cached(("token", token_id), lambda: self._load(token_id))

    def _load(self, token_id: str) -> ApiToken | None:
        row = self.conn.execute(_TOKEN, {"id": token_id}).first()
        return _token(row) if row else None

    def find(self, principal: str | None, after: str | None, limit: int) -> list[ApiToken]:
        q = select(t.api_tokens).order_by(t.api_tokens.c.id).limit(limit)
        if principal is not None:
            q = q.where(t.api_tokens.c.principal == principal)
        if after is not None:
            q = q.where(t.api_tokens.c.id > after)
        return [_token(r) for r in self.conn.execute(q)]

    def revoke(self, token_id: str, at: datetime) -> None:
        self.org.touch()
        self.conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == token_id).values(revoked_at=at))


class SqlSessionRepository(_Repo):
    def add(self, session: Session) -> None:
        self.conn.execute(insert(t.sessions).values(
            id=session.id, principal=session.principal, account=session.account, role=session.role,
            secret_hash=session.secret_hash, token_id=session.token_id,
            created_at=session.created_at, expires_at=session.expires_at))

    def get(self, session_id: str) -> Session | None:
        r = self.conn.execute(_SESSION, {"id": session_id}).first()
        if r is None:
            return None
        return Session(r.id, r.principal, r.account, r.role, r.secret_hash, r.created_at, r.expires_at,
                       r.token_id)


def _record(r: Row[Any]) -> AuditRecord:
    return AuditRecord(r.seq, r.id, r.time, r.actor, r.via, r.account, r.action, r.resource,
                       Outcome(r.outcome), r.policy, r.request_id, r.details, r.prev_hash, r.hash)


def _record_from_text(r: Row[Any]) -> AuditRecord:
    time = datetime.fromisoformat(str(r.time).replace(" ", "T"))
    details = json.loads(r.details) if isinstance(r.details, str) else r.details
    if not isinstance(details, dict):
        raise TypeError("details is not an object")
    return AuditRecord(r.seq, r.id, time if time.tzinfo else time.replace(tzinfo=UTC), r.actor, r.via,
                       r.account, r.action, r.resource, Outcome(r.outcome), r.policy, r.request_id,
                       details, r.prev_hash, r.hash)


def _checkpoint(r: Row[Any]) -> Checkpoint:
    return Checkpoint(r.seq, r.hash, r.created_at, r.key_id, r.signature)


_HEAD = select(t.audit_head.c.seq, t.audit_head.c.hash, t.audit_head.c.checkpoint_seq).where(
    t.audit_head.c.id == 1)


class AuditHeadCache:
    """The audit chain's head as this process last committed it. An append starts from it without
    reading the head row; the head row's update is conditional on it, so an append after another
    process's is refused and made again from the head read afresh (``AuditTrail.append``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._head: AuditHead | None = None

    def get(self) -> AuditHead | None:
        return self._head

    def committed(self, head: AuditHead) -> None:
        with self._lock:  # commits of concurrent transactions may report out of order: keep the newest
            current = self._head
            if current is None or (head.seq, head.checkpoint_seq) >= (current.seq, current.checkpoint_seq):
                self._head = head


class SqlAuditRepository(_Repo):
    def __init__(self, conn: Connection, cache: AuditHeadCache | None = None,
                 after_commit: Callable[[Callable[[], None]], None] | None = None) -> None:
        super().__init__(conn)
        self._cache = cache
        self._after_commit = after_commit
        self._head: AuditHead | None = None  # the head as this transaction has made it
        self._publishing = False

    def lock_head(self, *, fresh: bool = False) -> AuditHead:
        if not fresh:
            known = self._head or (self._cache.get() if self._cache is not None else None)
            if known is not None:
                return known
        q = locking(self.conn, _HEAD)
        row = self.conn.execute(q).one()
        self._head = AuditHead(int(row.seq), str(row.hash), int(row.checkpoint_seq))
        return self._head

    def append(self, record: AuditRecord, head: AuditHead) -> bool:
        moved = self.conn.execute(_ADVANCE_HEAD, {
            "new_seq": record.seq, "new_hash": record.hash, "old_seq": head.seq, "old_hash": head.hash,
            "old_checkpoint": head.checkpoint_seq})
        if moved.rowcount != 1:
            self._head = None
            return False
        self.conn.execute(_INSERT_RECORD, {
            "seq": record.seq, "id": record.id, "time": record.time, "actor": record.actor,
            "via": record.via, "account": record.account, "action": record.action,
            "resource": record.resource, "outcome": str(record.outcome), "policy": record.policy,
            "request_id": record.request_id, "details": record.details,
            "prev_hash": record.prev_hash, "hash": record.hash})
        self._moved(AuditHead(record.seq, record.hash, head.checkpoint_seq))
        return True

    def _moved(self, head: AuditHead) -> None:
        """This transaction moved the head; once it commits, the process's cache holds it."""
        self._head = head
        if self._cache is not None and self._after_commit is not None and not self._publishing:
            self._publishing = True
            self._after_commit(self._publish)

    def _publish(self) -> None:
        self._publishing = False
        if self._cache is not None and self._head is not None:
            self._cache.committed(self._head)

    def find(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditRecord]:
        c = t.audit_records.c
        q = select(t.audit_records).order_by(c.seq).limit(limit)
        for column, value in ((c.actor, flt.actor), (c.account, flt.account),
                              (c.resource, flt.resource), (c.action, flt.action)):
            if value is not None:
                q = q.where(column == value)
        if flt.since is not None:
            q = q.where(c.time >= flt.since)
        if flt.until is not None:
            q = q.where(c.time < flt.until)
        if after is not None:
            q = q.where(c.seq > after)
        return [_record(r) for r in self.conn.execute(q)]

    def iterate(self) -> Iterator[AuditRecord | UnreadableRecord]:
        # Read the typed columns as text and parse them here, so that one tampered row is reported
        # as that row instead of aborting the walk.
        c = t.audit_records.c
        columns = [type_coerce(col, Text).label(col.name) if col.name in ("time", "details") else col
                   for col in t.audit_records.columns]
        # In pages of 2,000 by sequence number rather than through one server-side cursor, which
        # PostgreSQL opens only inside a transaction (read-only units of work there hold none). The
        # trail is append-only and its numbers are taken one writer at a time, so the pages join up.
        page = select(*columns).where(c.seq > bindparam("after")).order_by(c.seq).limit(AUDIT_PAGE)
        after = -1
        while rows := self.conn.execute(page, {"after": after}).all():
            for row in rows:
                try:
                    yield _record_from_text(row)
                except (ValueError, TypeError) as error:
                    yield UnreadableRecord(int(row.seq), f"a field no longer parses: {error}")
            after = int(rows[-1].seq)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.conn.execute(insert(t.audit_checkpoints).values(
            seq=checkpoint.seq, hash=checkpoint.hash, created_at=checkpoint.created_at,
            key_id=checkpoint.key_id, signature=checkpoint.signature))
        self.conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1)
                          .values(checkpoint_seq=checkpoint.seq))
        if self._head is not None and self._head.seq == checkpoint.seq:
            self._moved(AuditHead(checkpoint.seq, self._head.hash, checkpoint.seq))
        else:
            self._head = None  # not the head this transaction holds: read it again when needed

    def checkpoints(self) -> list[Checkpoint]:
        rows = self.conn.execute(select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.seq))
        return [_checkpoint(r) for r in rows]



class SqlOutboxRepository(_Repo):
    def add(self, event: Event) -> None:
        self.conn.execute(_INSERT_EVENT, {
            "id": event.id, "type": event.type, "source": event.source, "subject": event.subject,
            "time": event.time, "data": event.data, "dispatched": False})

    def claim_pending(self, limit: int) -> list[Event]:
        o = t.outbox.c
        q = select(t.outbox).where(o.dispatched.is_(False)).order_by(o.time, o.id).limit(limit)
        return [Event(r.type, r.source, r.subject, dict(r.data), r.id, r.time)
                for r in self.conn.execute(locking(self.conn, q, skip_locked=True))]

    def mark_dispatched(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            self.conn.execute(update(t.outbox).where(t.outbox.c.id.in_(list(event_ids))).values(dispatched=True))


class SqlUnitOfWork:
    """One transaction. Leaving the block without ``commit()`` rolls everything back."""

    def __init__(self, engine: Engine, *, readonly: bool = False,
                 write_lock: threading.Lock | None = None, org_cache: OrgCache | None = None,
                 audit_heads: AuditHeadCache | None = None) -> None:
        self.engine = engine
        self._org_cache = org_cache
        self._audit_heads = audit_heads
        self.readonly = readonly
        # SQLite admits one writer; queueing this process's writers on a lock keeps them out of
        # SQLite's busy handler, whose sleeps would otherwise set the tail latency.
        self._write_lock = None if readonly else write_lock
        self._conn: Connection | None = None
        self._callbacks: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        if self._write_lock is not None:
            self._write_lock.acquire()
        try:
            return self._open()
        except BaseException:
            if self._write_lock is not None:
                self._write_lock.release()
            raise

    def _open(self) -> Self:
        self._conn = self.engine.connect()
        if self.readonly:
            self._conn = read_only(self._conn)
        self._conn.begin()
        self.org = SqlOrgRepository(self._conn, self._org_cache)
        self.tokens = SqlTokenRepository(self._conn, self.org)
        self.sessions = SqlSessionRepository(self._conn)
        self.audit = SqlAuditRepository(self._conn, self._audit_heads, self.after_commit)
        self.outbox = SqlOutboxRepository(self._conn)
        self.registry = SqlRegistryRepository(self._conn, self.org)
        self.cards = SqlCardRepository(self._conn)
        self.deliveries = SqlDeliveryRepository(self._conn)
        self.datasets = SqlDatasetRepository(self._conn)
        self.catalog = SqlCatalogRepository(self._conn)
        self.account_requests = SqlAccountRequestRepository(self._conn)
        self.projects = SqlProjectRepository(self._conn)
        self.pipelines = SqlPipelineRepository(self._conn)
        self.endpoints = SqlEndpointRepository(self._conn)
        self.deployments = SqlDeploymentRepository(self._conn)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
        finally:
            self._conn.close()
            self._conn = None
            if self._write_lock is not None:
                self._write_lock.release()

    def commit(self) -> None:
        assert self._conn is not None
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._conn.commit()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        assert self._conn is not None
        self._conn.rollback()
        self._callbacks.clear()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
