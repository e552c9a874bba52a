"""foundation: organization, identity, audit trail, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:16:30.026480
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.adapters.db.tables as t

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_checkpoints'))
    )
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('checkpoint_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_records',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('time', t.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=63), nullable=True),
    sa.Column('via', sa.String(length=64), nullable=True),
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('resource', sa.String(length=500), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('policy', sa.String(length=500), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_records'))
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index('ix_audit_records_account_seq', ['account', 'seq'], unique=False)
        batch_op.create_index('ix_audit_records_actor_seq', ['actor', 'seq'], unique=False)
        batch_op.create_index('ix_audit_records_resource_seq', ['resource', 'seq'], unique=False)
        batch_op.create_index('ix_audit_records_time', ['time'], unique=False)

    op.create_table('org_units',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('parent', sa.String(length=63), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['parent'], ['org_units.name'], name=op.f('fk_org_units_parent_org_units')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_org_units'))
    )
    op.create_table('organization',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('policy_revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organization'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=63), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('time', t.UTCDateTime(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('dispatched', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['dispatched', 'time'], unique=False)

    op.create_table('policies',
    sa.Column('id', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policies'))
    )
    op.create_table('principals',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_principals'))
    )
    op.create_table('roles',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_roles'))
    )
    op.create_table('accounts',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('ou', sa.String(length=63), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ou'], ['org_units.name'], name=op.f('fk_accounts_ou_org_units')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_accounts'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('principal', sa.String(length=63), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.Column('expires_at', t.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', t.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['principal'], ['principals.name'], name=op.f('fk_api_tokens_principal_principals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_principal'), ['principal'], unique=False)

    op.create_table('role_bindings',
    sa.Column('principal', sa.String(length=63), nullable=False),
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('role', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_role_bindings_account_accounts')),
    sa.ForeignKeyConstraint(['principal'], ['principals.name'], name=op.f('fk_role_bindings_principal_principals')),
    sa.PrimaryKeyConstraint('principal', 'account', 'role', name=op.f('pk_role_bindings'))
    )
    op.create_table('sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('principal', sa.String(length=63), nullable=False),
    sa.Column('account', sa.String(length=63), nullable=False),
    sa.Column('role', sa.String(length=63), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('token_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', t.UTCDateTime(), nullable=False),
    sa.Column('expires_at', t.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], name=op.f('fk_sessions_account_accounts')),
    sa.ForeignKeyConstraint(['principal'], ['principals.name'], name=op.f('fk_sessions_principal_principals')),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_sessions_token_id_api_tokens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )

    op.bulk_insert(t.audit_head, [{"id": 1, "seq": 0, "hash": "0" * 64, "checkpoint_seq": 0}])


def downgrade() -> None:
    op.drop_table('sessions')
    op.drop_table('role_bindings')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_principal'))

    op.drop_table('api_tokens')
    op.drop_table('accounts')
    op.drop_table('roles')
    op.drop_table('principals')
    op.drop_table('policies')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending')

    op.drop_table('outbox')
    op.drop_table('organization')
    op.drop_table('org_units')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_records_time')
        batch_op.drop_index('ix_audit_records_resource_seq')
        batch_op.drop_index('ix_audit_records_actor_seq')
        batch_op.drop_index('ix_audit_records_account_seq')

    op.drop_table('audit_records')
    op.drop_table('audit_head')
    op.drop_table('audit_checkpoints')
