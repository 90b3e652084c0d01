"""Consent per channel, email suppressions and the `subscriptions` view of a profile.

Rules (Klaviyo's API reference and help center):
- Each channel (email marketing, SMS marketing, SMS transactional) is NEVER_SUBSCRIBED,
  SUBSCRIBED or UNSUBSCRIBED, with the consent timestamp, method and method detail of the change.
- A suppressed profile cannot receive email marketing whatever its consent. Reasons: HARD_BOUNCE,
  INVALID_EMAIL, SPAM_COMPLAINT, UNSUBSCRIBE, USER_SUPPRESSED.
- Unsubscribing from email marketing suppresses with reason UNSUBSCRIBE; subscribing removes
  UNSUBSCRIBE, SPAM_COMPLAINT and USER_SUPPRESSED suppressions, never HARD_BOUNCE or INVALID_EMAIL.
  "Unsuppress" removes USER_SUPPRESSED only.
- `can_receive_*` is computed from the stored facts when read, so it cannot disagree with them.
- Changes record Klaviyo's events: "Unsubscribed" (email, global), "Consented to Receive SMS" and
  "Unsubscribed from SMS". Subscribing to email marketing records no event here: Klaviyo's is
  "Subscribed to List", which the lists area records with the list it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.jsonapi import errors
from menura.store import profiles as store

NEVER_SUBSCRIBED = "NEVER_SUBSCRIBED"
SUBSCRIBED = "SUBSCRIBED"
UNSUBSCRIBED = "UNSUBSCRIBED"
CONSENT_STATES = frozenset({NEVER_SUBSCRIBED, SUBSCRIBED, UNSUBSCRIBED})

HARD_BOUNCE = "HARD_BOUNCE"
INVALID_EMAIL = "INVALID_EMAIL"
SPAM_COMPLAINT = "SPAM_COMPLAINT"
UNSUBSCRIBE = "UNSUBSCRIBE"
USER_SUPPRESSED = "USER_SUPPRESSED"
SUPPRESSION_REASONS = frozenset({HARD_BOUNCE, INVALID_EMAIL, SPAM_COMPLAINT, UNSUBSCRIBE, USER_SUPPRESSED})
# A stronger reason replaces a weaker one; never the other way round.
_REASON_RANK = {USER_SUPPRESSED: 1, UNSUBSCRIBE: 2, SPAM_COMPLAINT: 3, INVALID_EMAIL: 4, HARD_BOUNCE: 4}
CLEARED_BY_SUBSCRIBING = frozenset({UNSUBSCRIBE, SPAM_COMPLAINT, USER_SUPPRESSED})
CLEARED_BY_UNSUPPRESSING = frozenset({USER_SUPPRESSED})

EMAIL_UNSUBSCRIBED_METRIC = "Unsubscribed"
SMS_SUBSCRIBED_METRIC = "Consented to Receive SMS"
SMS_UNSUBSCRIBED_METRIC = "Unsubscribed from SMS"

# Consent-state channel -> column prefix in the profiles table.
_PREFIX = {"email": "email", "sms": "sms", "sms_transactional": "sms_transactional"}


def _changed(conn: Connection, account_id: str, profile_id: str) -> None:
    from menura.domain.profiles import profile_changed

    profile_changed(conn, account_id, profile_id)


def _check_state(consent: str) -> None:
    if consent not in CONSENT_STATES:
        raise errors.invalid(f"'{consent}' is not a valid consent status; expected one of "
                             f"{', '.join(sorted(CONSENT_STATES))}.")


def _profile(conn: Connection, account_id: str, profile_id: str) -> Row[Any]:
    row = store.get_profile_for_update(conn, account_id, profile_id)
    if row is None:
        raise errors.not_found(f"A profile with id '{profile_id}' does not exist.")
    return row


def _record(conn: Connection, account_id: str, profile_id: str, metric: str, properties: dict[str, Any],
            now: datetime) -> None:
    from menura.domain.events import record_event

    record_event(conn, account_id=account_id, profile_id=profile_id, metric_name=metric, properties=properties,
                 time=now, now=now)


def _channel_values(channel: str, consent: str, now: datetime, method: str | None, method_detail: str | None,
                    consent_timestamp: datetime | None) -> dict[str, Any]:
    prefix = _PREFIX[channel]
    return {
        f"{prefix}_consent": consent,
        f"{prefix}_consent_timestamp": consent_timestamp or now,
        f"{prefix}_method": method,
        f"{prefix}_method_detail": method_detail,
        f"{prefix}_last_updated": now,
    }


def set_email_marketing(conn: Connection, *, account_id: str, profile_id: str, consent: str, now: datetime,
                        method: str | None = None, method_detail: str | None = None,
                        custom_method_detail: str | None = None, double_optin: bool | None = None,
                        consent_timestamp: datetime | None = None, record_event: bool = True) -> bool:
    """Set email marketing consent; returns False (and changes nothing) when it already was `consent`."""
    _check_state(consent)
    row = _profile(conn, account_id, profile_id)
    if row.email_consent == consent and not _lifts_suppression(row, consent):
        return False
    values = _channel_values("email", consent, now, method, method_detail, consent_timestamp)
    values["email_custom_method_detail"] = custom_method_detail
    values["email_double_optin"] = double_optin
    if consent == SUBSCRIBED and row.email_suppression_reason in CLEARED_BY_SUBSCRIBING:
        values.update(email_suppression_reason=None, email_suppression_timestamp=None)
    if consent == UNSUBSCRIBED and _outranks(UNSUBSCRIBE, row.email_suppression_reason):
        values.update(email_suppression_reason=UNSUBSCRIBE, email_suppression_timestamp=now)
    values["updated"] = now
    store.update_profile(conn, account_id, profile_id, values)
    _changed(conn, account_id, profile_id)
    if record_event and consent == UNSUBSCRIBED and row.email_consent != UNSUBSCRIBED:
        _record(conn, account_id, profile_id, EMAIL_UNSUBSCRIBED_METRIC, _event_properties(method, method_detail),
                now)
    return True


def _lifts_suppression(row: Row[Any], consent: str) -> bool:
    return consent == SUBSCRIBED and row.email_suppression_reason in CLEARED_BY_SUBSCRIBING


def _event_properties(method: str | None, method_detail: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if method:
        props["method"] = method
    if method_detail:
        props["method_detail"] = method_detail
    return props


def set_sms_marketing(conn: Connection, *, account_id: str, profile_id: str, consent: str, now: datetime,
                      method: str | None = None, method_detail: str | None = None,
                      consent_timestamp: datetime | None = None, record_event: bool = True) -> bool:
    """Set SMS marketing consent; False when unchanged. SMS consent needs a phone number."""
    return _set_sms("sms", conn, account_id, profile_id, consent, now, method, method_detail, consent_timestamp,
                    record_event)


def set_sms_transactional(conn: Connection, *, account_id: str, profile_id: str, consent: str, now: datetime,
                          method: str | None = None, method_detail: str | None = None,
                          consent_timestamp: datetime | None = None, record_event: bool = True) -> bool:
    """Set SMS transactional consent; False when unchanged."""
    return _set_sms("sms_transactional", conn, account_id, profile_id, consent, now, method, method_detail,
                    consent_timestamp, record_event)


def _set_sms(channel: str, conn: Connection, account_id: str, profile_id: str, consent: str, now: datetime,
             method: str | None, method_detail: str | None, consent_timestamp: datetime | None,
             record_event: bool) -> bool:
    _check_state(consent)
    row = _profile(conn, account_id, profile_id)
    if consent == SUBSCRIBED and row.phone_number is None:
        raise errors.invalid("A phone number is required to subscribe a profile to SMS.",
                             pointer="/data/attributes/phone_number")
    previous = getattr(row, f"{_PREFIX[channel]}_consent")
    if previous == consent:
        return False
    values = _channel_values(channel, consent, now, method, method_detail, consent_timestamp)
    values["updated"] = now
    store.update_profile(conn, account_id, profile_id, values)
    _changed(conn, account_id, profile_id)
    if record_event and channel == "sms":
        metric = SMS_SUBSCRIBED_METRIC if consent == SUBSCRIBED else SMS_UNSUBSCRIBED_METRIC
        if consent != NEVER_SUBSCRIBED:
            _record(conn, account_id, profile_id, metric, _event_properties(method, method_detail), now)
    return True


# --------------------------------------------------------------------------- suppressions


def _outranks(reason: str, current: str | None) -> bool:
    return current is None or _REASON_RANK[reason] > _REASON_RANK.get(current, 0)


def suppress_email(conn: Connection, *, account_id: str, profile_id: str, reason: str, now: datetime) -> bool:
    """Suppress the profile's email globally; False when it already was (for an equal or stronger reason)."""
    if reason not in SUPPRESSION_REASONS:
        raise errors.invalid(f"'{reason}' is not a valid suppression reason.")
    row = _profile(conn, account_id, profile_id)
    if not _outranks(reason, row.email_suppression_reason):
        return False
    store.update_profile(conn, account_id, profile_id, {"email_suppression_reason": reason,
                                                       "email_suppression_timestamp": now, "updated": now})
    _changed(conn, account_id, profile_id)
    return True


def unsuppress_email(conn: Connection, *, account_id: str, profile_id: str, now: datetime) -> bool:
    """Remove a USER_SUPPRESSED suppression; other reasons stay (Klaviyo's unsuppress rule)."""
    row = _profile(conn, account_id, profile_id)
    if row.email_suppression_reason not in CLEARED_BY_UNSUPPRESSING:
        return False
    store.update_profile(conn, account_id, profile_id, {"email_suppression_reason": None,
                                                       "email_suppression_timestamp": None, "updated": now})
    _changed(conn, account_id, profile_id)
    return True


def add_list_suppression(conn: Connection, *, account_id: str, profile_id: str, list_id: str, reason: str,
                         now: datetime) -> bool:
    """Suppress the profile from one list's emails; False when it already was."""
    return store.upsert_list_suppression(conn, account_id, profile_id, list_id, reason, now)


def remove_list_suppression(conn: Connection, *, account_id: str, profile_id: str, list_id: str,
                            reason: str | None = None, now: datetime | None = None) -> bool:
    return store.delete_list_suppression(conn, account_id, profile_id, list_id)


def forget_list(conn: Connection, *, account_id: str, list_id: str) -> None:
    """A deleted list takes its list suppressions with it (call from list deletion)."""
    store.delete_list_suppressions_of_list(conn, account_id, list_id)


# --------------------------------------------------------------------------- derived view


def can_receive_email_marketing(row: Any) -> bool:
    return row.email is not None and row.email_consent == SUBSCRIBED and row.email_suppression_reason is None


def can_receive_sms_marketing(row: Any) -> bool:
    return row.phone_number is not None and row.sms_consent == SUBSCRIBED


def can_receive_sms_transactional(row: Any) -> bool:
    return row.phone_number is not None and row.sms_transactional_consent == SUBSCRIBED


_PUSH_ENABLED = frozenset({"AUTHORIZED", "PROVISIONAL"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _push_marketing(tokens: Iterable[Any]) -> dict[str, Any]:
    """Push consent follows the device tokens: any enabled token means subscribed."""
    tokens = list(tokens)
    enabled = [t for t in tokens if t.enablement_status in _PUSH_ENABLED]
    if enabled:
        consent, when = SUBSCRIBED, max(t.recorded_date for t in enabled)
    elif tokens:
        consent, when = UNSUBSCRIBED, max(t.recorded_date for t in tokens)
    else:
        consent, when = NEVER_SUBSCRIBED, None
    return {"can_receive_push_marketing": bool(enabled), "consent": consent, "consent_timestamp": _iso(when)}


def subscriptions_view(row: Any, list_suppressions: Iterable[Any] = (), push_tokens: Iterable[Any] = ()
                       ) -> dict[str, Any]:
    """The `subscriptions` additional field, shaped as the spec's Subscriptions schema."""
    suppression = []
    if row.email_suppression_reason is not None:
        suppression.append({"reason": row.email_suppression_reason,
                            "timestamp": _iso(row.email_suppression_timestamp)})
    return {
        "email": {"marketing": {
            "can_receive_email_marketing": can_receive_email_marketing(row),
            "consent": row.email_consent,
            "consent_timestamp": _iso(row.email_consent_timestamp),
            "last_updated": _iso(row.email_last_updated),
            "method": row.email_method,
            "method_detail": row.email_method_detail,
            "custom_method_detail": row.email_custom_method_detail,
            "double_optin": row.email_double_optin,
            "suppression": suppression,
            "list_suppressions": [{"list_id": s.list_id, "reason": s.reason, "timestamp": _iso(s.timestamp)}
                                  for s in list_suppressions],
        }},
        "sms": {
            "marketing": _sms_view(row, "sms", "can_receive_sms_marketing", can_receive_sms_marketing(row)),
            "transactional": _sms_view(row, "sms_transactional", "can_receive_sms_transactional",
                                       can_receive_sms_transactional(row)),
        },
        "mobile_push": {"marketing": _push_marketing(push_tokens)},
    }


def _sms_view(row: Any, prefix: str, flag: str, can_receive: bool) -> dict[str, Any]:
    return {
        flag: can_receive,
        "consent": getattr(row, f"{prefix}_consent"),
        "consent_timestamp": _iso(getattr(row, f"{prefix}_consent_timestamp")),
        "method": getattr(row, f"{prefix}_method"),
        "method_detail": getattr(row, f"{prefix}_method_detail"),
        "last_updated": _iso(getattr(row, f"{prefix}_last_updated")),
    }


def subscriptions_for(conn: Connection, account_id: str, rows: Iterable[Row[Any]]) -> Mapping[str, dict[str, Any]]:
    """`subscriptions` for a page of profiles, with two queries for the whole page."""
    rows = list(rows)
    ids = [row.id for row in rows]
    suppressions = store.list_suppressions_for(conn, account_id, ids)
    tokens = store.push_tokens_for(conn, account_id, ids)
    return {row.id: subscriptions_view(row, suppressions.get(row.id, ()), tokens.get(row.id, ())) for row in rows}
