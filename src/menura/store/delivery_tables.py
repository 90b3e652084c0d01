"""Tables of the delivery area: every outgoing message (the outbox and the sent-message store in one
table), its delivery attempts, bounce records, inbound messages, and the account's tracking settings.

`outbound_messages` has one row per (account, send key): a retried send finds the row instead of
sending again. Bodies are stored zlib-compressed: the HTML for the web view of every message, the
whole MIME message only while it may still have to be (re)sent or when it is captured in the outbox.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from menura.store.tables import account_fk, metadata
from menura.store.types import Json, UtcDateTime

# Message statuses. "queued": accepted in the caller's transaction, sent by a work item; "sending":
# handed to a transport, outcome not yet recorded; "deferred": waiting for a retry (relay down, 4xx);
# "captured": kept in the outbox because no relay is configured.
QUEUED = "queued"
SENDING = "sending"
DEFERRED = "deferred"
SENT = "sent"
CAPTURED = "captured"
BOUNCED = "bounced"
FAILED = "failed"
DROPPED = "dropped"
SKIPPED = "skipped"  # not sent: the profile could no longer receive marketing on this channel
FINAL_STATUSES = frozenset({SENT, CAPTURED, BOUNCED, FAILED, DROPPED, SKIPPED})

outbound_messages = Table(
    "outbound_messages",
    metadata,
    # 26 lowercase base32 characters derived from (account, send key): see tracking.delivery_id.
    # Also the Message-ID's local part and the key of every tracking token.
    Column("id", String(32), primary_key=True),
    account_fk(),
    # email | sms
    Column("channel", String(8), nullable=False),
    # The caller's idempotency key, e.g. "campaign:<id>:<profile id>".
    Column("send_key", String(255), nullable=False),
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE")),
    Column("to_address", String(320), nullable=False),
    Column("from_address", String(320), nullable=False),
    # The envelope sender (VERP bounce address) used for every attempt.
    Column("mail_from", String(320)),
    Column("subject", Text),
    # Marketing messages are re-checked against consent before each attempt.
    Column("marketing", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False),
    # outbox | smtp | twilio | ...
    Column("transport", String(16), nullable=False),
    # The Message-ID header (email) or the provider's message id (SMS).
    Column("message_id", String(255)),
    # Event properties copied into every outcome event ($message, $flow, Campaign Name, Subject...).
    Column("attribution", Json, nullable=False),
    Column("html_z", LargeBinary),
    Column("raw_z", LargeBinary),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("next_attempt_at", UtcDateTime),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    UniqueConstraint("account_id", "send_key"),
    Index("ix_outbound_messages_account_created", "account_id", "created"),
    Index("ix_outbound_messages_created", "created"),
    Index("ix_outbound_messages_message_id", "message_id"),
    Index("ix_outbound_messages_profile", "profile_id", "channel", "created"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("outbound_id", String(32), ForeignKey("outbound_messages.id", ondelete="CASCADE"), nullable=False),
    # delivered | captured | hard_bounce | soft_bounce | deferred | relay_down | failed
    Column("outcome", String(16), nullable=False),
    Column("code", Integer),
    Column("detail", Text),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_delivery_attempts_outbound", "outbound_id"),
)

bounce_records = Table(
    "bounce_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    account_fk(),
    Column("outbound_id", String(32), ForeignKey("outbound_messages.id", ondelete="CASCADE")),
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="CASCADE")),
    Column("recipient", String(320), nullable=False),
    # hard | soft | complaint
    Column("kind", String(16), nullable=False),
    # smtp | dsn | ses | sendgrid | arf
    Column("source", String(16), nullable=False),
    Column("status", String(16)),
    Column("diagnostic", Text),
    Column("created", UtcDateTime, nullable=False),
    # One record per message, recipient and kind: a DSN and a webhook for the same bounce count once.
    UniqueConstraint("outbound_id", "kind"),
    Index("ix_bounce_records_profile", "profile_id", "created"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE")),
    # sms | email
    Column("channel", String(8), nullable=False),
    Column("from_address", String(320), nullable=False),
    Column("to_address", String(320), nullable=False),
    Column("body", Text, nullable=False),
    Column("profile_id", String(32), ForeignKey("profiles.id", ondelete="SET NULL")),
    # The provider's id (Twilio MessageSid): a webhook delivered twice is recorded once.
    Column("provider_id", String(64)),
    # opt_out | opt_in | help | bounce | complaint | unsubscribe | none
    Column("action", String(16), nullable=False),
    Column("received", UtcDateTime, nullable=False),
    UniqueConstraint("channel", "provider_id"),
    Index("ix_inbound_messages_account_received", "account_id", "received"),
)

tracking_settings = Table(
    "tracking_settings",
    metadata,
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("auto_add_parameters", Boolean, nullable=False),
    # {"utm_source": {...}, "utm_medium": {...}, ..., "custom_parameters": [...]}
    Column("parameters", Json, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
)
