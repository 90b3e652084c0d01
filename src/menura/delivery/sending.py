"""Sending email, idempotently per send key, and recording what happened.

Per batch (`send_emails`, the dispatcher's path): read what is already known about these send keys
and recipients; build the new messages; record them ("sending", or "captured" in the outbox) in one
transaction; hand them to the relay concurrently; record the outcomes in one transaction (status,
attempt, events, suppressions, retries). A send key whose message reached a final status is never
sent again; one found "sending" (a crash between hand-over and recording) is sent again and reported
as `resent`: the in-flight batch is the only possible duplicate.

Deferred messages (relay down, 4xx) keep their MIME bytes and get a durable retry work item with
exponential backoff; relay-down retries never give up, 4xx ones end as soft bounces.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import outcomes, tracking
from menura.delivery.context import DeliveryContext
from menura.delivery.message import BuildEnv, BuiltEmail, OutgoingEmail, build_email
from menura.delivery.smtp import Envelope
from menura.delivery.status_codes import DEFERRED as OUTCOME_DEFERRED
from menura.delivery.status_codes import DELIVERED, HARD_BOUNCE, RELAY_DOWN, SOFT_BOUNCE, SendOutcome
from menura.domain import consent
from menura.domain import tracking_settings as utm_rules
from menura.store import delivery as store
from menura.store import profiles as profile_store
from menura.store import work
from menura.store.delivery_tables import (
    BOUNCED,
    CAPTURED,
    DEFERRED,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
)

DELIVER_KIND = "delivery.deliver"
# What may go into RCPT TO: one mailbox, no spaces or control characters (profiles validated it already;
# this keeps a bad caller from injecting SMTP commands).
_ADDRESS = re.compile(r"[^\s@<>\x00-\x1f\x7f]{1,64}@[^\s@<>\x00-\x1f\x7f]{1,255}")
# A 4xx-deferred message becomes a soft bounce after this many attempts (~a day with the backoff).
MAX_DEFERRED_ATTEMPTS = 10
MAX_RETRY_DELAY = timedelta(minutes=15)


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: str
    # queued | sent | captured | deferred | bounced | failed | skipped | sending
    status: str
    duplicate: bool = False  # the send key was handled before: nothing was sent now
    resent: bool = False  # an earlier attempt was interrupted after hand-over: it may arrive twice
    detail: str = ""
    retry_at: datetime | None = None


@dataclass(frozen=True)
class EmailJob:
    account_id: str
    profile_id: str | None
    to: str
    message: OutgoingEmail
    send_key: str
    attribution: Mapping[str, Any] = field(default_factory=dict)


def compress(data: bytes | str) -> bytes:
    return zlib.compress(data.encode() if isinstance(data, str) else data, 1)


def decompress(data: bytes | None) -> bytes:
    return zlib.decompress(data) if data else b""


def retry_delay(base_seconds: float, attempts: int) -> timedelta:
    exponent = min(max(attempts - 1, 0), 20)
    return min(timedelta(seconds=base_seconds * 2**exponent), MAX_RETRY_DELAY)


# --- what the recipient may receive ----------------------------------------------------------------


def blocked_profiles(conn: Connection, account_id: str, profile_ids: set[str], channel: str) -> dict[str, str]:
    """Profiles that may not receive marketing on `channel` now, with why (unsubscribed mid-send...)."""
    blocked: dict[str, str] = {}
    for row in profile_store.consent_rows(conn, account_id, profile_ids):
        if channel == "email" and row.email_suppression_reason is not None:
            blocked[row.id] = f"email suppressed ({row.email_suppression_reason})"
        elif channel == "email" and row.email_consent == consent.UNSUBSCRIBED:
            blocked[row.id] = "unsubscribed from email marketing"
        elif channel == "sms" and row.sms_consent == consent.UNSUBSCRIBED:
            blocked[row.id] = "unsubscribed from SMS marketing"
    return blocked


# --- building --------------------------------------------------------------------------------------


@dataclass
class _Planned:
    index: int
    job: EmailJob
    delivery_id: str
    built: BuiltEmail | None = None
    status: str = SENDING
    detail: str = ""
    resent: bool = False
    existing: Row[Any] | None = None
    utm_params: list[utm_rules.ParamSpec] = dataclasses.field(default_factory=list)
    utm_context: utm_rules.UtmContext | None = None


def _utm(conn: Connection, cache: dict[str, utm_rules.TrackingSetting], job: EmailJob) -> tuple[
        list[utm_rules.ParamSpec], utm_rules.UtmContext]:
    message = job.message
    context = message.utm or utm_rules.UtmContext(subject=message.subject, profile_id=job.profile_id)
    if context.profile_id is None and job.profile_id is not None:
        context = dataclasses.replace(context, profile_id=job.profile_id)
    if message.tracking.add_tracking_params is False:
        return [], context
    setting = cache.get(job.account_id)
    if setting is None:
        setting = cache[job.account_id] = utm_rules.get_setting(conn, job.account_id)
    return utm_rules.message_params(setting, context, add=message.tracking.add_tracking_params,
                                    custom=message.tracking.custom_tracking_params), context


def _row_values(plan: _Planned, ctx: DeliveryContext, now: datetime, transport: str) -> dict[str, Any]:
    job, built = plan.job, plan.built
    return {
        "id": plan.delivery_id, "account_id": job.account_id, "channel": "email", "send_key": job.send_key,
        "profile_id": job.profile_id, "to_address": job.to, "from_address": job.message.from_email,
        "mail_from": built.mail_from if built else None, "subject": job.message.subject,
        "marketing": job.message.marketing, "status": plan.status, "transport": transport,
        "message_id": built.message_id if built else None, "attribution": _attribution(job, built),
        "html_z": compress(built.html) if built else None,
        # Kept while the message may need another attempt, and for good in the outbox.
        "raw_z": compress(built.raw) if built and plan.status in (CAPTURED, QUEUED) else None,
        "attempts": 0, "last_error": plan.detail or None, "next_attempt_at": None,
        "created": now, "updated": now, "sent_at": now if plan.status == CAPTURED else None,
    }


def _attribution(job: EmailJob, built: BuiltEmail | None) -> dict[str, Any]:
    attribution = dict(job.attribution)
    if built is not None and built.copies:
        attribution[outcomes.COPIES] = list(built.copies)  # a retry from the stored bytes needs them
    return attribution


def _copies(row: Row[Any]) -> tuple[str, ...]:
    return tuple(a for a in (row.attribution or {}).get(outcomes.COPIES, ()) if _ADDRESS.fullmatch(a))


def _plan(conn: Connection, jobs: Sequence[EmailJob]) -> list[_Planned]:
    """What the database says about these sends (known send keys, consent, UTM settings): reads only."""
    plans = [_Planned(i, job, tracking.delivery_id(job.account_id, job.send_key)) for i, job in enumerate(jobs)]
    existing = store.messages_by_ids(conn, {p.delivery_id for p in plans})
    blocked: dict[str, str] = {}
    by_account: dict[str, set[str]] = {}
    for p in plans:
        if p.job.message.marketing and p.job.profile_id:
            by_account.setdefault(p.job.account_id, set()).add(p.job.profile_id)
    for account_id, profile_ids in by_account.items():
        blocked.update(blocked_profiles(conn, account_id, profile_ids, "email"))
    seen: set[str] = set()
    settings_cache: dict[str, utm_rules.TrackingSetting] = {}
    for p in plans:
        row = existing.get(p.delivery_id)
        if p.delivery_id in seen or (row is not None and row.status != SENDING):
            p.existing = row
            p.status = "duplicate"
            continue
        seen.add(p.delivery_id)
        p.existing, p.resent = row, row is not None
        reason = blocked.get(p.job.profile_id or "") if p.job.message.marketing else None
        if reason:
            p.status, p.detail = SKIPPED, reason
            continue
        if not _ADDRESS.fullmatch(p.job.to):
            p.status, p.detail = FAILED, f"not a deliverable address: {p.job.to[:320]!r}"
            continue
        p.utm_params, p.utm_context = _utm(conn, settings_cache, p.job)
    return plans


def _build(plans: Sequence[_Planned], ctx: DeliveryContext, now: datetime) -> None:
    """Build the messages still to send (CPU only: no transaction is held meanwhile)."""
    for p in plans:
        if p.status != SENDING or p.utm_context is None:
            continue
        env = BuildEnv(links=ctx.links(p.job.account_id, p.delivery_id), now=now, utm_params=p.utm_params,
                       utm_context=p.utm_context, dkim=ctx.dkim, bounce_domain=ctx.settings.bounce_domain)
        try:
            p.built = build_email(p.job.message, to=p.job.to, env=env)
        except (ValueError, UnicodeError) as exc:
            p.status, p.detail = FAILED, f"cannot build the message: {exc}"


# --- recording outcomes ----------------------------------------------------------------------------


def apply_outcome(conn: Connection, row: Row[Any], outcome: SendOutcome, raw: bytes | None, now: datetime,
                  ctx: DeliveryContext) -> DeliveryResult:
    """Record one attempt's outcome (status, attempt row, events, suppression, retry)."""
    attempts = row.attempts + 1
    store.add_attempts(conn, [{"outbound_id": row.id, "outcome": outcome.kind, "code": outcome.code,
                               "detail": outcome.detail[:2000] or None, "at": now}])
    if outcome.kind == DELIVERED:
        store.update_message(conn, row.id, {"status": SENT, "attempts": attempts, "sent_at": now, "updated": now,
                                            "raw_z": None, "next_attempt_at": None, "last_error": None})
        outcomes.record(conn, row.account_id, [outcomes.delivered(row, now)], now)
        return DeliveryResult(row.id, SENT)
    if outcome.kind in (HARD_BOUNCE, SOFT_BOUNCE) or (
            outcome.kind == OUTCOME_DEFERRED and attempts >= MAX_DEFERRED_ATTEMPTS):
        store.update_message(conn, row.id, {"attempts": attempts, "raw_z": None, "next_attempt_at": None,
                                            "updated": now})
        kind = "hard" if outcome.kind == HARD_BOUNCE else "soft"
        outcomes.record_bounce(conn, row, kind=kind, source="smtp", now=now, status=outcome.status,
                               diagnostic=outcome.detail or f"SMTP {outcome.code}")
        return DeliveryResult(row.id, BOUNCED, detail=outcome.detail)
    if outcome.kind in (OUTCOME_DEFERRED, RELAY_DOWN):
        retry_at = now + retry_delay(ctx.settings.delivery_retry_seconds, attempts)
        values: dict[str, Any] = {"status": DEFERRED, "attempts": attempts, "next_attempt_at": retry_at,
                                  "last_error": outcome.detail[:2000] or outcome.kind, "updated": now}
        if raw is not None:
            values["raw_z"] = compress(raw)
        store.update_message(conn, row.id, values)
        work.enqueue(conn, kind=DELIVER_KIND, payload={"id": row.id}, now=now, run_at=retry_at,
                     account_id=row.account_id, dedupe_key=f"{row.id}:{attempts}", max_attempts=3)
        return DeliveryResult(row.id, DEFERRED, detail=outcome.detail, retry_at=retry_at)
    store.update_message(conn, row.id, {"status": FAILED, "attempts": attempts, "raw_z": None, "updated": now,
                                        "last_error": outcome.detail[:2000] or None})
    return DeliveryResult(row.id, FAILED, detail=outcome.detail)


def record_delivered(conn: Connection, rows: Sequence[Row[Any]], sent: Sequence[SendOutcome], now: datetime) -> None:
    """`apply_outcome` for a batch of delivered messages, in a few statements instead of a few per message."""
    if not rows:
        return
    store.update_messages(conn, [{"id": r.id, "status": SENT, "attempts": r.attempts + 1, "sent_at": now,
                                  "updated": now, "raw_z": None, "next_attempt_at": None, "last_error": None}
                                 for r in rows])
    store.add_attempts(conn, [{"outbound_id": r.id, "outcome": o.kind, "code": o.code,
                               "detail": o.detail[:2000] or None, "at": now} for r, o in zip(rows, sent, strict=True)])
    by_account: dict[str, list[Any]] = {}
    for row in rows:
        by_account.setdefault(row.account_id, []).append(outcomes.delivered(row, now))
    for account_id, events in by_account.items():
        outcomes.record(conn, account_id, events, now)


def capture(conn: Connection, rows: Sequence[Row[Any]], now: datetime) -> None:
    """Messages kept in the outbox count as received: their links and reports work like real ones."""
    store.add_attempts(conn, [{"outbound_id": r.id, "outcome": "captured", "code": None, "detail": None, "at": now}
                              for r in rows])
    by_account: dict[str, list[Any]] = {}
    for row in rows:
        by_account.setdefault(row.account_id, []).append(outcomes.delivered(row, now))
    for account_id, events in by_account.items():
        outcomes.record(conn, account_id, events, now)


# --- the batch ---------------------------------------------------------------------------------------


def _existing_values(p: _Planned, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"status": p.status, "updated": now, "last_error": p.detail or None}
    if p.built is not None:
        values.update(mail_from=p.built.mail_from, message_id=p.built.message_id, html_z=compress(p.built.html))
        if p.status == CAPTURED:
            values.update(raw_z=compress(p.built.raw), sent_at=now, transport="outbox")
    return values


def send_emails(db: Any, jobs: Sequence[EmailJob], *, ctx: DeliveryContext,
                now: datetime | None = None) -> list[DeliveryResult]:
    now = now or ctx.now()
    transport = ctx.email_transport()
    with db.read() as conn:
        plans = _plan(conn, jobs)
    _build(plans, ctx, now)
    results: list[DeliveryResult | None] = [None] * len(plans)
    to_send: list[_Planned] = []
    captured: list[str] = []
    with db.write() as conn:
        fresh = [p for p in plans if p.status != "duplicate" and p.existing is None]
        for p in fresh:
            if p.status == SENDING and transport is None:
                p.status = CAPTURED
        inserted = store.insert_messages(conn, [_row_values(p, ctx, now, "smtp" if transport else "outbox")
                                                for p in fresh])
        for p in plans:
            if p.status == "duplicate":
                row = p.existing
                results[p.index] = DeliveryResult(p.delivery_id, row.status if row else SENDING, duplicate=True)
                continue
            if p.existing is None and p.delivery_id not in inserted:
                # Another process recorded this send key between our read and our write.
                results[p.index] = DeliveryResult(p.delivery_id, SENDING, duplicate=True)
                continue
            if p.existing is not None:
                if p.status == SENDING and transport is None:
                    p.status = CAPTURED
                store.update_message(conn, p.delivery_id, _existing_values(p, now))
            if p.status == SENDING:
                to_send.append(p)
                continue
            if p.status == CAPTURED:
                captured.append(p.delivery_id)
            results[p.index] = DeliveryResult(p.delivery_id, p.status, detail=p.detail, resent=p.resent)
        if captured:
            capture(conn, list(store.messages_by_ids(conn, captured).values()), now)
    if to_send:
        assert transport is not None
        sent = transport.send_many([Envelope(p.built.mail_from, p.job.to, p.built.raw, p.built.copies)
                                    for p in to_send if p.built is not None])
        with db.write() as conn:
            rows = store.messages_by_ids(conn, [p.delivery_id for p in to_send])
            delivered = [(p, o) for p, o in zip(to_send, sent, strict=True) if o.kind == DELIVERED]
            record_delivered(conn, [rows[p.delivery_id] for p, _ in delivered], [o for _, o in delivered], now)
            for p, _ in delivered:
                results[p.index] = DeliveryResult(p.delivery_id, SENT, resent=p.resent)
            for p, outcome in zip(to_send, sent, strict=True):
                if outcome.kind == DELIVERED:
                    continue
                assert p.built is not None
                result = apply_outcome(conn, rows[p.delivery_id], outcome, p.built.raw, now, ctx)
                results[p.index] = DeliveryResult(result.delivery_id, result.status, resent=p.resent,
                                                  detail=result.detail, retry_at=result.retry_at)
    return [r if r is not None else DeliveryResult("", FAILED, detail="not processed") for r in results]


def queue_email(conn: Connection, job: EmailJob, *, ctx: DeliveryContext, now: datetime) -> DeliveryResult:
    """Accept a message inside the caller's transaction: it is sent by a work item after the commit
    (or captured in the outbox right here, when no relay is configured)."""
    plans = _plan(conn, [job])
    _build(plans, ctx, now)
    plan = plans[0]
    if plan.status == "duplicate" or plan.existing is not None:
        status = plan.existing.status if plan.existing is not None else SENDING
        return DeliveryResult(plan.delivery_id, status, duplicate=True)
    transport = ctx.email_transport()
    if plan.status == SENDING:
        plan.status = QUEUED if transport is not None else CAPTURED
    store.insert_messages(conn, [_row_values(plan, ctx, now, "smtp" if transport else "outbox")])
    if plan.status == CAPTURED:
        capture(conn, list(store.messages_by_ids(conn, [plan.delivery_id]).values()), now)
    elif plan.status == QUEUED:
        work.enqueue(conn, kind=DELIVER_KIND, payload={"id": plan.delivery_id}, now=now, account_id=job.account_id,
                     dedupe_key=f"{plan.delivery_id}:0", max_attempts=3)
    return DeliveryResult(plan.delivery_id, plan.status, detail=plan.detail)


def deliver_stored(db: Any, delivery_id: str, *, ctx: DeliveryContext, complete: Any = None) -> DeliveryResult | None:
    """Send (again) a queued or deferred message from its stored bytes. `complete(conn)` is called in
    the transaction that records the outcome (the work item's completion)."""
    now = ctx.now()
    with db.write() as conn:
        row = store.get_message_for_update(conn, delivery_id)
        if row is None or row.status in FINAL_STATUSES or row.channel != "email":
            if complete is not None:
                complete(conn)
            return None
        if row.marketing and row.profile_id:
            reason = blocked_profiles(conn, row.account_id, {row.profile_id}, "email").get(row.profile_id)
            if reason:
                store.update_message(conn, row.id, {"status": SKIPPED, "raw_z": None, "last_error": reason,
                                                    "updated": now})
                if complete is not None:
                    complete(conn)
                return DeliveryResult(row.id, SKIPPED, detail=reason)
        raw = decompress(row.raw_z)
        if not raw:
            # Sent in a batch that was interrupted: only the batch's own retry can send it again.
            if complete is not None:
                complete(conn)
            return None
        transport = ctx.email_transport()
        if transport is None:
            # The relay was removed from the configuration meanwhile: keep the message in the outbox.
            store.update_message(conn, row.id, {"status": CAPTURED, "transport": "outbox", "sent_at": now,
                                                "updated": now})
            capture(conn, [row], now)
            if complete is not None:
                complete(conn)
            return DeliveryResult(row.id, CAPTURED)
        store.update_message(conn, row.id, {"status": SENDING, "updated": now})
    outcome = transport.send(Envelope(row.mail_from or "", row.to_address, raw, _copies(row)))
    with db.write() as conn:
        current = store.get_message_for_update(conn, delivery_id)
        if current is None:
            if complete is not None:
                complete(conn)
            return None
        result = apply_outcome(conn, current, outcome, None, ctx.now(), ctx)
        if complete is not None:
            complete(conn)
    return result
