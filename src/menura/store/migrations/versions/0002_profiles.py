"""profiles: identity, attributes, consent, list suppressions, secondary emails, push tokens

Revision ID: 0002_profiles
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0002_profiles"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('profiles',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone_number', sa.String(length=32), nullable=True),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('anonymous_id', sa.String(length=255), nullable=True),
    sa.Column('first_name', sa.String(length=255), nullable=True),
    sa.Column('last_name', sa.String(length=255), nullable=True),
    sa.Column('organization', sa.String(length=255), nullable=True),
    sa.Column('locale', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('image', sa.Text(), nullable=True),
    sa.Column('location', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created', menura.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated', menura.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_event_date', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('email_consent', sa.String(length=24), server_default='NEVER_SUBSCRIBED', nullable=False),
    sa.Column('email_consent_timestamp', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('email_method', sa.String(length=64), nullable=True),
    sa.Column('email_method_detail', sa.String(length=255), nullable=True),
    sa.Column('email_last_updated', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('email_custom_method_detail', sa.String(length=255), nullable=True),
    sa.Column('email_double_optin', sa.Boolean(), nullable=True),
    sa.Column('email_suppression_reason', sa.String(length=32), nullable=True),
    sa.Column('email_suppression_timestamp', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sms_consent', sa.String(length=24), server_default='NEVER_SUBSCRIBED', nullable=False),
    sa.Column('sms_consent_timestamp', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sms_method', sa.String(length=64), nullable=True),
    sa.Column('sms_method_detail', sa.String(length=255), nullable=True),
    sa.Column('sms_last_updated', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sms_transactional_consent', sa.String(length=24), server_default='NEVER_SUBSCRIBED', nullable=False),
    sa.Column('sms_transactional_consent_timestamp', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sms_transactional_method', sa.String(length=64), nullable=True),
    sa.Column('sms_transactional_method_detail', sa.String(length=255), nullable=True),
    sa.Column('sms_transactional_last_updated', menura.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_profiles_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_profiles')),
    sa.UniqueConstraint('account_id', 'anonymous_id', name=op.f('uq_profiles_account_id_anonymous_id')),
    sa.UniqueConstraint('account_id', 'email', name=op.f('uq_profiles_account_id_email')),
    sa.UniqueConstraint('account_id', 'external_id', name=op.f('uq_profiles_account_id_external_id')),
    sa.UniqueConstraint('account_id', 'phone_number', name=op.f('uq_profiles_account_id_phone_number'))
    )
    op.create_index('ix_profiles_account_created', 'profiles', ['account_id', 'created', 'id'], unique=False)
    op.create_index('ix_profiles_account_updated', 'profiles', ['account_id', 'updated', 'id'], unique=False)
    op.create_table('profile_list_suppressions',
    sa.Column('profile_id', sa.String(length=32), nullable=False),
    sa.Column('list_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('timestamp', menura.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_profile_list_suppressions_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['profile_id'], ['profiles.id'], name=op.f('fk_profile_list_suppressions_profile_id_profiles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('profile_id', 'list_id', name=op.f('pk_profile_list_suppressions'))
    )
    op.create_index('ix_profile_list_suppressions_account_list', 'profile_list_suppressions', ['account_id', 'list_id'], unique=False)
    op.create_table('profile_secondary_emails',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('profile_id', sa.String(length=32), nullable=False),
    sa.Column('created', menura.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_profile_secondary_emails_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['profile_id'], ['profiles.id'], name=op.f('fk_profile_secondary_emails_profile_id_profiles'), ondelete='CASCADE'),
    sa.UniqueConstraint('account_id', 'email', name=op.f('uq_profile_secondary_emails_account_id_email'))
    )
    op.create_index('ix_profile_secondary_emails_profile', 'profile_secondary_emails', ['profile_id'], unique=False)
    op.create_table('push_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('profile_id', sa.String(length=32), nullable=False),
    sa.Column('token', sa.String(length=512), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('vendor', sa.String(length=16), nullable=False),
    sa.Column('enablement_status', sa.String(length=24), nullable=False),
    sa.Column('background', sa.String(length=16), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('created', menura.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('recorded_date', menura.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_push_tokens_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['profile_id'], ['profiles.id'], name=op.f('fk_push_tokens_profile_id_profiles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_tokens')),
    sa.UniqueConstraint('account_id', 'token', name=op.f('uq_push_tokens_account_id_token'))
    )
    op.create_index('ix_push_tokens_account_profile', 'push_tokens', ['account_id', 'profile_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_push_tokens_account_profile', table_name='push_tokens')
    op.drop_table('push_tokens')
    op.drop_index('ix_profile_secondary_emails_profile', table_name='profile_secondary_emails')
    op.drop_table('profile_secondary_emails')
    op.drop_index('ix_profile_list_suppressions_account_list', table_name='profile_list_suppressions')
    op.drop_table('profile_list_suppressions')
    op.drop_index('ix_profiles_account_updated', table_name='profiles')
    op.drop_index('ix_profiles_account_created', table_name='profiles')
    op.drop_table('profiles')
