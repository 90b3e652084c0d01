"""events, metrics, metric properties, custom and mapped metrics, ingest staging

Revision ID: 0003_events
Revises: 0002_profiles
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import menura.store.types

revision = "0003_events"
down_revision = "0002_profiles"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TS = menura.store.types.UtcDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("integration_name", sa.String(128), nullable=False),
        sa.Column("integration_category", sa.String(128), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _account_fk("metrics"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.UniqueConstraint("account_id", "name", "service", name="uq_metrics_account_id_name_service"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("metric_id", sa.String(16), nullable=False),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("value_currency", sa.String(16), nullable=True),
        sa.Column("unique_id", sa.String(255), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("profile_id", "metric_id", "unique_id", name="uq_events_profile_id_metric_id_unique_id"),
    )
    op.create_index("ix_events_account_time", "events", ["account_id", "occurred_at", "id"])
    op.create_index("ix_events_metric_time", "events", ["metric_id", "occurred_at", "id"])
    op.create_table(
        "metric_properties",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("metric_id", sa.String(16), nullable=False),
        sa.Column("property", sa.String(255), nullable=False),
        sa.Column("inferred_type", sa.String(16), nullable=False),
        sa.Column("sample_values", JSON, nullable=False),
        sa.Column("created", TS, nullable=False),
        _account_fk("metric_properties"),
        sa.PrimaryKeyConstraint("id", name="pk_metric_properties"),
    )
    op.create_index("ix_metric_properties_metric", "metric_properties", ["metric_id", "property"])
    op.create_table(
        "custom_metrics",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        _account_fk("custom_metrics"),
        sa.PrimaryKeyConstraint("id", name="pk_custom_metrics"),
        sa.UniqueConstraint("account_id", "name", name="uq_custom_metrics_account_id_name"),
    )
    op.create_table(
        "mapped_metrics",
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("metric_id", sa.String(16), nullable=True),
        sa.Column("custom_metric_id", sa.String(32), nullable=True),
        sa.Column("updated", TS, nullable=False),
        _account_fk("mapped_metrics"),
        sa.UniqueConstraint("account_id", "id", name="uq_mapped_metrics_account_id_id"),
    )
    op.create_table(
        "event_ingest",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        _account_fk("event_ingest"),
        sa.PrimaryKeyConstraint("id", name="pk_event_ingest"),
    )
    op.create_table(
        "event_ingest_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_ingest_state"),
    )
    op.execute("INSERT INTO event_ingest_state (id, generation) VALUES (1, 1)")
    op.create_table(
        "event_bulk_jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("completed_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("errors", JSON, nullable=True),
        sa.Column("created", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        _account_fk("event_bulk_jobs"),
        sa.PrimaryKeyConstraint("id", name="pk_event_bulk_jobs"),
    )


def downgrade() -> None:
    op.drop_table("event_bulk_jobs")
    op.drop_table("event_ingest_state")
    op.drop_table("event_ingest")
    op.drop_table("mapped_metrics")
    op.drop_table("custom_metrics")
    op.drop_index("ix_metric_properties_metric", table_name="metric_properties")
    op.drop_table("metric_properties")
    op.drop_index("ix_events_metric_time", table_name="events")
    op.drop_index("ix_events_account_time", table_name="events")
    op.drop_table("events")
    op.drop_table("metrics")
