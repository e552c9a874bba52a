"""projects and workspaces launched from catalog products

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from charter.adapters.db import tables as t

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _launched(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("account", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        *columns,
        sa.Column("launched_by", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("updated_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["accounts.name"], name=op.f(f"fk_{name}_account_accounts")),
        sa.ForeignKeyConstraint(["product_account", "product"], ["catalog_products.account", "catalog_products.name"],
                                name=op.f(f"fk_{name}_product_account_catalog_products")),
        sa.PrimaryKeyConstraint("account", "name", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    _launched(
        "catalog_projects",
        sa.Column("product_account", sa.String(length=63), nullable=False),
        sa.Column("product", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=True),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
    )
    _launched(
        "catalog_workspaces",
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("product_account", sa.String(length=63), nullable=False),
        sa.Column("product", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("cost_centre", sa.String(length=200), nullable=False),
        sa.Column("business_unit", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("data_access", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_workspaces")
    op.drop_table("catalog_projects")
