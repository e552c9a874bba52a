"""managed_by: rules, bus policies and role bindings made by something other than charter.yaml

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 08:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("role_bindings", "event_bus_policies", "event_rules")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("managed_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("managed_by")
