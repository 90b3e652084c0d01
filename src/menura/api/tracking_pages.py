"""Public pages a message's recipient reaches (signed tokens, no key): open pixel, click redirect,
unsubscribe (GET confirms, POST and RFC 8058 one-click POST unsubscribe at once), manage preferences,
web view. Not Klaviyo operations."""

from __future__ import annotations

import base64
import html
from typing import Any
from urllib.parse import parse_qs

from menura.api.operation import Category, Ctx, Reply
from menura.delivery import outcomes, preferences, tracking
from menura.delivery.context import context_for_services
from menura.delivery.message import add_query_params
from menura.delivery.sending import decompress
from menura.domain.identity import kx_token
from menura.store import delivery as store

api = Category("Tracking pages")

FORM = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Pragma": "no-cache"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.5rem 1.2rem;cursor:pointer}} label{{display:block;margin:.5rem 0}}
fieldset{{border:1px solid #ddd;margin:1rem 0;padding:.5rem 1rem}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def page(status: int, title: str, body_html: str) -> Reply:
    text = _PAGE.format(title=html.escape(title), body=body_html)
    return Reply(status, raw=text.encode(), media_type="text/html; charset=utf-8", headers=dict(NO_CACHE))


def _expired() -> Reply:
    return page(404, "Link not valid", "<p>This link is not valid or has expired.</p>")


def _message(ctx: Ctx, kind: str, token: str) -> tuple[Any, list[Any]] | None:
    """The message a token names (None when forged, altered, or the message is gone)."""
    signer = context_for_services(ctx.services).signer
    try:
        account_id, delivery_id, extra = tracking.parse_message_token(signer, kind, token)
    except tracking.InvalidToken:
        return None
    with ctx.db.read() as conn:
        row = store.get_message(conn, delivery_id, bodies=kind == tracking.WEB_VIEW)
    if row is None or row.account_id != account_id:
        return None
    return row, list(extra)


def _form(ctx: Ctx) -> dict[str, list[str]]:
    content_type = ctx.headers.get("content-type", "")
    if "multipart/form-data" in content_type:
        # One-click unsubscribe bodies are tiny; only the field names matter here.
        text = ctx.body_bytes.decode("utf-8", "replace")
        return {"List-Unsubscribe": ["One-Click"]} if "List-Unsubscribe" in text else {}
    return parse_qs(ctx.body_bytes.decode("utf-8", "replace"), keep_blank_values=True)


@api.get("/t/o/{token}.gif", "tracking_open", auth="none")
def open_pixel(ctx: Ctx) -> Reply:
    """Open pixel: records "Opened Email"; always answers the GIF."""
    found = _message(ctx, tracking.OPEN, ctx.path_params["token"])
    if found is not None and found[0].channel == "email":
        with ctx.db.write() as conn:
            outcomes.record_open(conn, found[0], ctx.now())
    return Reply(200, raw=PIXEL, media_type="image/gif", headers=dict(NO_CACHE))


@api.get("/t/c/{token}", "tracking_click", auth="none")
def click(ctx: Ctx) -> Reply:
    """Click redirect: records "Clicked Email" / "Clicked SMS" and redirects to the signed URL."""
    found = _message(ctx, tracking.CLICK, ctx.path_params["token"])
    if found is None or not found[1] or not isinstance(found[1][0], str):
        return _expired()
    row, (url, *_) = found
    with ctx.db.write() as conn:
        outcomes.record_click(conn, row, url, ctx.now())
    if row.profile_id:
        # Klaviyo's `_kx` identifies the visitor to onsite tracking on the destination site.
        url = add_query_params(url, [("_kx", kx_token(ctx.services.secret, row.account_id, row.profile_id))])
    return Reply(302, headers={"Location": url, **NO_CACHE})


def _unsubscribe_form(token: str) -> str:
    return (f'<p>Click the button to stop receiving these messages.</p><form method="post" '
            f'action="/t/u/{html.escape(token)}"><button type="submit">Unsubscribe</button></form>')


@api.get("/t/u/{token}", "tracking_unsubscribe_page", auth="none")
def unsubscribe_page(ctx: Ctx) -> Reply:
    """Unsubscribe confirmation page (a GET never unsubscribes: link scanners follow links)."""
    if _message(ctx, tracking.UNSUBSCRIBE, ctx.path_params["token"]) is None:
        return _expired()
    return page(200, "Unsubscribe", _unsubscribe_form(ctx.path_params["token"]))


@api.post("/t/u/{token}", "tracking_unsubscribe", auth="none", body_types=FORM)
def unsubscribe(ctx: Ctx) -> Reply:
    """Unsubscribe at once: the confirmation form, or an RFC 8058 one-click POST from a mail client."""
    token = ctx.path_params["token"]
    found = _message(ctx, tracking.UNSUBSCRIBE, token)
    if found is None:
        return _expired()
    row = found[0]
    one_click = _form(ctx).get("List-Unsubscribe") == ["One-Click"]
    with ctx.db.write() as conn:
        outcomes.unsubscribe(conn, row, now=ctx.now(), method_detail="one-click" if one_click else "unsubscribe page")
    if one_click:
        return Reply(200, raw=b"", media_type="text/plain", headers=dict(NO_CACHE))
    channel = "text messages" if row.channel == "sms" else "marketing email"
    return page(200, "You are unsubscribed", f"<p>You will no longer receive {channel} from us.</p>")


def _preferences_form(token: str, prefs: preferences.Preferences, saved: bool) -> str:
    parts = ["<p><strong>Your preferences were saved.</strong></p>"] if saved else []
    parts.append(f'<form method="post" action="/t/p/{html.escape(token)}"><fieldset><legend>Channels</legend>')
    if prefs.email:
        checked = " checked" if prefs.email_subscribed else ""
        parts.append(f'<label><input type="checkbox" name="email_marketing" value="on"{checked}> Marketing email '
                     f"to {html.escape(prefs.email)}</label>")
    if prefs.phone_number:
        checked = " checked" if prefs.sms_subscribed else ""
        parts.append(f'<label><input type="checkbox" name="sms_marketing" value="on"{checked}> Marketing text '
                     f"messages to {html.escape(prefs.phone_number)}</label>")
    parts.append("</fieldset>")
    if prefs.lists:
        parts.append("<fieldset><legend>Lists</legend>")
        for choice in prefs.lists:
            checked = " checked" if choice.subscribed else ""
            parts.append(f'<label><input type="checkbox" name="list" value="{html.escape(choice.id)}"{checked}> '
                         f"{html.escape(choice.name)}</label>")
        parts.append("</fieldset>")
    parts.append('<button type="submit">Save preferences</button></form>')
    return "".join(parts)


def _preferences(ctx: Ctx, saved: bool) -> Reply:
    token = ctx.path_params["token"]
    found = _message(ctx, tracking.PREFERENCES, token)
    if found is None or found[0].profile_id is None:
        return _expired()
    row = found[0]
    with ctx.db.write() if saved else ctx.db.read() as conn:
        if saved:
            preferences.apply(conn, row, _form(ctx), ctx.now())
        prefs = preferences.view(conn, row.account_id, row.profile_id)
    if prefs is None:
        return _expired()
    return page(200, "Manage preferences", _preferences_form(token, prefs, saved))


@api.get("/t/p/{token}", "tracking_preferences_page", auth="none")
def preferences_page(ctx: Ctx) -> Reply:
    """Manage preferences: channel consent and lists."""
    return _preferences(ctx, saved=False)


@api.post("/t/p/{token}", "tracking_preferences_save", auth="none", body_types=FORM)
def preferences_save(ctx: Ctx) -> Reply:
    """Apply the preferences form at once."""
    return _preferences(ctx, saved=True)


@api.get("/t/v/{token}", "tracking_web_view", auth="none")
def web_view(ctx: Ctx) -> Reply:
    """The message as it was sent (without the open pixel)."""
    found = _message(ctx, tracking.WEB_VIEW, ctx.path_params["token"])
    if found is None or not found[0].html_z:
        return _expired()
    return Reply(200, raw=decompress(found[0].html_z), media_type="text/html; charset=utf-8",
                 headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"})
