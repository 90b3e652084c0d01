"""Tables of the events area: metrics, events, discovered metric properties, custom metrics,
mapped metrics, and the ingest staging rows (and intake log offsets) that make an accepted (202) event
durable."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime

metrics = Table(
    "metrics",
    metadata,
    # Klaviyo's metric ids are short alphanumeric strings ("Y6nRLr").
    Column("id", String(16), primary_key=True),
    account_fk(),
    Column("name", String(128), nullable=False),
    # The integration key ("api", "klaviyo", "shopify", ...): one metric per name and integration.
    Column("service", String(64), nullable=False),
    Column("integration_name", String(128), nullable=False),
    Column("integration_category", String(128), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "name", "service"),
)

events = Table(
    "events",
    metadata,
    # ULID: time-ordered, so inserts append to the primary key index.
    Column("id", String(26), primary_key=True),
    # No foreign keys on purpose: this is the append-heavy table; profile deletion and merges go
    # through the profile hooks, account deletion through delete_account_data.
    Column("account_id", String(32), nullable=False),
    Column("metric_id", String(16), nullable=False),
    Column("profile_id", String(32), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("properties", Json, nullable=False),
    Column("value", Float),
    Column("value_currency", String(16)),
    # De-duplication key within (profile, metric); NULL for internal events that never repeat.
    Column("unique_id", String(255)),
    Column("received_at", UtcDateTime, nullable=False),
    # One index answers "this profile's events of this metric" (segments, flows) and enforces
    # Klaviyo's rule that a unique_id is recorded once per profile and metric.
    UniqueConstraint("profile_id", "metric_id", "unique_id"),
    # Listing an account's events by time, and aggregating one metric over a time range.
    Index("ix_events_account_time", "account_id", "occurred_at", "id"),
    Index("ix_events_metric_time", "metric_id", "occurred_at", "id"),
)

metric_properties = Table(
    "metric_properties",
    metadata,
    # md5 of (metric id, property): the same property always gets the same id, without a lookup.
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("metric_id", String(16), nullable=False),
    Column("property", String(255), nullable=False),
    Column("inferred_type", String(16), nullable=False),
    Column("sample_values", Json, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Index("ix_metric_properties_metric", "metric_id", "property"),
)

custom_metrics = Table(
    "custom_metrics",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    Column("definition", Json, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "name"),
)

mapped_metrics = Table(
    "mapped_metrics",
    metadata,
    account_fk(),
    # One of Klaviyo's fixed mapping types: revenue, added_to_cart, ...
    Column("id", String(32), nullable=False),
    Column("metric_id", String(16)),
    Column("custom_metric_id", String(32)),
    Column("updated", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "id"),
)

event_ingest = Table(
    "event_ingest",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    account_fk(),
    # Which drain will pick the row up (see menura.engine.event_ingest).
    Column("generation", BigInteger, nullable=False),
    # msgspec-encoded list of validated entries: exactly what was accepted, nothing re-parsed.
    Column("payload", LargeBinary, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    # Set for bulk jobs so their outcome (errors of bad rows) can be recorded.
    Column("job_id", String(64)),
)

ingest_state = Table(
    "event_ingest_state",
    metadata,
    # A single row: the generation new staging rows join. A drain bumps it before reading rows.
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

intake_log_offsets = Table(
    "intake_log_offsets",
    metadata,
    # How far a segment of the intake log (menura.store.intake_log) has been expanded into events.
    Column("segment", String(64), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)

event_bulk_jobs = Table(
    "event_bulk_jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    account_fk(),
    Column("status", String(16), nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("completed_count", Integer, nullable=False, default=0),
    Column("failed_count", Integer, nullable=False, default=0),
    # [{"index": n, "detail": "..."}] for rows that could not be recorded.
    Column("errors", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
)
