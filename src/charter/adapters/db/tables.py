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
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
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
    Column("managed_by", String(200), nullable=True),
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
    # One central package per source package: a promotion delivered twice, or by two workers at
    # once, can insert only one row (NULL origins, the packages registered here, never collide).
    Index("uq_model_packages_origin", "account", "origin", unique=True),
)

event_bus_policies = Table(
    "event_bus_policies",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("allow", JSON, nullable=False),
    Column("managed_by", String(200), nullable=True),
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
    Column("managed_by", String(200), nullable=True),
)

# Model cards: one row per card (its status, approvals and review history), one row per immutable
# version. ``revision`` counts the card's versions plus its status changes: every change raises it,
# and a save names the revision it started from, so a stale or concurrent change is refused.
model_cards = Table(
    "model_cards",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("group", String(NAME), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("approved_version", Integer, nullable=True),
    Column("version_count", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("history", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "group"], ["model_package_groups.account", "model_package_groups.name"]),
)

model_card_versions = Table(
    "model_card_versions",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("group", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("author", String(NAME), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("summary", Text, nullable=False),
    Column("content", JSON, nullable=False),
    Column("training", JSON, nullable=True),
    Column("evaluation", JSON, nullable=True),
    Column("package", String(500), nullable=True),
    ForeignKeyConstraint(["account", "group"], ["model_cards.account", "model_cards.group"]),
    Index("ix_model_card_versions_package", "package"),
)

# One row per (event, bus, rule, target): routing an event twice finds its rows already there.
# ``claim`` and ``claimed_until`` lease a row to one dispatcher while it delivers; a lease that runs
# out (the dispatcher crashed) makes the row due again.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("event", JSON, nullable=False),
    Column("bus", String(NAME), nullable=False),
    Column("rule", String(NAME), nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target_value", String(2048), nullable=False),
    Column("target_run_as", String(NAME), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("claim", String(32), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    UniqueConstraint("event_id", "bus", "rule", "target_kind", "target_value", "target_run_as",
                     name="uq_event_deliveries_key"),
    Index("ix_event_deliveries_due", "status", "next_attempt_at"),
    Index("ix_event_deliveries_bus", "bus", "created_at", "id"),
)


# --- governed data ------------------------------------------------------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("owner", String(NAME), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # As for package groups: taken with UPDATE … RETURNING, so versions have no gaps.
    Column("next_version", Integer, nullable=False, default=1),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("dataset", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("format", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("registered_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "dataset"], ["datasets.account", "datasets.name"]),
)

dataset_subscriptions = Table(
    "dataset_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(NAME), nullable=False),
    Column("dataset", String(NAME), nullable=False),
    Column("subscriber", String(NAME), ForeignKey("accounts.name"), nullable=False),
    Column("project", String(NAME), nullable=True),
    Column("requested_by", String(NAME), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_by", String(NAME), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_by", String(NAME), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("history", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "dataset"], ["datasets.account", "datasets.name"]),
    Index("ix_dataset_subscriptions_account_id", "account", "id"),
    Index("ix_dataset_subscriptions_subscriber_id", "subscriber", "id"),
    Index("ix_dataset_subscriptions_grant", "account", "dataset", "subscriber"),
)

dataset_reads = Table(
    "dataset_reads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(NAME), nullable=False),
    Column("dataset", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reader", String(NAME), nullable=False),
    Column("for_account", String(NAME), nullable=False),
    Column("project", String(NAME), nullable=True),
    Column("run", String(200), nullable=True),
    Column("subscription", String(32), nullable=True),
    Column("time", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "dataset", "version"],
                         ["dataset_versions.account", "dataset_versions.dataset", "dataset_versions.version"]),
    Index("ix_dataset_reads_dataset_id", "account", "dataset", "id"),
)

catalog_portfolios = Table(
    "catalog_portfolios",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("provider", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=False),
)

catalog_products = Table(
    "catalog_products",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("portfolio", String(NAME), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    # As for model packages: taken with UPDATE … RETURNING in the publishing transaction.
    Column("next_version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=False),
    ForeignKeyConstraint(["account", "portfolio"], ["catalog_portfolios.account", "catalog_portfolios.name"]),
    Index("ix_catalog_products_portfolio", "account", "portfolio", "name"),
)

catalog_product_versions = Table(
    "catalog_product_versions",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("product", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("portfolio", String(NAME), nullable=False),
    Column("files", JSON, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("source", JSON, nullable=False),
    Column("content_digest", String(64), nullable=False),
    Column("published_by", String(NAME), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "product"], ["catalog_products.account", "catalog_products.name"]),
    # The same files are published once per product: a second publish finds the first here.
    Index("uq_catalog_product_versions_content", "account", "product", "content_digest", unique=True),
)

catalog_shares = Table(
    "catalog_shares",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("portfolio", String(NAME), primary_key=True),
    Column("target", String(NAME + 3), primary_key=True),
    Column("managed_by", String(200), nullable=True),
    ForeignKeyConstraint(["account", "portfolio"], ["catalog_portfolios.account", "catalog_portfolios.name"]),
    Index("ix_catalog_shares_target", "target"),
)

catalog_grants = Table(
    "catalog_grants",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("portfolio", String(NAME), primary_key=True),
    Column("pattern", String(NAME), primary_key=True),
    ForeignKeyConstraint(["account", "portfolio"], ["catalog_portfolios.account", "catalog_portfolios.name"]),
)

blueprints = Table(
    "blueprints",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("stage", String(16), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("baseline", JSON, nullable=False),
)

account_requests = Table(
    "account_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(NAME), nullable=False),
    Column("ou", String(NAME), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("stage", String(16), nullable=True),
    Column("blueprint", String(NAME), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_by", String(NAME), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Index("ix_account_requests_status_id", "status", "id"),
)

catalog_projects = Table(
    "catalog_projects",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("product_account", String(NAME), nullable=False),
    Column("product", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("workspace", String(NAME), nullable=True),
    Column("launched_by", String(NAME), nullable=False),
    Column("status", String(16), nullable=False),
    # What it provisioned (kind, CRN, name, details) and its updates: read and written whole.
    Column("resources", JSON, nullable=False),
    Column("history", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["product_account", "product"], ["catalog_products.account", "catalog_products.name"]),
)

catalog_workspaces = Table(
    "catalog_workspaces",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("team", String(NAME), nullable=False),
    Column("product_account", String(NAME), nullable=False),
    Column("product", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("members", JSON, nullable=False),
    Column("cost_centre", String(200), nullable=False, default=""),
    Column("business_unit", String(200), nullable=False, default=""),
    Column("environment", String(200), nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("data_access", JSON, nullable=False),
    Column("launched_by", String(NAME), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["product_account", "product"], ["catalog_products.account", "catalog_products.name"]),
)

# --- pipelines ------------------------------------------------------------------------------

pipelines = Table(
    "pipelines",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("code_sha256", String(64), nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Parameter values the pipeline was created with (a project's launch parameters): a run
    # started without them gets these instead of the definition's defaults.
    Column("defaults", JSON, nullable=False),
)

# A pipeline's code as a manifest (path -> blob digest), kept under the manifest's own digest so a
# run keeps the code it started with whatever the pipeline becomes.
pipeline_code = Table(
    "pipeline_code",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("files", JSON, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(NAME), nullable=False),
    Column("pipeline", String(NAME), nullable=False),
    Column("definition", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("code_sha256", String(64), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("started_by", String(NAME), nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("steps", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    ForeignKeyConstraint(["account", "pipeline"], ["pipelines.account", "pipelines.name"]),
    Index("ix_pipeline_runs_pipeline", "account", "pipeline", "id"),
    Index("ix_pipeline_runs_status", "status", "created_at"),
)

pipeline_step_cache = Table(
    "pipeline_step_cache",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("outputs", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# --- endpoints ------------------------------------------------------------------------------

endpoints = Table(
    "endpoints",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("serving_revision", Integer, nullable=True),
    Column("created_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Each configuration an endpoint was given, with how its rollout went: the endpoint's history.
endpoint_revisions = Table(
    "endpoint_revisions",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("endpoint", String(NAME), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("variants", JSON, nullable=False),
    Column("replicas", Integer, nullable=False),
    Column("capture_percent", Float, nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("rollback_of", Integer, nullable=True),
    ForeignKeyConstraint(["account", "endpoint"], ["endpoints.account", "endpoints.name"], ondelete="CASCADE"),
)

# Batches of captured request/response pairs (JSON lines in the endpoint account's artifact store).
endpoint_captures = Table(
    "endpoint_captures",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("endpoint", String(NAME), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("records", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_endpoint_captures_time", "account", "endpoint", "created_at"),
)

# --- deployments -----------------------------------------------------------------------------

deployment_pipelines = Table(
    "deployment_pipelines",
    metadata,
    Column("account", String(NAME), ForeignKey("accounts.name"), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# One row per execution; the stages, approvals and rollbacks as JSON documents. ``revision``
# makes every save conditional on the state it was read at; (account, pipeline, event_id) is
# unique, so one event starts one execution however often it is delivered.
deployment_executions = Table(
    "deployment_executions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(NAME), nullable=False),
    Column("pipeline", String(NAME), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("package", String(400), nullable=False),
    Column("central_approver", String(NAME), nullable=True),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("stages", JSON, nullable=False),
    Column("approvals", JSON, nullable=False),
    Column("rollbacks", JSON, nullable=False),
    Column("approval_expires_at", UTCDateTime(), nullable=True),
    Column("revision", Integer, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["account", "pipeline"], ["deployment_pipelines.account", "deployment_pipelines.name"]),
    UniqueConstraint("account", "pipeline", "event_id", name="uq_deployment_executions_event"),
    Index("ix_deployment_executions_pipeline", "account", "pipeline", "id"),
    Index("ix_deployment_executions_status", "status", "updated_at"),
)
