"""The outbox in a browser: /outbox lists captured (and sent) messages, /outbox/{id} shows one's
HTML part, /outbox/{id}/raw its source. Operator token, as a Bearer header or `?token=` for browsers.
Not Klaviyo operations."""

from __future__ import annotations

from menura.api.operation import Category, Ctx, Reply
from menura.delivery import outbox
from menura.domain import keys as key_rules
from menura.jsonapi import errors

api = Category("Outbox")

# Captured HTML is untrusted content: no scripts, no same-origin access to this server.
_SANDBOX = {"Content-Security-Policy": "sandbox allow-popups allow-popups-to-escape-sandbox",
            "Cache-Control": "no-store"}


def _authorize(ctx: Ctx) -> str:
    token = ctx.params.get("token", "")
    header = ctx.headers.get("authorization") or (f"Bearer {token}" if token else None)
    key_rules.check_operator(ctx.services, header)
    return token


def _limit(ctx: Ctx) -> int:
    raw = ctx.params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise errors.invalid("limit must be a number from 1 to 1000.", parameter="limit")
    return int(raw)


@api.get("/outbox", "outbox_list", auth="none")
def outbox_list(ctx: Ctx) -> Reply:
    """Most recent messages, newest first (`?account=`, `?limit=`)."""
    token = _authorize(ctx)
    account_id = ctx.params.get("account") or None
    with ctx.db.read() as conn:
        items = outbox.entries(conn, account_id=account_id, limit=_limit(ctx))
    body = outbox.listing_page(items, token, account_id)
    return Reply(200, raw=body.encode(), media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


@api.get("/outbox/{id}", "outbox_message", auth="none")
def outbox_message(ctx: Ctx) -> Reply:
    """One message's HTML part, as the recipient's mail client renders it."""
    _authorize(ctx)
    with ctx.db.read() as conn:
        content = outbox.html_part(conn, ctx.path_params["id"])
    if content is None:
        raise errors.not_found(f"No message with id '{ctx.path_params['id']}'.")
    return Reply(200, raw=content.encode(), media_type="text/html; charset=utf-8", headers=dict(_SANDBOX))


@api.get("/outbox/{id}/raw", "outbox_raw", auth="none")
def outbox_raw(ctx: Ctx) -> Reply:
    """The captured message source (MIME for email)."""
    _authorize(ctx)
    with ctx.db.read() as conn:
        raw = outbox.raw_message(conn, ctx.path_params["id"])
    if raw is None:
        raise errors.not_found(f"No captured source for message '{ctx.path_params['id']}'.")
    return Reply(200, raw=raw, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"})
