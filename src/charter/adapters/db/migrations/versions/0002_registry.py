"""registry: model package groups and packages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:16:55.684338
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_package_groups',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('readers', sa.JSON(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.Column('next_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_model_package_groups_account_accounts')),
    sa.PrimaryKeyConstraint('account', 'name', name=op.f('pk_model_package_groups'))
    )
    op.create_table('model_packages',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('group', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('artifacts', sa.JSON(), nullable=False),
    sa.Column('lineage', sa.JSON(), nullable=False),
    sa.Column('signature', sa.JSON(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('sample_payload', sa.JSON(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('origin', sa.String(length=500), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account', 'group'], ['model_package_groups.account', 'model_package_groups.name'], name=op.f('fk_model_packages_account_model_package_groups')),
    sa.PrimaryKeyConstraint('account', 'group', 'version', name=op.f('pk_model_packages'))
    )
    with op.batch_alter_table('model_packages', schema=None) as batch_op:
        batch_op.create_index('ix_model_packages_latest', ['account', 'group', 'status', 'version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_packages', schema=None) as batch_op:
        batch_op.drop_index('ix_model_packages_latest')

    op.drop_table('model_packages')
    op.drop_table('model_package_groups')
