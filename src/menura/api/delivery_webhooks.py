"""Public webhooks of the delivery area (providers call them; no key): Twilio-format inbound SMS and
SMS status callbacks, Amazon SES notifications (through SNS) and SendGrid's event webhook for bounces
and complaints. Not Klaviyo operations."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from menura.api.operation import Category, Ctx, Reply
from menura.delivery import bounces, sms, sms_flow, tracking
from menura.delivery.context import context_for_services
from menura.jsonapi import errors
from menura.store import accounts as account_store
from menura.store import delivery as store

log = logging.getLogger(__name__)

api = Category("Delivery webhooks")

FORM = ("application/x-www-form-urlencoded",)
SNS_TYPES = ("text/plain", "application/json")


def _form(ctx: Ctx) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(ctx.body_bytes.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _verify_twilio(ctx: Ctx, params: dict[str, str]) -> None:
    """With a Twilio provider configured, its signature is required (the URL it called, as seen
    directly or through the public base URL)."""
    provider = context_for_services(ctx.services).sms_provider()
    if provider is None:
        return
    signature = ctx.headers.get("x-twilio-signature")
    parts = urlsplit(ctx.url)
    public = context_for_services(ctx.services).base_url + parts.path + (f"?{parts.query}" if parts.query else "")
    if not any(provider.verify_webhook(url, params, signature) for url in (ctx.url, public)):
        raise errors.permission_denied("The X-Twilio-Signature header is missing or wrong.")


def _xml(body: bytes) -> Reply:
    return Reply(200, raw=body, media_type="text/xml; charset=utf-8")


@api.post("/webhooks/sms/inbound/{account_id}", "webhook_sms_inbound", auth="none", body_types=FORM)
def sms_inbound(ctx: Ctx) -> Reply:
    """An SMS a subscriber sent to the account's number (Twilio's form fields From, To, Body,
    MessageSid). Keywords change consent at once; the TwiML answer carries the keyword's reply."""
    params = _form(ctx)
    _verify_twilio(ctx, params)
    account_id = ctx.path_params["account_id"]
    from_number, body = params.get("From", "").strip(), params.get("Body", "")
    if not from_number:
        raise errors.invalid("'From' is required.", parameter="From")
    with ctx.db.write() as conn:
        account = account_store.get_account(conn, account_id)
        if account is None:
            raise errors.not_found(f"An account with id '{account_id}' does not exist.")
        result = sms_flow.handle_inbound(conn, account_id=account_id, account_name=account.name,
                                         from_number=from_number, to_number=params.get("To", ""), body=body,
                                         provider_id=params.get("MessageSid") or params.get("SmsSid"),
                                         now=ctx.now())
    return _xml(sms.twiml(result.reply))


@api.post("/webhooks/sms/status/{token}", "webhook_sms_status", auth="none", body_types=FORM)
def sms_status(ctx: Ctx) -> Reply:
    """The provider's delivery report for one of our messages (the token names it)."""
    params = _form(ctx)
    _verify_twilio(ctx, params)
    signer = context_for_services(ctx.services).signer
    try:
        account_id, delivery_id, _ = tracking.parse_message_token(signer, tracking.SMS_STATUS,
                                                                  ctx.path_params["token"])
    except tracking.InvalidToken:
        raise errors.not_found("Unknown message.") from None
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    code = params.get("ErrorCode")
    with ctx.db.write() as conn:
        row = store.get_message(conn, delivery_id, bodies=False)
        if row is None or row.account_id != account_id:
            raise errors.not_found("Unknown message.")
        sms_flow.handle_status(conn, row, status=status, error_code=int(code) if code and code.isdigit() else None,
                               now=ctx.now())
    return Reply(204)


def _confirm_sns_subscription(url: str) -> None:
    host = urlsplit(url).hostname or ""
    # Only SNS's own endpoints: this request must not be a way to make the server fetch anything else.
    if urlsplit(url).scheme == "https" and host.startswith("sns.") and host.endswith(".amazonaws.com"):
        try:
            httpx.get(url, timeout=10)
        except httpx.HTTPError as exc:
            log.warning("SNS subscription confirmation failed: %s", exc)


def _json_body(ctx: Ctx) -> Any:
    try:
        return json.loads(ctx.body_bytes or b"null")
    except ValueError:
        raise errors.parse_error("The body is not valid JSON.") from None


@api.post("/webhooks/ses", "webhook_ses", auth="none", body_types=SNS_TYPES)
def ses(ctx: Ctx) -> Reply:
    """Amazon SES bounce and complaint notifications, delivered by SNS (HTTP/S subscription)."""
    body = _json_body(ctx)
    if not isinstance(body, dict):
        raise errors.invalid("Expected an SNS message object.", pointer="/")
    if body.get("Type") == "SubscriptionConfirmation" and isinstance(body.get("SubscribeURL"), str):
        _confirm_sns_subscription(body["SubscribeURL"])
        return Reply(200, raw=b"", media_type="text/plain")
    reports = bounces.parse_ses(body)
    with ctx.db.write() as conn:
        recorded = bounces.record_reports(conn, context_for_services(ctx.services).signer, reports, ctx.now())
    return Reply(200, {"received": len(reports), "recorded": recorded}, media_type="application/json")


@api.post("/webhooks/sendgrid", "webhook_sendgrid", auth="none")
def sendgrid(ctx: Ctx) -> Reply:
    """SendGrid's event webhook (a JSON array of events): bounces, drops and spam reports."""
    body = _json_body(ctx)
    if not isinstance(body, list):
        raise errors.invalid("Expected a JSON array of events.", pointer="/")
    reports = bounces.parse_sendgrid(body)
    with ctx.db.write() as conn:
        recorded = bounces.record_reports(conn, context_for_services(ctx.services).signer, reports, ctx.now())
    return Reply(200, {"received": len(reports), "recorded": recorded}, media_type="application/json")
