"""events: bus policies and rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:25:01.919039
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_bus_policies',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('allow', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_event_bus_policies_account_accounts')),
    sa.PrimaryKeyConstraint('account', name=op.f('pk_event_bus_policies'))
    )
    op.create_table('event_rules',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('pattern', sa.Text(), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_event_rules_account_accounts')),
    sa.PrimaryKeyConstraint('account', 'name', name=op.f('pk_event_rules'))
    )


def downgrade() -> None:
    op.drop_table('event_rules')
    op.drop_table('event_bus_policies')
