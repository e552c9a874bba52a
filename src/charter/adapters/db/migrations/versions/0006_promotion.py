"""promotion: one central package per source package

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_model_packages_origin", "model_packages", ["account", "origin"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_model_packages_origin", table_name="model_packages")
