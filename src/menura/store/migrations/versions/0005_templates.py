"""templates, universal content, images, web feeds

Revision ID: 0005_templates
Revises: 0004_lists
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0005_templates"
down_revision = "0004_lists"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TS = menura.store.types.UtcDateTime(timezone=True)


def _account(table: str) -> list:
    return [sa.Column("account_id", sa.String(length=32), nullable=False),
            sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                    ondelete="CASCADE")]


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("templates"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("editor_type", sa.String(length=32), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("amp", sa.Text(), nullable=True),
        sa.Column("definition", JSON, nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
    )
    op.create_index("ix_templates_account_created", "templates", ["account_id", "created"])
    op.create_index("ix_templates_account_updated", "templates", ["account_id", "updated"])
    op.create_index("ix_templates_account_name", "templates", ["account_id", "name"])

    op.create_table(
        "template_universal_content",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("template_universal_content"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("block_type", sa.String(length=32), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_template_universal_content"),
    )
    op.create_index("ix_template_universal_content_account_created", "template_universal_content",
                    ["account_id", "created"])
    op.create_index("ix_template_universal_content_account_name", "template_universal_content",
                    ["account_id", "name"])

    op.create_table(
        "images",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        *_account("images"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.UniqueConstraint("account_id", "name", name="uq_images_account_id_name"),
    )
    op.create_index("ix_images_account_updated_at", "images", ["account_id", "updated_at"])

    op.create_table(
        "web_feeds",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_account("web_feeds"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("request_method", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("content", JSON, nullable=True),
        sa.Column("fetched_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_feeds"),
        sa.UniqueConstraint("account_id", "name", name="uq_web_feeds_account_id_name"),
    )
    op.create_index("ix_web_feeds_account_created", "web_feeds", ["account_id", "created"])


def downgrade() -> None:
    op.drop_table("web_feeds")
    op.drop_table("images")
    op.drop_table("template_universal_content")
    op.drop_table("templates")
