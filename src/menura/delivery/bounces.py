"""Bounces and complaints that arrive after sending: DSN messages (RFC 3464 `multipart/report;
report-type=delivery-status`) and complaint reports (RFC 5965 ARF, `report-type=feedback-report`)
mailed to the VERP bounce address, mailto one-click unsubscribes, and provider webhooks (Amazon SES
notifications via SNS, SendGrid's event webhook).

A report is tied to its message by, in order: the VERP envelope recipient (`bounces+<id>-<mac>@`), the
signed `X-Menura-Message` header of the returned original, or its Message-ID — the last two only when
the bounced recipient is the message's recipient, so a forged report cannot touch other messages.

`menura bounces --listen 127.0.0.1:2525` runs `InboundSmtpHandler` on aiosmtpd; `process_inbound_email`
is the same processing as a function.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import outcomes, tracking
from menura.delivery.context import DeliveryContext
from menura.delivery.status_codes import DEFERRED, DELIVERED, HARD_BOUNCE, classify_status, enhanced_status
from menura.store import delivery as store

log = logging.getLogger(__name__)

HARD = "hard"
SOFT = "soft"
COMPLAINT = "complaint"
DROPPED = "dropped"


@dataclass(frozen=True)
class Report:
    kind: str  # hard | soft | complaint | dropped
    recipient: str | None
    source: str  # dsn | arf | ses | sendgrid
    status: str | None = None
    diagnostic: str = ""
    message_token: str | None = None  # X-Menura-Message of the original
    message_id: str | None = None  # Message-ID of the original (with angle brackets)
    delivery_id: str | None = None  # from a provider's custom argument


# --- RFC 3464 / RFC 5965 ------------------------------------------------------------------------------


def _address(field: str | None) -> str | None:
    """'rfc822; bob@example.org' -> 'bob@example.org'."""
    if not field:
        return None
    value = field.split(";", 1)[-1].strip().strip("<>").strip()
    return value.lower() or None


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if content_type == "text/rfc822-headers":
            return HeaderParser().parsestr(part.get_payload(decode=True).decode("utf-8", "replace"))
    return None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # Some MTAs send the delivery-status body as plain text: parse its blank-line separated blocks.
    text = part.get_payload(decode=True).decode("utf-8", "replace") if payload else ""
    return [HeaderParser().parsestr(block) for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]


def parse_report(raw: bytes) -> list[Report]:
    """The bounces and complaints a report message states (empty for anything else, e.g. "delayed" or
    "delivered" notices, auto-replies, spam)."""
    msg = message_from_bytes(raw, policy=policy.compat32)
    if msg.get_content_type() != "multipart/report":
        return []
    report_type = (msg.get_param("report-type") or "").lower()
    original = _original_headers(msg)
    token = original.get("X-Menura-Message") if original is not None else None
    message_id = original.get("Message-ID") if original is not None else None
    token = token.strip() if token else None
    message_id = message_id.strip() if message_id else None
    if report_type == "feedback-report":
        return _feedback(msg, original, token, message_id)
    if report_type != "delivery-status":
        return []
    reports: list[Report] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part):  # the per-message block has no Action: skipped
            action = (block.get("Action") or "").strip().lower()
            status = (block.get("Status") or "").strip()
            recipient = _address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient"))
            if action != "failed" or recipient is None:
                continue
            status = status or enhanced_status(block.get("Diagnostic-Code") or "") or "5.0.0"
            kind = classify_status(status)
            if kind in (DELIVERED, DEFERRED):
                continue
            diagnostic = " ".join((block.get("Diagnostic-Code") or "").split())
            reports.append(Report(HARD if kind == HARD_BOUNCE else SOFT, recipient, "dsn", status, diagnostic,
                                  token, message_id))
    return reports


def _feedback(msg: Message, original: Message | None, token: str | None, message_id: str | None) -> list[Report]:
    recipient = None
    feedback_type = "abuse"
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            for block in _status_blocks(part):
                feedback_type = (block.get("Feedback-Type") or feedback_type).strip().lower()
                recipient = recipient or _address(block.get("Original-Rcpt-To"))
    if recipient is None and original is not None:
        recipient = _address(original.get("To"))
    if feedback_type not in ("abuse", "fraud", "virus"):
        return []
    return [Report(COMPLAINT, recipient, "arf", None, f"feedback-type: {feedback_type}", token, message_id)]


# --- provider webhooks -----------------------------------------------------------------------------------


def parse_ses(body: Mapping[str, Any]) -> list[Report]:
    """An SNS notification carrying an SES bounce/complaint (notifications or event publishing)."""
    message: Any = body.get("Message", body)
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return []
    if not isinstance(message, Mapping):
        return []
    kind = message.get("notificationType") or message.get("eventType")
    mail = message.get("mail") or {}
    headers = {h.get("name", "").lower(): h.get("value") for h in mail.get("headers") or [] if isinstance(h, Mapping)}
    token = headers.get("x-menura-message")
    message_id = headers.get("message-id") or (mail.get("commonHeaders") or {}).get("messageId")
    reports: list[Report] = []
    if kind == "Bounce":
        bounce = message.get("bounce") or {}
        bounce_type = bounce.get("bounceType")
        sub_type = bounce.get("bounceSubType") or ""
        for item in bounce.get("bouncedRecipients") or []:
            if bounce_type == "Permanent":
                kind_name = DROPPED if sub_type in ("Suppressed", "OnAccountSuppressionList") else HARD
            else:
                kind_name = SOFT
            diagnostic = item.get("diagnosticCode") or f"{bounce_type}/{sub_type}"
            reports.append(Report(kind_name, _address(item.get("emailAddress")), "ses", item.get("status"),
                                  str(diagnostic), token, message_id))
    elif kind == "Complaint":
        complaint = message.get("complaint") or {}
        for item in complaint.get("complainedRecipients") or []:
            reports.append(Report(COMPLAINT, _address(item.get("emailAddress")), "ses", None,
                                  str(complaint.get("complaintFeedbackType") or "abuse"), token, message_id))
    return reports


def parse_sendgrid(events: Iterable[Any]) -> list[Report]:
    """SendGrid's event webhook: bounce (type bounce: hard; blocked: soft), dropped, spamreport."""
    reports: list[Report] = []
    for item in events:
        if not isinstance(item, Mapping):
            continue
        event = item.get("event")
        recipient = _address(item.get("email"))
        message_id = item.get("smtp-id")
        token = item.get("menura_message")
        reason = str(item.get("reason") or "")
        if event == "bounce":
            kind = SOFT if item.get("type") == "blocked" else HARD
            reports.append(Report(kind, recipient, "sendgrid", item.get("status"), reason, token, message_id))
        elif event == "dropped":
            reports.append(Report(DROPPED, recipient, "sendgrid", None, reason, token, message_id))
        elif event == "spamreport":
            reports.append(Report(COMPLAINT, recipient, "sendgrid", None, "spamreport", token, message_id))
    return reports


# --- attribution and recording ------------------------------------------------------------------------------


def find_message(conn: Connection, signer: tracking.TokenSigner, report: Report,
                 verp_id: str | None = None) -> Row[Any] | None:
    if verp_id is not None:
        row = store.get_message(conn, verp_id, bodies=False)
        if row is not None:
            return row
    row = None
    if report.message_token:
        try:
            _account, delivery_id, _ = tracking.parse_message_token(signer, tracking.MESSAGE, report.message_token)
            row = store.get_message(conn, delivery_id, bodies=False)
        except tracking.InvalidToken:
            row = None
    if row is None and report.message_id:
        row = store.find_by_header_message_id(conn, report.message_id)
    if row is None or (report.recipient and row.to_address.lower() != report.recipient.lower()):
        return None
    return row


def record_report(conn: Connection, row: Row[Any], report: Report, now: datetime) -> bool:
    if report.kind == COMPLAINT:
        return outcomes.record_complaint(conn, row, source=report.source, now=now, detail=report.diagnostic)
    if report.kind == DROPPED:
        outcomes.record_dropped(conn, row, source=report.source, now=now, reason=report.diagnostic)
        return True
    return outcomes.record_bounce(conn, row, kind=report.kind, source=report.source, now=now, status=report.status,
                                  diagnostic=report.diagnostic)


def record_reports(conn: Connection, signer: tracking.TokenSigner, reports: Sequence[Report], now: datetime,
                   verp_id: str | None = None) -> int:
    """Record the reports that can be tied to one of our messages; returns how many were new."""
    recorded = 0
    for report in reports:
        row = find_message(conn, signer, report, verp_id)
        if row is None:
            log.info("unattributed %s report for %s", report.kind, report.recipient)
            continue
        recorded += bool(record_report(conn, row, report, now))
    return recorded


def process_inbound_email(db: Any, raw: bytes, rcpt_tos: Sequence[str], *, ctx: DeliveryContext,
                          now: datetime | None = None) -> dict[str, int]:
    """Handle a message that arrived at a bounce or unsubscribe address. Returns counts of what it did."""
    now = now or ctx.now()
    done = {"bounces": 0, "unsubscribes": 0}
    with db.write() as conn:
        verp = [ctx.signer.parse_verp(rcpt.rpartition("@")[0]) for rcpt in rcpt_tos]
        for parsed in verp:
            if parsed is not None and parsed[0] == "unsubscribe":
                row = store.get_message(conn, parsed[1], bodies=False)
                if row is not None and outcomes.unsubscribe(conn, row, now=now, method_detail="mailto"):
                    done["unsubscribes"] += 1
        reports = parse_report(raw)
        if reports:
            bounce_ids = [p[1] for p in verp if p is not None and p[0] == "bounces"] or [None]
            for verp_id in bounce_ids:
                done["bounces"] += record_reports(conn, ctx.signer, reports, now, verp_id)
    return done


class InboundSmtpHandler:
    """aiosmtpd handler for the bounce/unsubscribe mailbox domain."""

    def __init__(self, db: Any, ctx: DeliveryContext) -> None:
        self.db = db
        self.ctx = ctx

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: process_inbound_email(self.db, data, list(envelope.rcpt_tos), ctx=self.ctx))
        except Exception:
            log.exception("failed to process an inbound message")
            return "451 Temporary failure, try again later"
        return "250 OK"
