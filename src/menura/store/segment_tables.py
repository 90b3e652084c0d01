"""Tables of the segments area: definitions, current members (entry time), and the history of
entries and exits that the segment reports read."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime

segments = Table(
    "segments",
    metadata,
    # Short mixed-case alphanumeric id, as Klaviyo's ("Y6nRLr").
    Column("id", String(16), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    # The definition exactly as accepted (condition_groups), echoed back by the API.
    Column("definition", Json, nullable=False),
    # What the definition reads, so hooks re-evaluate only the segments a change can affect:
    # {"metrics": [...], "groups": [...], "profile": bool, "time_relative": bool, "refresh_seconds": n}
    Column("dependencies", Json, nullable=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("is_starred", Boolean, nullable=False, default=False),
    Column("is_processing", Boolean, nullable=False, default=True),
    # Bumped on every definition change; a recompute job only lands for the version it was made for.
    Column("version", Integer, nullable=False, default=1),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("computed_at", UtcDateTime),
    Index("ix_segments_account_created", "account_id", "created", "id"),
    Index("ix_segments_account_updated", "account_id", "updated", "id"),
    Index("ix_segments_account_name", "account_id", "name", "id"),
)

segment_members = Table(
    "segment_members",
    metadata,
    # No foreign keys on purpose: a full compute writes thousands of rows at once and a per-row
    # constraint check doubled its cost. Deleting a segment, a profile (privacy deletion, merge) or
    # an account removes these rows explicitly (store/segments.py, store/accounts.py).
    Column("segment_id", String(16), primary_key=True),
    Column("profile_id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    # When the profile entered the segment: Klaviyo's `joined_group_at`.
    Column("joined_at", UtcDateTime, nullable=False),
    Index("ix_segment_members_segment_joined", "segment_id", "joined_at", "profile_id"),
    Index("ix_segment_members_account_profile", "account_id", "profile_id"),
)

# Every entry (entered=True) and exit, in order: members added/removed and totals over time.
segment_membership_changes = Table(
    "segment_membership_changes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", String(32), nullable=False),
    # No foreign keys (see segment_members): deleting a segment or a profile removes these rows.
    Column("segment_id", String(16), nullable=False),
    Column("profile_id", String(32), nullable=False),
    Column("entered", Boolean, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_segment_membership_changes_segment_at", "segment_id", "at"),
    Index("ix_segment_membership_changes_account_profile", "account_id", "profile_id"),
)
