"""Menura's own public page for double opt-in: the confirmation link of a pending subscription
(`GET /p/confirm/{token}`) answers a small HTML page. Not a Klaviyo operation."""

from __future__ import annotations

import html

from menura.api.operation import Category, Ctx, Reply
from menura.domain import subscriptions

api = Category("Subscription pages")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}</style>
</head><body><h1>{title}</h1><p>{message}</p></body></html>
"""


def _page(status: int, title: str, message: str) -> Reply:
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return Reply(status, raw=body.encode(), media_type="text/html; charset=utf-8",
                 headers={"Cache-Control": "no-store"})


@api.get("/p/confirm/{token}", "confirm_subscription", auth="none")
def confirm_subscription(ctx: Ctx) -> Reply:
    """Confirm a double opt-in subscription."""
    pending_id = subscriptions.pending_id_from_token(ctx.services.secret, ctx.path_params["token"])
    if pending_id is None:
        return _page(404, "Link not valid", "This confirmation link is not valid.")
    with ctx.db.write() as conn:
        confirmed = subscriptions.confirm_pending(conn, pending_id, ctx.now())
    if confirmed is None:
        return _page(200, "Already confirmed", "There is nothing left to confirm: your subscription is active.")
    return _page(200, "Subscription confirmed", f"Thank you: you are now subscribed to {confirmed.name}.")
