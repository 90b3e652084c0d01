"""Every outcome of a message becomes an event with Klaviyo's metric name, attributed to the send.

Metric names (Klaviyo help center, "Email metrics reference" and "SMS metrics"): Received Email,
Opened Email, Clicked Email, Bounced Email, Dropped Email, Marked Email as Spam, Unsubscribed;
Received SMS (delivered to the recipient), Failed to Deliver SMS, Clicked SMS, and Sent SMS — which
in Klaviyo is a message the *subscriber* texted in, not one we sent.

Each event carries the send's attribution (`$message`, `$flow`, `Campaign Name`, `Subject`, ... as
the caller gave them) plus what the outcome adds (`URL` for clicks, `Bounce Type` for bounces,
`Email Domain`). Hard bounces and spam complaints suppress the profile; so do more than 7 consecutive
soft bounces (Klaviyo's rule).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.domain import consent
from menura.domain.events import NewEvent, record_events
from menura.store import delivery as store
from menura.store import profiles as profile_store
from menura.store.delivery_tables import BOUNCED

log = logging.getLogger(__name__)

RECEIVED_EMAIL = "Received Email"
OPENED_EMAIL = "Opened Email"
CLICKED_EMAIL = "Clicked Email"
BOUNCED_EMAIL = "Bounced Email"
DROPPED_EMAIL = "Dropped Email"
MARKED_SPAM = "Marked Email as Spam"
UNSUBSCRIBED = consent.EMAIL_UNSUBSCRIBED_METRIC  # "Unsubscribed"
RECEIVED_SMS = "Received SMS"
FAILED_SMS = "Failed to Deliver SMS"
CLICKED_SMS = "Clicked SMS"
SENT_SMS = "Sent SMS"

# Klaviyo suppresses an address that soft-bounced more than 7 consecutive times.
MAX_CONSECUTIVE_SOFT_BOUNCES = 7
SERVICE = "klaviyo"  # Klaviyo's own metrics belong to the "klaviyo" integration


# Attribution keys with this prefix are delivery's own notes on the message (its Cc/Bcc copies, the
# list or segment a campaign reached the profile through): kept on the message, not put on events.
INTERNAL_PREFIX = "_menura_"
COPIES = INTERNAL_PREFIX + "copies"
GROUP = INTERNAL_PREFIX + "group"


def properties(row: Row[Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    props = {k: v for k, v in (row.attribution or {}).items() if not k.startswith(INTERNAL_PREFIX)}
    if row.channel == "email":
        props.setdefault("Email Domain", row.to_address.rpartition("@")[2].lower())
        if row.subject:
            props.setdefault("Subject", row.subject)
    else:
        props.setdefault("To Number", row.to_address)
        props.setdefault("From Number", row.from_address)
    if extra:
        props.update(extra)
    return props


def event(row: Row[Any], metric: str, now: datetime, *, unique: str,
          extra: Mapping[str, Any] | None = None) -> NewEvent:
    return NewEvent(row.profile_id, metric, properties(row, extra), now, unique_id=f"{row.id}:{unique}",
                    service=SERVICE)


def record(conn: Connection, account_id: str, events: Sequence[NewEvent], now: datetime) -> None:
    """Record a batch of one account's outcome events (events of deleted profiles are skipped)."""
    wanted = [e for e in events if e.profile_id]
    if not wanted:
        return
    existing = profile_store.existing_ids(conn, account_id, {e.profile_id for e in wanted})
    wanted = [e for e in wanted if e.profile_id in existing]
    if wanted:
        record_events(conn, account_id, wanted, now)


def delivered(row: Row[Any], now: datetime) -> NewEvent:
    return event(row, RECEIVED_EMAIL if row.channel == "email" else RECEIVED_SMS, now, unique="received")


def record_open(conn: Connection, row: Row[Any], now: datetime) -> None:
    # Every open counts (reports show opens and unique opens); one per second per message.
    record(conn, row.account_id, [event(row, OPENED_EMAIL, now, unique=f"open:{int(now.timestamp())}")], now)


def record_click(conn: Connection, row: Row[Any], url: str, now: datetime) -> None:
    metric = CLICKED_EMAIL if row.channel == "email" else CLICKED_SMS
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    click = event(row, metric, now, unique=f"click:{int(now.timestamp())}:{digest}", extra={"URL": url})
    record(conn, row.account_id, [click], now)


def record_bounce(conn: Connection, row: Row[Any], *, kind: str, source: str, now: datetime,
                  status: str | None = None, diagnostic: str = "") -> bool:
    """A hard or soft bounce of one message: bounce record, "Bounced Email", suppression when due.
    False when this message's bounce of this kind was already recorded (a DSN and a webhook)."""
    assert kind in ("hard", "soft")
    if not store.insert_bounce(conn, {"account_id": row.account_id, "outbound_id": row.id,
                                      "profile_id": row.profile_id, "recipient": row.to_address, "kind": kind,
                                      "source": source, "status": status, "diagnostic": diagnostic[:2000],
                                      "created": now}):
        return False
    store.update_message(conn, row.id, {"status": BOUNCED, "last_error": diagnostic[:2000] or None,
                                        "updated": now})
    extra: dict[str, Any] = {"Bounce Type": kind}
    if diagnostic:
        extra["Reason"] = diagnostic[:500]
    record(conn, row.account_id, [event(row, BOUNCED_EMAIL, now, unique="bounce", extra=extra)], now)
    if row.profile_id is None:
        return True
    if kind == "hard":
        _suppress(conn, row, consent.HARD_BOUNCE, now)
    elif store.soft_bounces_since_last_delivery(conn, row.account_id, row.profile_id) > MAX_CONSECUTIVE_SOFT_BOUNCES:
        _suppress(conn, row, consent.HARD_BOUNCE, now)
    return True


def record_dropped(conn: Connection, row: Row[Any], *, source: str, now: datetime, reason: str = "") -> None:
    """The provider dropped the message (address on its suppression list): Klaviyo suppresses too."""
    record(conn, row.account_id, [event(row, DROPPED_EMAIL, now, unique="dropped",
                                        extra={"Reason": reason[:500]} if reason else None)], now)
    if row.profile_id is not None:
        _suppress(conn, row, consent.HARD_BOUNCE, now)


def record_complaint(conn: Connection, row: Row[Any], *, source: str, now: datetime, detail: str = "") -> bool:
    """A spam complaint: "Marked Email as Spam" and suppression (SPAM_COMPLAINT). Recorded once."""
    if not store.insert_bounce(conn, {"account_id": row.account_id, "outbound_id": row.id,
                                      "profile_id": row.profile_id, "recipient": row.to_address,
                                      "kind": "complaint", "source": source, "status": None,
                                      "diagnostic": detail[:2000], "created": now}):
        return False
    record(conn, row.account_id, [event(row, MARKED_SPAM, now, unique="spam")], now)
    if row.profile_id is not None:
        _suppress(conn, row, consent.SPAM_COMPLAINT, now)
    return True


def _suppress(conn: Connection, row: Row[Any], reason: str, now: datetime) -> None:
    if profile_store.get_profile(conn, row.account_id, row.profile_id) is None:
        return
    consent.suppress_email(conn, account_id=row.account_id, profile_id=row.profile_id, reason=reason, now=now)


def unsubscribe(conn: Connection, row: Row[Any], *, now: datetime, method_detail: str,
                channel: str | None = None) -> bool:
    """Unsubscribe the message's profile from the message's channel, at once. "Unsubscribed" (email) is
    recorded with the message's attribution; SMS records Klaviyo's "Unsubscribed from SMS" via consent.
    False when there was nothing to change."""
    if row.profile_id is None or profile_store.get_profile(conn, row.account_id, row.profile_id) is None:
        return False
    if (channel or row.channel) == "sms":
        return unsubscribe_sms(conn, row.account_id, row.profile_id, now=now, method_detail=method_detail)
    changed = consent.set_email_marketing(conn, account_id=row.account_id, profile_id=row.profile_id,
                                          consent=consent.UNSUBSCRIBED, now=now, method="EMAIL_UNSUBSCRIBE",
                                          method_detail=method_detail, record_event=False)
    if changed:
        record(conn, row.account_id, [event(row, UNSUBSCRIBED, now, unique="unsubscribe",
                                            extra={"method": "EMAIL_UNSUBSCRIBE", "method_detail": method_detail})],
               now)
    return changed


def unsubscribe_sms(conn: Connection, account_id: str, profile_id: str, *, now: datetime, method_detail: str) -> bool:
    """SMS opt-out removes marketing and transactional consent (Klaviyo: both, always together)."""
    changed = consent.set_sms_marketing(conn, account_id=account_id, profile_id=profile_id,
                                        consent=consent.UNSUBSCRIBED, now=now, method="SMS",
                                        method_detail=method_detail)
    changed |= consent.set_sms_transactional(conn, account_id=account_id, profile_id=profile_id,
                                             consent=consent.UNSUBSCRIBED, now=now, method="SMS",
                                             method_detail=method_detail)
    return changed


def sms_failed(row: Row[Any], now: datetime, failure_type: str, source: str) -> NewEvent:
    return event(row, FAILED_SMS, now, unique="failed", extra={"Failure Type": failure_type, "Failure Source": source})
