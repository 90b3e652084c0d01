"""Table definitions. Every row belongs to an account; queries always filter by account_id."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from menura.store.types import Json, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def account_fk() -> Column[str]:
    return Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    # Klaviyo's account id is the 6-character public API key.
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("test_account", Boolean, nullable=False, default=False),
    Column("contact_information", Json, nullable=False),
    Column("industry", String(255)),
    Column("timezone", String(64), nullable=False),
    Column("preferred_currency", String(8), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("label", String(255), nullable=False, default=""),
    # sha256 of the whole key: keys are long random strings, so a fast hash is enough.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    # NULL means full access; otherwise a list such as ["profiles:read", "lists:write"].
    Column("scopes", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

server_state = Table(
    "server_state",
    metadata,
    # Small key/value facts shared by every process: the signing secret, the virtual clock.
    Column("key", String(64), primary_key=True),
    Column("value", Json, nullable=False),
)

tag_groups = Table(
    "tag_groups",
    metadata,
    Column("id", String(64), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    Column("exclusive", Boolean, nullable=False, default=False),
    Column("default", Boolean, nullable=False, default=False),
    Column("created", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "name"),
)
# Exactly one default tag group per account, even when two requests create it lazily at once.
Index("uq_tag_groups_one_default", tag_groups.c.account_id, unique=True,
      sqlite_where=tag_groups.c.default, postgresql_where=tag_groups.c.default)

tags = Table(
    "tags",
    metadata,
    Column("id", String(64), primary_key=True),
    account_fk(),
    Column("tag_group_id", String(64), ForeignKey("tag_groups.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "tag_group_id", "name"),
    Index("ix_tags_account_name", "account_id", "name"),
)

tag_assignments = Table(
    "tag_assignments",
    metadata,
    Column("tag_id", String(64), ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    # "list", "segment", "campaign" or "flow"
    Column("resource_type", String(32), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    account_fk(),
    Index("ix_tag_assignments_resource", "account_id", "resource_type", "resource_id"),
)

work_items = Table(
    "work_items",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE")),
    Column("kind", String(64), nullable=False),
    # De-duplicates enqueues: the same (kind, dedupe_key) is enqueued once.
    Column("dedupe_key", String(255)),
    Column("payload", Json, nullable=False),
    # queued | running | done | failed
    Column("status", String(16), nullable=False, default="queued"),
    Column("run_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=5),
    Column("lease_until", UtcDateTime),
    Column("claimed_by", String(128)),
    Column("progress", Json),
    Column("last_error", Text),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("finished", UtcDateTime),
    UniqueConstraint("kind", "dedupe_key"),
    Index("ix_work_items_due", "status", "run_at"),
    # maintenance.purge_work finds old done/failed items by when they finished.
    Index("ix_work_items_finished", "status", "finished"),
)
