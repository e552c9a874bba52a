"""pipelines: definitions, code manifests, runs with their step states, and the step cache

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["accounts.name"], name=op.f("fk_pipelines_account_accounts")),
        sa.PrimaryKeyConstraint("account", "name", name=op.f("pk_pipelines")),
    )
    op.create_table(
        "pipeline_code",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("account", "sha256", name=op.f("pk_pipeline_code")),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("pipeline", sa.String(length=63), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("started_at", t.UTCDateTime(), nullable=True),
        sa.Column("finished_at", t.UTCDateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["account", "pipeline"], ["pipelines.account", "pipelines.name"],
                                name=op.f("fk_pipeline_runs_account_pipelines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index("ix_pipeline_runs_pipeline", "pipeline_runs", ["account", "pipeline", "id"], unique=False)
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status", "created_at"], unique=False)
    op.create_table(
        "pipeline_step_cache",
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "key", name=op.f("pk_pipeline_step_cache")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_step_cache")
    op.drop_index("ix_pipeline_runs_status", table_name="pipeline_runs")
    op.drop_index("ix_pipeline_runs_pipeline", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("pipeline_code")
    op.drop_table("pipelines")
