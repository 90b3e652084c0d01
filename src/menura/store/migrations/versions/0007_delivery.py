"""delivery: outbound messages (outbox and sent store), attempts, bounces, inbound messages,
tracking settings

Revision ID: 0007_delivery
Revises: 0006_segments
Depends on: 0002_profiles
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0007_delivery"
down_revision = "0006_segments"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TS = menura.store.types.UtcDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}",
                                   ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("send_key", sa.String(length=255), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("attribution", JSON, nullable=False),
        sa.Column("html_z", sa.LargeBinary(), nullable=True),
        sa.Column("raw_z", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        _fk("outbound_messages", "account_id", "accounts"),
        _fk("outbound_messages", "profile_id", "profiles"),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_messages"),
        sa.UniqueConstraint("account_id", "send_key", name="uq_outbound_messages_account_id_send_key"),
    )
    op.create_index("ix_outbound_messages_account_created", "outbound_messages", ["account_id", "created"])
    op.create_index("ix_outbound_messages_created", "outbound_messages", ["created"])
    op.create_index("ix_outbound_messages_message_id", "outbound_messages", ["message_id"])
    op.create_index("ix_outbound_messages_profile", "outbound_messages", ["profile_id", "channel", "created"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("outbound_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
        _fk("delivery_attempts", "outbound_id", "outbound_messages"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_outbound", "delivery_attempts", ["outbound_id"])

    op.create_table(
        "bounce_records",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("outbound_id", sa.String(length=32), nullable=True),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("created", TS, nullable=False),
        _fk("bounce_records", "account_id", "accounts"),
        _fk("bounce_records", "outbound_id", "outbound_messages"),
        _fk("bounce_records", "profile_id", "profiles"),
        sa.PrimaryKeyConstraint("id", name="pk_bounce_records"),
        sa.UniqueConstraint("outbound_id", "kind", name="uq_bounce_records_outbound_id_kind"),
    )
    op.create_index("ix_bounce_records_profile", "bounce_records", ["profile_id", "created"])

    op.create_table(
        "inbound_messages",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("received", TS, nullable=False),
        _fk("inbound_messages", "account_id", "accounts"),
        _fk("inbound_messages", "profile_id", "profiles", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
        sa.UniqueConstraint("channel", "provider_id", name="uq_inbound_messages_channel_provider_id"),
    )
    op.create_index("ix_inbound_messages_account_received", "inbound_messages", ["account_id", "received"])

    op.create_table(
        "tracking_settings",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("auto_add_parameters", sa.Boolean(), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _fk("tracking_settings", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("account_id", name="pk_tracking_settings"),
    )


def downgrade() -> None:
    op.drop_table("tracking_settings")
    op.drop_index("ix_inbound_messages_account_received", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_index("ix_bounce_records_profile", table_name="bounce_records")
    op.drop_table("bounce_records")
    op.drop_index("ix_delivery_attempts_outbound", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    for index in ("ix_outbound_messages_profile", "ix_outbound_messages_message_id",
                  "ix_outbound_messages_created", "ix_outbound_messages_account_created"):
        op.drop_index(index, table_name="outbound_messages")
    op.drop_table("outbound_messages")
