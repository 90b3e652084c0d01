"""Tables of the profiles area: profiles (identity, attributes and per-channel consent), list
suppressions, secondary email addresses and mobile push tokens.

Consent lives in columns of `profiles` rather than in a side table: segments and campaign audiences
filter millions of profiles on it ("email consent subscribed"), which must stay one table scan.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime

NEVER_SUBSCRIBED = "NEVER_SUBSCRIBED"


def _consent_columns(prefix: str) -> list[Column[object]]:
    """One channel's consent: state, when it was given/withdrawn, how, and when the row last changed."""
    return [
        Column(f"{prefix}_consent", String(24), nullable=False, default=NEVER_SUBSCRIBED,
               server_default=NEVER_SUBSCRIBED),
        Column(f"{prefix}_consent_timestamp", UtcDateTime),
        Column(f"{prefix}_method", String(64)),
        Column(f"{prefix}_method_detail", String(255)),
        Column(f"{prefix}_last_updated", UtcDateTime),
    ]


def _profile_fk() -> Column[str]:
    return Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False)


profiles = Table(
    "profiles",
    metadata,
    # 26-character ULID, as Klaviyo's profile ids.
    Column("id", String(32), primary_key=True),
    account_fk(),
    # Identifiers: each unique within the account (NULLs never collide on either database).
    Column("email", String(320)),
    Column("phone_number", String(32)),
    Column("external_id", String(255)),
    Column("anonymous_id", String(255)),
    Column("first_name", String(255)),
    Column("last_name", String(255)),
    Column("organization", String(255)),
    Column("locale", String(64)),
    Column("title", String(255)),
    Column("image", Text),
    Column("location", Json),
    Column("properties", Json, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("last_event_date", UtcDateTime),
    *_consent_columns("email"),
    Column("email_custom_method_detail", String(255)),
    Column("email_double_optin", Boolean),
    # Global email suppression (Klaviyo keeps at most one active reason per profile).
    Column("email_suppression_reason", String(32)),
    Column("email_suppression_timestamp", UtcDateTime),
    *_consent_columns("sms"),
    *_consent_columns("sms_transactional"),
    UniqueConstraint("account_id", "email"),
    UniqueConstraint("account_id", "phone_number"),
    UniqueConstraint("account_id", "external_id"),
    UniqueConstraint("account_id", "anonymous_id"),
    Index("ix_profiles_account_created", "account_id", "created", "id"),
    Index("ix_profiles_account_updated", "account_id", "updated", "id"),
)

# Suppression from one list's emails (e.g. unsubscribed from that list only).
profile_list_suppressions = Table(
    "profile_list_suppressions",
    metadata,
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    # No foreign key to lists: the lists area removes its suppressions when a list is deleted.
    Column("list_id", String(32), primary_key=True),
    account_fk(),
    Column("reason", String(32), nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Index("ix_profile_list_suppressions_account_list", "account_id", "list_id"),
)

# Additional email addresses of a profile (meta.patch_identifiers); unique across the account.
profile_secondary_emails = Table(
    "profile_secondary_emails",
    metadata,
    account_fk(),
    Column("email", String(320), nullable=False),
    _profile_fk(),
    Column("created", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "email"),
    Index("ix_profile_secondary_emails_profile", "profile_id"),
)

push_tokens = Table(
    "push_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    _profile_fk(),
    Column("token", String(512), nullable=False),
    # ios | android
    Column("platform", String(16), nullable=False),
    # apns | fcm
    Column("vendor", String(16), nullable=False),
    Column("enablement_status", String(24), nullable=False),
    Column("background", String(16), nullable=False),
    Column("metadata", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("recorded_date", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "token"),
    Index("ix_push_tokens_account_profile", "account_id", "profile_id"),
)
