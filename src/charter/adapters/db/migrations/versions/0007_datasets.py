"""datasets: governed datasets, versions, subscriptions and reads

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('owner', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('next_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_datasets_account_accounts')),
    sa.PrimaryKeyConstraint('account', 'name', name=op.f('pk_datasets'))
    )
    op.create_table('dataset_versions',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('dataset', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('registered_by', sa.String(length=63), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account', 'dataset'], ['datasets.account', 'datasets.name'],
                            name=op.f('fk_dataset_versions_account_datasets')),
    sa.PrimaryKeyConstraint('account', 'dataset', 'version', name=op.f('pk_dataset_versions'))
    )
    op.create_table('dataset_subscriptions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('dataset', sa.String(length=63), nullable=False),
    sa.Column('subscriber', sa.String(length=63), nullable=False),
    sa.Column('project', sa.String(length=63), nullable=True),
    sa.Column('requested_by', sa.String(length=63), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=63), nullable=True),
    sa.Column('decided_at', t.UTCDateTime(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('expires_at', t.UTCDateTime(), nullable=True),
    sa.Column('revoked_by', sa.String(length=63), nullable=True),
    sa.Column('revoked_at', t.UTCDateTime(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account', 'dataset'], ['datasets.account', 'datasets.name'],
                            name=op.f('fk_dataset_subscriptions_account_datasets')),
    sa.ForeignKeyConstraint(['subscriber'], ['accounts.name'],
                            name=op.f('fk_dataset_subscriptions_subscriber_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_subscriptions'))
    )
    with op.batch_alter_table('dataset_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_dataset_subscriptions_account_id', ['account', 'id'], unique=False)
        batch_op.create_index('ix_dataset_subscriptions_subscriber_id', ['subscriber', 'id'], unique=False)
        batch_op.create_index('ix_dataset_subscriptions_grant', ['account', 'dataset', 'subscriber'],
                              unique=False)
    op.create_table('dataset_reads',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('dataset', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('reader', sa.String(length=63), nullable=False),
    sa.Column('for_account', sa.String(length=63), nullable=False),
    sa.Column('project', sa.String(length=63), nullable=True),
    sa.Column('run', sa.String(length=200), nullable=True),
    sa.Column('subscription', sa.String(length=32), nullable=True),
    sa.Column('time', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account', 'dataset', 'version'],
                            ['dataset_versions.account', 'dataset_versions.dataset', 'dataset_versions.version'],
                            name=op.f('fk_dataset_reads_account_dataset_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_reads'))
    )
    with op.batch_alter_table('dataset_reads', schema=None) as batch_op:
        batch_op.create_index('ix_dataset_reads_dataset_id', ['account', 'dataset', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dataset_reads', schema=None) as batch_op:
        batch_op.drop_index('ix_dataset_reads_dataset_id')
    op.drop_table('dataset_reads')
    with op.batch_alter_table('dataset_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_dataset_subscriptions_grant')
        batch_op.drop_index('ix_dataset_subscriptions_subscriber_id')
        batch_op.drop_index('ix_dataset_subscriptions_account_id')
    op.drop_table('dataset_subscriptions')
    op.drop_table('dataset_versions')
    op.drop_table('datasets')
