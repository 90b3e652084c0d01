"""campaigns, campaign messages and their templates, send jobs, estimations, recipient ledger

Revision ID: 0008_campaigns
Revises: 0007_delivery
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0008_campaigns"
down_revision = "0007_delivery"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TS = menura.store.types.UtcDateTime(timezone=True)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _account(table: str) -> list:
    return [sa.Column("account_id", sa.String(length=32), nullable=False),
            sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                    ondelete="CASCADE")]


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}",
                                   ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("campaigns"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=48), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("included", JSON, nullable=False),
        sa.Column("excluded", JSON, nullable=False),
        sa.Column("send_strategy", JSON, nullable=False),
        sa.Column("send_options", JSON, nullable=False),
        sa.Column("tracking_options", JSON, nullable=True),
        sa.Column("details", JSON, nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.Column("scheduled_at", TS, nullable=True),
        sa.Column("send_time", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_account_created", "campaigns", ["account_id", "created", "id"])
    op.create_index("ix_campaigns_account_updated", "campaigns", ["account_id", "updated", "id"])
    op.create_index("ix_campaigns_account_scheduled", "campaigns", ["account_id", "scheduled_at", "id"])
    op.create_index("ix_campaigns_account_name", "campaigns", ["account_id", "name", "id"])

    op.create_table(
        "campaign_message_templates",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("campaign_message_templates"),
        sa.Column("source_template_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("editor_type", sa.String(length=32), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("amp", sa.Text(), nullable=True),
        sa.Column("definition", JSON, nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_message_templates"),
    )

    op.create_table(
        "campaign_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("campaign_messages"),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("content", JSON, nullable=False),
        sa.Column("render_options", JSON, nullable=True),
        sa.Column("push", JSON, nullable=True),
        sa.Column("template_id", sa.String(length=32), nullable=True),
        sa.Column("image_id", BIGINT, nullable=True),
        sa.Column("details", JSON, nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _fk("campaign_messages", "campaign_id", "campaigns"),
        _fk("campaign_messages", "template_id", "campaign_message_templates", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_messages"),
    )
    op.create_index("ix_campaign_messages_campaign", "campaign_messages", ["campaign_id", "position"])

    op.create_table(
        "campaign_send_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("campaign_send_jobs"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=32), nullable=True),
        sa.Column("planned", sa.Boolean(), nullable=False),
        sa.Column("plan", JSON, nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("in_flight_reports", JSON, nullable=True),
        sa.Column("work_item_id", sa.BigInteger(), nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        _fk("campaign_send_jobs", "id", "campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_send_jobs"),
    )

    op.create_table(
        "campaign_estimations",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("campaign_estimations"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("estimated_recipient_count", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.BigInteger(), nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _fk("campaign_estimations", "id", "campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_estimations"),
    )

    op.create_table(
        "campaign_recipients",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        *_account("campaign_recipients"),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivery_id", sa.String(length=32), nullable=True),
        _fk("campaign_recipients", "message_id", "campaign_messages"),
        _fk("campaign_recipients", "profile_id", "profiles"),
        sa.PrimaryKeyConstraint("message_id", "profile_id", name="pk_campaign_recipients"),
    )
    op.create_index("ix_campaign_recipients_due", "campaign_recipients",
                    ["message_id", "status", "due_at", "profile_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_recipients_due", table_name="campaign_recipients")
    op.drop_table("campaign_recipients")
    op.drop_table("campaign_estimations")
    op.drop_table("campaign_send_jobs")
    op.drop_index("ix_campaign_messages_campaign", table_name="campaign_messages")
    op.drop_table("campaign_messages")
    op.drop_table("campaign_message_templates")
    for name in ("name", "scheduled", "updated", "created"):
        op.drop_index(f"ix_campaigns_account_{name}", table_name="campaigns")
    op.drop_table("campaigns")
