"""endpoints: endpoints, their configuration revisions, and their data-capture batches

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("serving_revision", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["accounts.name"], name=op.f("fk_endpoints_account_accounts")),
        sa.PrimaryKeyConstraint("account", "name", name=op.f("pk_endpoints")),
    )
    op.create_table(
        "endpoint_revisions",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("endpoint", sa.String(length=63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("capture_percent", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("finished_at", t.UTCDateTime(), nullable=True),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account", "endpoint"], ["endpoints.account", "endpoints.name"],
                                name=op.f("fk_endpoint_revisions_account_endpoints"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account", "endpoint", "revision", name=op.f("pk_endpoint_revisions")),
    )
    op.create_table(
        "endpoint_captures",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("endpoint", sa.String(length=63), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "endpoint", "sha256", name=op.f("pk_endpoint_captures")),
    )
    op.create_index("ix_endpoint_captures_time", "endpoint_captures", ["account", "endpoint", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_endpoint_captures_time", table_name="endpoint_captures")
    op.drop_table("endpoint_captures")
    op.drop_table("endpoint_revisions")
    op.drop_table("endpoints")
