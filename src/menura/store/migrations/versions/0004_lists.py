"""lists, list members, pending double opt-in subscriptions, profile bulk jobs

Revision ID: 0004_lists
Revises: 0003_events
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0004_lists"
down_revision = "0003_events"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TS = menura.store.types.UtcDateTime(timezone=True)


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                   ondelete="CASCADE")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}",
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "lists",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("opt_in_process", sa.String(16), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _account_fk("lists"),
        sa.PrimaryKeyConstraint("id", name="pk_lists"),
    )
    op.create_index("ix_lists_account_created", "lists", ["account_id", "created"])
    op.create_index("ix_lists_account_name", "lists", ["account_id", "name"])
    op.create_index("ix_lists_account_updated", "lists", ["account_id", "updated"])
    op.create_table(
        "list_members",
        sa.Column("list_id", sa.String(32), nullable=False),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("joined_group_at", TS, nullable=False),
        _fk("list_members", "list_id", "lists"),
        _fk("list_members", "profile_id", "profiles"),
        _account_fk("list_members"),
        sa.PrimaryKeyConstraint("list_id", "profile_id", name="pk_list_members"),
    )
    op.create_index("ix_list_members_list_joined", "list_members", ["list_id", "joined_group_at", "profile_id"])
    op.create_index("ix_list_members_account_profile", "list_members", ["account_id", "profile_id"])
    op.create_table(
        "list_pending_subscriptions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("list_id", sa.String(32), nullable=False),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _account_fk("list_pending_subscriptions"),
        _fk("list_pending_subscriptions", "list_id", "lists"),
        _fk("list_pending_subscriptions", "profile_id", "profiles"),
        sa.PrimaryKeyConstraint("id", name="pk_list_pending_subscriptions"),
        sa.UniqueConstraint("list_id", "profile_id", name="uq_list_pending_subscriptions_list_id_profile_id"),
    )
    op.create_index("ix_list_pending_subscriptions_profile", "list_pending_subscriptions",
                    ["account_id", "profile_id"])
    op.create_table(
        "profile_bulk_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("completed_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("skipped_count", sa.Integer(), nullable=False),
        sa.Column("list_ids", JSON, nullable=False),
        sa.Column("list_id", sa.String(32), nullable=True),
        sa.Column("segment_id", sa.String(32), nullable=True),
        sa.Column("work_item_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        _account_fk("profile_bulk_jobs"),
        sa.PrimaryKeyConstraint("id", name="pk_profile_bulk_jobs"),
    )
    op.create_index("ix_profile_bulk_jobs_listing", "profile_bulk_jobs", ["account_id", "kind", "created_at", "id"])
    op.create_table(
        "profile_bulk_job_inputs",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("rows", JSON, nullable=False),
        _fk("profile_bulk_job_inputs", "job_id", "profile_bulk_jobs"),
        sa.PrimaryKeyConstraint("job_id", name="pk_profile_bulk_job_inputs"),
    )
    op.create_table(
        "profile_bulk_job_errors",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("pointer", sa.String(255), nullable=True),
        sa.Column("original_payload", JSON, nullable=True),
        _fk("profile_bulk_job_errors", "job_id", "profile_bulk_jobs"),
        sa.PrimaryKeyConstraint("id", name="pk_profile_bulk_job_errors"),
        sa.UniqueConstraint("job_id", "row_index", name="uq_profile_bulk_job_errors_job_id_row_index"),
    )
    op.create_table(
        "profile_bulk_job_profiles",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("profile_id", sa.String(32), nullable=False),
        _fk("profile_bulk_job_profiles", "job_id", "profile_bulk_jobs"),
        _fk("profile_bulk_job_profiles", "profile_id", "profiles"),
        sa.PrimaryKeyConstraint("job_id", "profile_id", name="pk_profile_bulk_job_profiles"),
    )
    op.create_index("ix_profile_bulk_job_profiles_profile", "profile_bulk_job_profiles", ["profile_id"])


def downgrade() -> None:
    op.drop_index("ix_profile_bulk_job_profiles_profile", table_name="profile_bulk_job_profiles")
    op.drop_table("profile_bulk_job_profiles")
    op.drop_table("profile_bulk_job_errors")
    op.drop_table("profile_bulk_job_inputs")
    op.drop_index("ix_profile_bulk_jobs_listing", table_name="profile_bulk_jobs")
    op.drop_table("profile_bulk_jobs")
    op.drop_index("ix_list_pending_subscriptions_profile", table_name="list_pending_subscriptions")
    op.drop_table("list_pending_subscriptions")
    op.drop_index("ix_list_members_account_profile", table_name="list_members")
    op.drop_index("ix_list_members_list_joined", table_name="list_members")
    op.drop_table("list_members")
    op.drop_index("ix_lists_account_updated", table_name="lists")
    op.drop_index("ix_lists_account_name", table_name="lists")
    op.drop_index("ix_lists_account_created", table_name="lists")
    op.drop_table("lists")
