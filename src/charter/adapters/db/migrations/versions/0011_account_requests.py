"""account requests and blueprints; catalog shares remember what made them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('blueprints',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('baseline', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_blueprints'))
    )
    op.create_table('account_requests',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('ou', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('blueprint', sa.String(length=63), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.String(length=63), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=63), nullable=True),
    sa.Column('decided_at', t.UTCDateTime(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_requests'))
    )
    op.create_index('ix_account_requests_status_id', 'account_requests', ['status', 'id'], unique=False)
    with op.batch_alter_table("catalog_shares") as batch:
        batch.add_column(sa.Column("managed_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_shares") as batch:
        batch.drop_column("managed_by")
    op.drop_index('ix_account_requests_status_id', table_name='account_requests')
    op.drop_table('account_requests')
    op.drop_table('blueprints')
