"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; a test keeps them in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return cast(datetime, value).replace(tzinfo=UTC)


NAME = 63

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organization = Table(
    "organization",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("policy_revision", Integer, nullable=False, default=0),
    # Bumped by every change to the org's principals, accounts, OUs, roles, bindings or policies:
    # the key of the per-process cache of the rows every request reads (adapters/db/orgcache.py).
    Column("state_revision", Integer, nullable=False, default=0, server_default="0"),
)

org_units = Table(
    "org_units",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("parent", String(NAME), ForeignKey("org_units.name"), nullable=True),
    Column("description", Text, nullable=False, default=""),
)

accounts = Table(
    "accounts",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("stage", String(16), nullable=True),
    Column("ou", String(NAME), ForeignKey("org_units.name"), nullable=True),
    Column("description", Text, nullable=False, default=""),
)

principals = Table(
    "principals",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("display_name", String(200), nullable=False, default=""),
    Column("email", String(320), nullable=False, default=""),
)

roles = Table(
    "roles",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("description", Text, nullable=False, default=""),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("principal", String(NAME), ForeignKey("principals.name"), primary_key=True),
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("role", String(NAME), primary_key=True),
)

policies = Table(
    "policies",
    metadata,
    Column("id", String(NAME), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("text", Text, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("principal", String(NAME), ForeignKey("principals.name"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("principal", String(NAME), ForeignKey("principals.name"), nullable=False),
    Column("account", String(NAME), ForeignKey("accounts.name"), nullable=False),
    Column("role", String(NAME), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("token_id", String(32), ForeignKey("api_tokens.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("actor", String(NAME), nullable=True),
    Column("via", String(64), nullable=True),
    Column("account", String(NAME), nullable=False),
    Column("action", String(100), nullable=False),
    Column("resource", String(500), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("policy", String(500), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_records_actor_seq", "actor", "seq"),
    Index("ix_audit_records_account_seq", "account", "seq"),
    Index("ix_audit_records_resource_seq", "resource", "seq"),
    Index("ix_audit_records_time", "time"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("checkpoint_seq", BigInteger, nullable=False, default=0),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(200), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(200), nullable=False),
    Column("source", String(NAME), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
    Column("dispatched", Boolean, nullable=False, default=False),
    Index("ix_outbox_pending", "dispatched", "time"),
)


model_package_groups = Table(
    "model_package_groups",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("readers", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=False),
    # The next version to hand out: taken with UPDATE … RETURNING in the registering transaction,
    # so concurrent registrations queue on the group row and a rolled-back one leaves no gap.
    Column("next_version", Integer, nullable=False, default=1),
)

model_packages = Table(
    "model_packages",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("group", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("status", String(32), nullable=False),
    Column("format", String(16), nullable=False),
    Column("artifacts", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("signature", JSON, nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("sample_payload", JSON, nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("origin", String(500), nullable=True),
    Column("history", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "group"], ["model_package_groups.account", "model_package_groups.name"]),
    Index("ix_model_packages_latest", "account", "group", "status", "version"),
)

event_bus_policies = Table(
    "event_bus_policies",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("allow", JSON, nullable=False),
)

event_rules = Table(
    "event_rules",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("pattern", Text, nullable=False),
    Column("targets", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
)
