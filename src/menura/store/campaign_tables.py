"""Tables of the campaigns area: campaigns, their messages (with each message's own, non-reusable
copy of a template), send jobs, recipient estimations, and the per-recipient send ledger.

The ledger (`campaign_recipients`) has one row per (campaign message, profile): planning a send
inserts rows with ON CONFLICT DO NOTHING and delivering moves each row through
pending -> sending -> sent|skipped|failed, so a resumed job never plans or sends a recipient twice.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime

campaigns = Table(
    "campaigns",
    metadata,
    # 26-character ULID, as Klaviyo's campaign ids.
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("name", String(255), nullable=False),
    # email | sms | mobile_push: the channel of the campaign's message(s), for the channel filter.
    Column("channel", String(16), nullable=False),
    # Klaviyo's display status: Draft, Scheduled, Sending, Sent, Cancelled, ...
    Column("status", String(48), nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    # List and segment ids, in the order given.
    Column("included", Json, nullable=False),
    Column("excluded", Json, nullable=False),
    # The current revision's shapes: {"method": "static", "datetime": ..., "options": {...}}, ...
    Column("send_strategy", Json, nullable=False),
    Column("send_options", Json, nullable=False),
    # As given; None values mean "the account's tracking settings decide".
    Column("tracking_options", Json),
    # Fields only later revisions know (description, color, builder, send settings).
    Column("details", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("scheduled_at", UtcDateTime),
    Column("send_time", UtcDateTime),
    Index("ix_campaigns_account_created", "account_id", "created", "id"),
    Index("ix_campaigns_account_updated", "account_id", "updated", "id"),
    Index("ix_campaigns_account_scheduled", "account_id", "scheduled_at", "id"),
    Index("ix_campaigns_account_name", "account_id", "name", "id"),
)

# Each message's own template: Klaviyo assigns "a non-reusable version of the template", so the
# copy never shows among the account's templates and later edits of the original don't leak in.
campaign_message_templates = Table(
    "campaign_message_templates",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("source_template_id", String(32)),
    Column("name", String(255), nullable=False),
    Column("editor_type", String(32), nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text),
    Column("amp", Text),
    Column("definition", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
)

campaign_messages = Table(
    "campaign_messages",
    metadata,
    Column("id", String(32), primary_key=True),
    account_fk(),
    Column("campaign_id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("label", String(255)),
    # Channel content as given: subject/preview_text/from_* (email), body/media_url (sms), push fields.
    Column("content", Json, nullable=False),
    # SMS render options; push: {"notification_type", "kv_pairs", "options"}.
    Column("render_options", Json),
    Column("push", Json),
    Column("template_id", String(32),
           ForeignKey("campaign_message_templates.id", ondelete="SET NULL")),
    Column("image_id", BigInteger().with_variant(Integer(), "sqlite")),
    Column("details", Json),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Index("ix_campaign_messages_campaign", "campaign_id", "position"),
)

campaign_send_jobs = Table(
    "campaign_send_jobs",
    metadata,
    # Klaviyo's send job id is the campaign id.
    Column("id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    account_fk(),
    # queued | processing | complete | cancelled
    Column("status", String(16), nullable=False),
    # Planning progress: the last profile id planned, and whether the audience is exhausted.
    Column("cursor", String(32)),
    Column("planned", Boolean, nullable=False, default=False),
    # Strategy facts fixed when planning starts (throttle size, counted audience).
    Column("plan", Json),
    Column("recipients", Integer, nullable=False, default=0),
    Column("sent", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    # Batches found in flight after a crash (possibly delivered twice): [{"count", "first", "last", "at"}].
    Column("in_flight_reports", Json),
    Column("work_item_id", BigInteger),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
)

campaign_estimations = Table(
    "campaign_estimations",
    metadata,
    # One per campaign: the estimation job and the estimation share the campaign's id.
    Column("id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    account_fk(),
    # queued | processing | complete | cancelled
    Column("status", String(16), nullable=False),
    Column("estimated_recipient_count", Integer, nullable=False, default=0),
    Column("work_item_id", BigInteger),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
)

campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("message_id", String(32), ForeignKey("campaign_messages.id", ondelete="CASCADE"), primary_key=True),
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    account_fk(),
    Column("campaign_id", String(32), nullable=False),
    # pending | sending | sent | skipped | failed | cancelled
    Column("status", String(16), nullable=False),
    # Why skipped or failed: no_consent, smart_sending, suppressed, render_error, ...
    Column("reason", String(48)),
    # When this recipient's message is due (strategy: local time zone, throttle slot, best hour).
    Column("due_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    # The delivery record (outbound message) of this recipient's message.
    Column("delivery_id", String(32)),
    Index("ix_campaign_recipients_due", "message_id", "status", "due_at", "profile_id"),
)
