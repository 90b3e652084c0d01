"""Tables of templates, universal content blocks, images and web feeds."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime

templates = Table(
    "templates",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    # CODE, USER_DRAGGABLE (hybrid HTML with editable regions) or SYSTEM_DRAGGABLE (definition).
    Column("editor_type", String(32), nullable=False),
    # CODE/USER_DRAGGABLE: exactly the HTML given (byte for byte); SYSTEM_DRAGGABLE: rendered definition.
    Column("html", Text, nullable=False),
    Column("text", Text),
    Column("amp", Text),
    Column("definition", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Index("ix_templates_account_created", "account_id", "created"),
    Index("ix_templates_account_updated", "account_id", "updated"),
    Index("ix_templates_account_name", "account_id", "name"),
)

universal_content = Table(
    "template_universal_content",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    Column("definition", Json, nullable=False),
    Column("content_type", String(16), nullable=False),  # block | section (filterable)
    Column("block_type", String(32), nullable=False),  # definition.type (filterable)
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Index("ix_template_universal_content_account_created", "account_id", "created"),
    Index("ix_template_universal_content_account_name", "account_id", "name"),
)

images = Table(
    "images",
    metadata,
    # Klaviyo's image ids are integers shown as strings ("7").
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    Column("format", String(16), nullable=False),  # jpeg | png | gif
    Column("size", Integer, nullable=False),  # bytes
    Column("hidden", Boolean, nullable=False),
    Column("storage_key", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Names are unique per account: a clashing upload gets a suffix.
    UniqueConstraint("account_id", "name"),
    Index("ix_images_account_updated_at", "account_id", "updated_at"),
)

web_feeds = Table(
    "web_feeds",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    # Templates refer to a feed by name (`feeds.Blog_posts`), so names are unique per account.
    Column("name", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("request_method", String(8), nullable=False),  # get | post
    Column("content_type", String(8), nullable=False),  # json | xml
    Column("status", String(64)),  # cache status; NULL until the first fetch finishes
    Column("content", Json),  # the parsed feed, as templates see it
    Column("fetched_at", UtcDateTime),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),  # consecutive failed refreshes
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "name"),
    Index("ix_web_feeds_account_created", "account_id", "created"),
)
