"""deployments: deployment pipelines and their executions (stages, approvals, rollbacks)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment_pipelines",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["accounts.name"], name=op.f("fk_deployment_pipelines_account_accounts")),
        sa.PrimaryKeyConstraint("account", "name", name=op.f("pk_deployment_pipelines")),
    )
    op.create_table(
        "deployment_executions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("pipeline", sa.String(length=63), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("package", sa.String(length=400), nullable=False),
        sa.Column("central_approver", sa.String(length=63), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("rollbacks", sa.JSON(), nullable=False),
        sa.Column("approval_expires_at", t.UTCDateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", t.UTCDateTime(), nullable=True),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("updated_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account", "pipeline"], ["deployment_pipelines.account", "deployment_pipelines.name"],
                                name=op.f("fk_deployment_executions_account_deployment_pipelines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_executions")),
        sa.UniqueConstraint("account", "pipeline", "event_id", name="uq_deployment_executions_event"),
    )
    op.create_index("ix_deployment_executions_pipeline", "deployment_executions", ["account", "pipeline", "id"],
                    unique=False)
    op.create_index("ix_deployment_executions_status", "deployment_executions", ["status", "updated_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_deployment_executions_status", table_name="deployment_executions")
    op.drop_index("ix_deployment_executions_pipeline", table_name="deployment_executions")
    op.drop_table("deployment_executions")
    op.drop_table("deployment_pipelines")
