"""cards: model cards and their immutable versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_cards',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('group', sa.String(length=63), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('approved_version', sa.Integer(), nullable=True),
    sa.Column('version_count', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('updated_at', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account', 'group'], ['model_package_groups.account', 'model_package_groups.name'], name=op.f('fk_model_cards_account_model_package_groups')),
    sa.PrimaryKeyConstraint('account', 'group', name=op.f('pk_model_cards'))
    )
    op.create_table('model_card_versions',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('group', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('author', sa.String(length=63), nullable=False),
    sa.Column('time', t.UTCDateTime(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('training', sa.JSON(), nullable=True),
    sa.Column('evaluation', sa.JSON(), nullable=True),
    sa.Column('package', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['account', 'group'], ['model_cards.account', 'model_cards.group'], name=op.f('fk_model_card_versions_account_model_cards')),
    sa.PrimaryKeyConstraint('account', 'group', 'version', name=op.f('pk_model_card_versions'))
    )
    op.create_index('ix_model_card_versions_package', 'model_card_versions', ['package'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_model_card_versions_package', table_name='model_card_versions')
    op.drop_table('model_card_versions')
    op.drop_table('model_cards')
