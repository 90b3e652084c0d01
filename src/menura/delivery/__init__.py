"""Delivery: email over SMTP (or captured in the outbox), SMS through a provider (or captured),
tracking links, bounces, and every outcome recorded as Klaviyo's events.

Contract for senders (the campaign dispatcher, flows):

    send_email(db_or_conn, *, account_id, profile_id, to, message: OutgoingEmail, send_key, attribution)
        -> DeliveryResult
    send_emails(db, jobs: list[EmailJob]) -> list[DeliveryResult]      # a batch, sent concurrently
    send_sms(db_or_conn, *, account_id, profile_id, to, message: OutgoingSms, send_key, attribution)
        -> DeliveryResult
    recipient_links(db, account_id=..., send_key=...) -> {"unsubscribe", "manage_preferences", "web_view"}

- `send_key` identifies one send to one recipient (e.g. "campaign:<message id>:<profile id>"). A send
  key whose message reached a final status is never sent again: calling again returns the recorded
  result with `duplicate=True`. One interrupted between hand-over and recording is sent again and
  reported with `resent=True` (the only possible duplicate: the in-flight batch).
- With a Database, the message is sent now (SMTP relay / SMS provider) and the outcome recorded
  before returning. With a Connection (inside the caller's transaction), it is only accepted
  ("queued") and sent by durable work after the caller commits: exactly once with the caller's effects.
- With no relay (MENURA_SMTP_URL) or provider (MENURA_SMS_URL) configured, messages are captured in the
  outbox (status "captured"), browsable with `menura outbox` and at /outbox, and count as received.
- Marketing messages (the default) are not sent to a profile that unsubscribed or was suppressed since
  the audience was resolved: status "skipped".
- `attribution` holds the event properties every outcome event carries: `$message`, `$flow`,
  `Campaign Name`, `Subject`, `$message_interaction`, ... as Klaviyo names them.
- Outcomes: "Received Email" when the relay accepts (or the outbox captures) the message, "Bounced
  Email" (+ suppression on hard bounces), "Opened Email" / "Clicked Email" / "Unsubscribed" from the
  tracking links, "Marked Email as Spam" from complaint reports; "Received SMS" / "Failed to Deliver
  SMS" from the provider's delivery reports, "Clicked SMS". Relay down or 4xx: status "deferred",
  retried with backoff by durable work (relay down: never given up).
- Render templates with `RenderEnv(links=recipient_links(...))` so {% unsubscribe %} and friends
  print this recipient's signed links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from menura.delivery.context import DeliveryContext, delivery_context, use_settings
from menura.delivery.message import OutgoingEmail, TrackingOptions
from menura.delivery.sending import DeliveryResult, EmailJob, queue_email
from menura.delivery.sending import send_emails as _send_batch
from menura.delivery.sms import OutgoingSms
from menura.delivery.sms_flow import send_sms as _send_sms
from menura.delivery.tracking import delivery_id
from menura.domain.tracking_settings import UtmContext


def send_email(db_or_conn: Any, *, account_id: str, profile_id: str | None, to: str, message: OutgoingEmail,
               send_key: str, attribution: Mapping[str, Any] | None = None, context: DeliveryContext | None = None,
               now: datetime | None = None) -> DeliveryResult:
    """Send one email (Database) or accept it in the caller's transaction (Connection). See the module
    docstring for the contract."""
    ctx = context or delivery_context(db_or_conn)
    job = EmailJob(account_id, profile_id, to, message, send_key, attribution or {})
    if isinstance(db_or_conn, Connection):
        return queue_email(db_or_conn, job, ctx=ctx, now=now or ctx.now())
    return _send_batch(db_or_conn, [job], ctx=ctx, now=now)[0]


def send_emails(db: Any, jobs: Sequence[EmailJob], *, context: DeliveryContext | None = None,
                now: datetime | None = None) -> list[DeliveryResult]:
    """Send a batch: built, recorded, and handed to the relay's connection pool concurrently."""
    ctx = context or delivery_context(db)
    return _send_batch(db, jobs, ctx=ctx, now=now)


def send_sms(db_or_conn: Any, *, account_id: str, profile_id: str | None, to: str, message: OutgoingSms,
             send_key: str, attribution: Mapping[str, Any] | None = None, context: DeliveryContext | None = None,
             now: datetime | None = None) -> DeliveryResult:
    ctx = context or delivery_context(db_or_conn)
    return _send_sms(db_or_conn, account_id=account_id, profile_id=profile_id, to=to, message=message,
                     send_key=send_key, attribution=attribution or {}, ctx=ctx, now=now)


def recipient_links(db_or_conn: Any, *, account_id: str, send_key: str,
                    context: DeliveryContext | None = None) -> dict[str, str]:
    """The unsubscribe, manage-preferences and web-view URLs of the message for this send key, for the
    template language (`RenderEnv.links`): known before the message is built."""
    ctx = context or delivery_context(db_or_conn)
    return ctx.links(account_id, delivery_id(account_id, send_key)).template_links()


__all__ = ["DeliveryContext", "DeliveryResult", "EmailJob", "OutgoingEmail", "OutgoingSms", "TrackingOptions",
           "UtmContext", "delivery_context", "recipient_links", "send_email", "send_emails", "send_sms",
           "use_settings"]

# Registers the double opt-in confirmation email with the subscriptions rules.
from menura.delivery import confirmations as _confirmations  # noqa: E402, F401
