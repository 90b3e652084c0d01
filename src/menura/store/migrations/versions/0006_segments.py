"""segments, segment members, membership history; a safe text-to-timestamp function (PostgreSQL)

Revision ID: 0006_segments
Revises: 0005_templates
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0006_segments"
down_revision = "0005_templates"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TS = menura.store.types.UtcDateTime(timezone=True)

# Segment conditions compare dates kept as text in JSON properties. A cast that fails would abort
# the whole query, so anything that is not an ISO 8601 date or datetime becomes NULL. Naive
# values are UTC (Klaviyo evaluates segment dates in UTC). Mirrored on SQLite by a Python function.
MENURA_TS = r"""
CREATE OR REPLACE FUNCTION menura_ts(value text) RETURNS timestamptz AS $$
BEGIN
  IF value IS NULL OR value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?$' THEN
    RETURN NULL;
  END IF;
  IF value ~ '(Z|[+-][0-9]{2}:[0-9]{2})$' THEN
    RETURN value::timestamptz;
  END IF;
  RETURN (value || '+00:00')::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END
$$ LANGUAGE plpgsql IMMUTABLE
"""


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("dependencies", JSON, nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_starred", sa.Boolean(), nullable=False),
        sa.Column("is_processing", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.Column("computed_at", TS, nullable=True),
        _account_fk("segments"),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
    )
    op.create_index("ix_segments_account_created", "segments", ["account_id", "created", "id"])
    op.create_index("ix_segments_account_updated", "segments", ["account_id", "updated", "id"])
    op.create_index("ix_segments_account_name", "segments", ["account_id", "name", "id"])
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.String(16), nullable=False),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        # No foreign keys: see menura.store.segment_tables.
        sa.PrimaryKeyConstraint("segment_id", "profile_id", name="pk_segment_members"),
    )
    op.create_index("ix_segment_members_segment_joined", "segment_members", ["segment_id", "joined_at", "profile_id"])
    op.create_index("ix_segment_members_account_profile", "segment_members", ["account_id", "profile_id"])
    op.create_table(
        "segment_membership_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("segment_id", sa.String(16), nullable=False),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segment_membership_changes"),
    )
    op.create_index("ix_segment_membership_changes_segment_at", "segment_membership_changes", ["segment_id", "at"])
    op.create_index("ix_segment_membership_changes_account_profile", "segment_membership_changes",
                    ["account_id", "profile_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(MENURA_TS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS menura_ts(text)")
    op.drop_table("segment_membership_changes")
    op.drop_table("segment_members")
    op.drop_table("segments")
