"""events: deliveries of routed events, with leases and retries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from charter.adapters.db import tables as t

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_deliveries',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('bus', sa.String(length=63), nullable=False),
    sa.Column('rule', sa.String(length=63), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target_value', sa.String(length=2048), nullable=False),
    sa.Column('target_run_as', sa.String(length=63), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('updated_at', t.UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', t.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('claim', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', t.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_deliveries')),
    sa.UniqueConstraint('event_id', 'bus', 'rule', 'target_kind', 'target_value', 'target_run_as',
                        name='uq_event_deliveries_key')
    )
    with op.batch_alter_table('event_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_event_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_event_deliveries_bus', ['bus', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_event_deliveries_bus')
        batch_op.drop_index('ix_event_deliveries_due')

    op.drop_table('event_deliveries')
