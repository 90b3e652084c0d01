"""Lists, their members, pending double opt-in subscriptions, and the profile bulk jobs
(import, suppress, unsuppress) with their inputs, per-row errors and resulting profiles."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime


def _profile_fk() -> Column[str]:
    # A deleted profile takes its memberships, pending subscriptions and job links with it.
    return Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False)


lists = Table(
    "lists",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    # single_opt_in | double_opt_in
    Column("opt_in_process", String(16), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Index("ix_lists_account_created", "account_id", "created"),
    Index("ix_lists_account_name", "account_id", "name"),
    Index("ix_lists_account_updated", "account_id", "updated"),
)

list_members = Table(
    "list_members",
    metadata,
    Column("list_id", String(32), ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    account_fk(),
    # When the profile joined the list: Klaviyo's `joined_group_at`, the listing's sort key.
    Column("joined_group_at", UtcDateTime, nullable=False),
    Index("ix_list_members_list_joined", "list_id", "joined_group_at", "profile_id"),
    Index("ix_list_members_account_profile", "account_id", "profile_id"),
)

# A subscription to a double opt-in list waiting for its confirmation link to be followed.
# `channels` holds what will be granted on confirmation (consent details per channel).
list_pending_subscriptions = Table(
    "list_pending_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("list_id", String(32), ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
    _profile_fk(),
    Column("channels", Json, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    UniqueConstraint("list_id", "profile_id"),
    Index("ix_list_pending_subscriptions_profile", "account_id", "profile_id"),
)

# One row per bulk job of the Profiles category. `kind`: import | suppress | unsuppress.
profile_bulk_jobs = Table(
    "profile_bulk_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("kind", String(16), nullable=False),
    # queued | processing | complete | cancelled (Klaviyo's job statuses)
    Column("status", String(16), nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("completed_count", Integer, nullable=False, default=0),
    Column("failed_count", Integer, nullable=False, default=0),
    Column("skipped_count", Integer, nullable=False, default=0),
    # Lists the job refers to (import: lists to add to; suppress: the list whose members it takes).
    Column("list_ids", Json, nullable=False),
    Column("list_id", String(32)),
    Column("segment_id", String(32)),
    Column("work_item_id", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("expires_at", UtcDateTime),
    Index("ix_profile_bulk_jobs_listing", "account_id", "kind", "created_at", "id"),
)

# The job's input rows, kept apart so listing jobs never reads megabytes of payload; dropped
# when the job completes.
profile_bulk_job_inputs = Table(
    "profile_bulk_job_inputs",
    metadata,
    Column("job_id", String(32), ForeignKey("profile_bulk_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("rows", Json, nullable=False),
)

profile_bulk_job_errors = Table(
    "profile_bulk_job_errors",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("job_id", String(32), ForeignKey("profile_bulk_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("row_index", Integer, nullable=False),
    Column("code", String(64), nullable=False),
    Column("title", String(255), nullable=False),
    Column("detail", Text, nullable=False),
    Column("pointer", String(255)),
    Column("original_payload", Json),
    UniqueConstraint("job_id", "row_index"),
)

# The profiles a job created or updated (the job's `profiles` relationship).
profile_bulk_job_profiles = Table(
    "profile_bulk_job_profiles",
    metadata,
    Column("job_id", String(32), ForeignKey("profile_bulk_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_profile_bulk_job_profiles_profile", "profile_id"),
)
