"""catalog: portfolios, products, product versions, shares and grants

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00

The brief names 0003 as the parent; this branch already carries 0006 (promotion) on top of 0003, so
0008 follows it to keep a single head here. The lead re-chains the migrations at merge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from charter.adapters.db import tables as t

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_portfolios',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_catalog_portfolios_account_accounts')),
    sa.PrimaryKeyConstraint('account', 'name', name=op.f('pk_catalog_portfolios'))
    )
    op.create_table('catalog_products',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('portfolio', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('next_version', sa.Integer(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['account', 'portfolio'], ['catalog_portfolios.account', 'catalog_portfolios.name'], name=op.f('fk_catalog_products_account_catalog_portfolios')),
    sa.PrimaryKeyConstraint('account', 'name', name=op.f('pk_catalog_products'))
    )
    op.create_index('ix_catalog_products_portfolio', 'catalog_products', ['account', 'portfolio', 'name'], unique=False)
    op.create_table('catalog_product_versions',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('product', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('portfolio', sa.String(length=63), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('source', sa.JSON(), nullable=False),
    sa.Column('content_digest', sa.String(length=64), nullable=False),
    sa.Column('published_by', sa.String(length=63), nullable=False),
    sa.Column('published_at', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account', 'product'], ['catalog_products.account', 'catalog_products.name'], name=op.f('fk_catalog_product_versions_account_catalog_products')),
    sa.PrimaryKeyConstraint('account', 'product', 'version', name=op.f('pk_catalog_product_versions'))
    )
    op.create_index('uq_catalog_product_versions_content', 'catalog_product_versions', ['account', 'product', 'content_digest'], unique=True)
    op.create_table('catalog_shares',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('portfolio', sa.String(length=63), nullable=False),
    sa.Column('target', sa.String(length=66), nullable=False),
    sa.ForeignKeyConstraint(['account', 'portfolio'], ['catalog_portfolios.account', 'catalog_portfolios.name'], name=op.f('fk_catalog_shares_account_catalog_portfolios')),
    sa.PrimaryKeyConstraint('account', 'portfolio', 'target', name=op.f('pk_catalog_shares'))
    )
    op.create_index('ix_catalog_shares_target', 'catalog_shares', ['target'], unique=False)
    op.create_table('catalog_grants',
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('portfolio', sa.String(length=63), nullable=False),
    sa.Column('pattern', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['account', 'portfolio'], ['catalog_portfolios.account', 'catalog_portfolios.name'], name=op.f('fk_catalog_grants_account_catalog_portfolios')),
    sa.PrimaryKeyConstraint('account', 'portfolio', 'pattern', name=op.f('pk_catalog_grants'))
    )


def downgrade() -> None:
    op.drop_table('catalog_grants')
    op.drop_index('ix_catalog_shares_target', table_name='catalog_shares')
    op.drop_table('catalog_shares')
    op.drop_index('uq_catalog_product_versions_content', table_name='catalog_product_versions')
    op.drop_table('catalog_product_versions')
    op.drop_index('ix_catalog_products_portfolio', table_name='catalog_products')
    op.drop_table('catalog_products')
    op.drop_table('catalog_portfolios')
