"""Sending SMS idempotently per send key, provider status callbacks, and inbound messages.

Outcomes: the provider accepting a message makes it "sent"; its delivery report then records
"Received SMS" (delivered) or "Failed to Deliver SMS" (undelivered/failed, with Klaviyo's failure
type). Captured SMS (no provider configured) count as received at once. A provider that is down or
rate-limits us (429, 5xx) defers the message to a durable retry, as for email.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Row

from menura.delivery import outcomes, tracking
from menura.delivery.context import DeliveryContext
from menura.delivery.message import add_query_params
from menura.delivery.sending import (
    DELIVER_KIND,
    DeliveryResult,
    blocked_profiles,
    capture,
    compress,
    decompress,
    retry_delay,
)
from menura.delivery.sms import (
    HELP,
    NONE,
    OPT_IN,
    OPT_OUT,
    URL_IN_TEXT,
    OutgoingSms,
    SmsOutcome,
    failure_type,
    keyword_action,
)
from menura.delivery.status_codes import DEFERRED as OUTCOME_DEFERRED
from menura.delivery.status_codes import DELIVERED, RELAY_DOWN
from menura.domain import consent
from menura.domain import tracking_settings as utm_rules
from menura.domain.events import NewEvent
from menura.store import delivery as store
from menura.store import profiles as profile_store
from menura.store import work
from menura.store.delivery_tables import (
    CAPTURED,
    DEFERRED,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
)

MAX_SMS_ATTEMPTS = 10


@dataclass(frozen=True)
class InboundResult:
    action: str  # opt_out | opt_in | help | none
    profile_id: str | None
    reply: str | None
    duplicate: bool = False


def _payload(body: str, from_number: str, media_urls: list[str], links: list[str]) -> bytes:
    data: dict[str, Any] = {"body": body, "from": from_number, "media": media_urls}
    if links:
        data["links"] = links  # where the body's short links go, in order
    return compress(msgspec.json.encode(data))


def load_payload(row: Row[Any]) -> dict[str, Any]:
    """What was sent in an SMS: body, from number, media URLs and the short links' destinations."""
    return _load(row)


def _load(row: Row[Any]) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(decompress(row.raw_z)) if row.raw_z else {}
    return data


def tracked_body(conn: Connection, message: OutgoingSms, *, account_id: str, profile_id: str | None,
                 links: tracking.RecipientLinks) -> tuple[str, list[str]]:
    """The body to send, and the destinations of its short links. Links get the UTM parameters and,
    unless click tracking is off or `shorten_links` is False, a tracked redirect: a signed click link,
    or with `shorten_links` a short link whose destination is kept with the message."""
    context = message.utm or utm_rules.UtmContext(message_type="sms", profile_id=profile_id)
    params: list[utm_rules.ParamSpec] = []
    if message.tracking.add_tracking_params is not False:
        setting = utm_rules.get_setting(conn, account_id)
        params = utm_rules.message_params(setting, context, add=message.tracking.add_tracking_params,
                                          custom=message.tracking.custom_tracking_params)
    clicks = message.tracking.is_tracking_clicks is not False and message.shorten_links is not False
    destinations: list[str] = []
    own_prefix = links.base_url + "/t/"

    def replace(match: Any) -> str:
        url = match.group(0).rstrip(".,;:!?)")
        tail = match.group(0)[len(url):]
        if url.startswith(own_prefix):
            return match.group(0)  # our own pages (the company info link): not a link of the message
        url = add_query_params(url, utm_rules.param_values(params, context, None))
        if not clicks:
            return url + tail
        if message.shorten_links:
            destinations.append(url)
            return links.short_click(len(destinations) - 1) + tail
        return links.click(url) + tail

    return URL_IN_TEXT.sub(replace, message.body), destinations


def _row(delivery_id: str, account_id: str, profile_id: str | None, to: str, from_number: str, send_key: str,
         message: OutgoingSms, body: tuple[str, list[str]], attribution: Mapping[str, Any], status: str,
         transport: str, now: datetime, detail: str = "") -> dict[str, Any]:
    return {
        "id": delivery_id, "account_id": account_id, "channel": "sms", "send_key": send_key,
        "profile_id": profile_id, "to_address": to, "from_address": from_number, "mail_from": None,
        "subject": None, "marketing": message.marketing, "status": status, "transport": transport,
        "message_id": None, "attribution": dict(attribution), "html_z": None,
        "raw_z": _payload(body[0], from_number, list(message.media_urls), body[1]), "attempts": 0,
        "last_error": detail or None, "next_attempt_at": None, "created": now, "updated": now,
        "sent_at": now if status == CAPTURED else None,
    }


def send_sms(source: Any, *, account_id: str, profile_id: str | None, to: str, message: OutgoingSms, send_key: str,
             attribution: Mapping[str, Any], ctx: DeliveryContext, now: datetime | None = None) -> DeliveryResult:
    now = now or ctx.now()
    provider = ctx.sms_provider()
    delivery_id = tracking.delivery_id(account_id, send_key)
    links = ctx.links(account_id, delivery_id)
    in_caller_transaction = isinstance(source, Connection)

    def accept(conn: Connection) -> tuple[DeliveryResult | None, Row[Any] | None]:
        existing = store.get_message(conn, delivery_id, bodies=False)
        if existing is not None and (existing.status != SENDING or in_caller_transaction):
            return DeliveryResult(delivery_id, existing.status, duplicate=True), None
        status, detail = SENDING, ""
        if message.marketing and profile_id:
            detail = blocked_profiles(conn, account_id, {profile_id}, "sms").get(profile_id, "")
            status = SKIPPED if detail else SENDING
        if status == SENDING:
            status = CAPTURED if provider is None else QUEUED if in_caller_transaction else SENDING
        from_number = message.from_number or (provider.from_number if provider else "")
        body = tracked_body(conn, message, account_id=account_id, profile_id=profile_id, links=links)
        values = _row(delivery_id, account_id, profile_id, to, from_number, send_key, message, body, attribution,
                      status, provider.name if provider else "outbox", now, detail)
        if existing is None:
            if not store.insert_messages(conn, [values]):
                return DeliveryResult(delivery_id, SENDING, duplicate=True), None
        else:
            store.update_message(conn, delivery_id, {"status": status, "raw_z": values["raw_z"], "updated": now})
        row = store.get_message(conn, delivery_id)
        if status == CAPTURED:
            capture(conn, [row], now)
        elif status == QUEUED:
            work.enqueue(conn, kind=DELIVER_KIND, payload={"id": delivery_id}, now=now, account_id=account_id,
                         dedupe_key=f"{delivery_id}:0", max_attempts=3)
        if status != SENDING:
            return DeliveryResult(delivery_id, status, detail=detail, resent=existing is not None), None
        return None, row

    if in_caller_transaction:
        result, _ = accept(source)
        assert result is not None
        return result
    with source.write() as conn:
        result, row = accept(conn)
    if result is not None:
        return result
    assert row is not None and provider is not None
    outcome = _send(provider, row, links)
    with source.write() as conn:
        return apply_sms_outcome(conn, store.get_message(conn, delivery_id), outcome, now, ctx)


def _send(provider: Any, row: Row[Any], links: tracking.RecipientLinks) -> SmsOutcome:
    data = _load(row)
    return provider.send(to=row.to_address, from_number=data.get("from") or provider.from_number,
                         body=data.get("body", ""), media_urls=data.get("media", []),
                         status_callback=links.sms_status_callback())


def apply_sms_outcome(conn: Connection, row: Row[Any], outcome: SmsOutcome, now: datetime,
                      ctx: DeliveryContext) -> DeliveryResult:
    attempts = row.attempts + 1
    store.add_attempts(conn, [{"outbound_id": row.id, "outcome": outcome.kind, "code": outcome.code,
                               "detail": outcome.detail[:2000] or None, "at": now}])
    if outcome.kind == DELIVERED:
        store.update_message(conn, row.id, {"status": SENT, "attempts": attempts, "sent_at": now, "updated": now,
                                            "message_id": outcome.provider_id, "next_attempt_at": None,
                                            "last_error": None})
        return DeliveryResult(row.id, SENT)
    if outcome.kind in (OUTCOME_DEFERRED, RELAY_DOWN) and attempts < MAX_SMS_ATTEMPTS:
        retry_at = now + retry_delay(ctx.settings.delivery_retry_seconds, attempts)
        store.update_message(conn, row.id, {"status": DEFERRED, "attempts": attempts, "next_attempt_at": retry_at,
                                            "last_error": outcome.detail[:2000] or outcome.kind, "updated": now})
        work.enqueue(conn, kind=DELIVER_KIND, payload={"id": row.id}, now=now, run_at=retry_at,
                     account_id=row.account_id, dedupe_key=f"{row.id}:{attempts}", max_attempts=3)
        return DeliveryResult(row.id, DEFERRED, detail=outcome.detail, retry_at=retry_at)
    store.update_message(conn, row.id, {"status": FAILED, "attempts": attempts, "updated": now,
                                        "last_error": outcome.detail[:2000] or None})
    kind = outcome.failure_type or "Unknown"
    outcomes.record(conn, row.account_id, [outcomes.sms_failed(row, now, kind, "provider")], now)
    return DeliveryResult(row.id, FAILED, detail=outcome.detail)


def deliver_stored_sms(db: Any, delivery_id: str, *, ctx: DeliveryContext,
                       complete: Any = None) -> DeliveryResult | None:
    now = ctx.now()
    provider = ctx.sms_provider()
    with db.write() as conn:
        row = store.get_message_for_update(conn, delivery_id)
        done = row is None or row.status in FINAL_STATUSES
        if not done and row.marketing and row.profile_id:
            reason = blocked_profiles(conn, row.account_id, {row.profile_id}, "sms").get(row.profile_id)
            if reason:
                store.update_message(conn, row.id, {"status": SKIPPED, "last_error": reason, "updated": now})
                done = True
        if not done and provider is None:
            store.update_message(conn, row.id, {"status": CAPTURED, "transport": "outbox", "sent_at": now,
                                                "updated": now})
            capture(conn, [row], now)
            done = True
        if done:
            if complete is not None:
                complete(conn)
            return None
        store.update_message(conn, row.id, {"status": SENDING, "updated": now})
    outcome = _send(provider, row, ctx.links(row.account_id, row.id))
    with db.write() as conn:
        result = apply_sms_outcome(conn, store.get_message_for_update(conn, delivery_id), outcome, ctx.now(), ctx)
        if complete is not None:
            complete(conn)
    return result


# --- provider callbacks and inbound messages ----------------------------------------------------------


def handle_status(conn: Connection, row: Row[Any], *, status: str, error_code: int | None, now: datetime) -> None:
    """A provider delivery report for one of our messages."""
    status = status.lower()
    if status == "delivered":
        outcomes.record(conn, row.account_id, [outcomes.delivered(row, now)], now)
    elif status in ("undelivered", "failed"):
        store.update_message(conn, row.id, {"status": FAILED, "updated": now,
                                            "last_error": f"{status} (error {error_code})"})
        outcomes.record(conn, row.account_id, [outcomes.sms_failed(row, now, failure_type(error_code), "carrier")],
                        now)


def _replies(account_name: str) -> dict[str, str]:
    return {
        OPT_OUT: f"{account_name}: You are unsubscribed and will receive no more messages. Reply START to "
                 "resubscribe.",
        OPT_IN: f"{account_name}: You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
        HELP: f"{account_name}: Reply STOP to unsubscribe. Msg & data rates may apply.",
    }


def handle_inbound(conn: Connection, *, account_id: str, account_name: str, from_number: str, to_number: str,
                   body: str, provider_id: str | None, now: datetime) -> InboundResult:
    """An SMS a subscriber sent us: keywords change consent at once; the message is kept and recorded
    as Klaviyo's "Sent SMS" on the profile."""
    action = keyword_action(body)
    profile_id = profile_store.find_id_by(conn, account_id, "phone_number", from_number)
    if profile_id is None and action == OPT_IN:
        from menura.domain.profiles import ProfileInput, resolve_profile

        profile_id, _ = resolve_profile(conn, account_id=account_id, data=ProfileInput(phone_number=from_number),
                                        now=now)
    fresh = store.insert_inbound(conn, {"account_id": account_id, "channel": "sms", "from_address": from_number,
                                        "to_address": to_number, "body": body[:5000], "profile_id": profile_id,
                                        "provider_id": provider_id, "action": action, "received": now})
    reply = _replies(account_name).get(action)
    if not fresh:
        return InboundResult(action, profile_id, reply, duplicate=True)
    if profile_id is not None:
        _apply_keyword(conn, account_id, profile_id, action, body, now)
        props = {"Body": body[:1000], "From Number": from_number, "To Number": to_number}
        outcomes.record(conn, account_id, [NewEvent(profile_id, outcomes.SENT_SMS, props, now,
                                                             unique_id=f"inbound:{provider_id or now.timestamp()}",
                                                             service=outcomes.SERVICE)], now)
    return InboundResult(action, profile_id, reply)


def _apply_keyword(conn: Connection, account_id: str, profile_id: str, action: str, body: str, now: datetime) -> None:
    keyword = body.strip().upper()[:64]
    if action == OPT_OUT:
        outcomes.unsubscribe_sms(conn, account_id, profile_id, now=now, method_detail=keyword)
    elif action == OPT_IN:
        consent.set_sms_marketing(conn, account_id=account_id, profile_id=profile_id, consent=consent.SUBSCRIBED,
                                  now=now, method="SMS", method_detail=keyword)
    elif action == NONE:
        return


__all__ = ["InboundResult", "OutgoingSms", "deliver_stored_sms", "handle_inbound", "handle_status", "send_sms"]
