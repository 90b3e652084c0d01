"""The double opt-in confirmation email: when a profile's subscription to a double opt-in list is
left pending, it gets a message with the signed confirmation link (GET /p/confirm/{token})."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy import Connection, Row

from menura.domain import subscriptions
from menura.domain.profiles import get_profile
from menura.store import accounts as account_store
from menura.store import lists as list_store


def send_confirmation(conn: Connection, pending: Row[Any]) -> None:
    """Queue the confirmation in the subscribing transaction: it is sent once that commits."""
    from menura.delivery import OutgoingEmail, TrackingOptions, send_email
    from menura.delivery.context import delivery_context, signing_secret

    channels = (pending.channels or {}).get("channels", {})
    if subscriptions.EMAIL_MARKETING not in channels:
        return
    profile = get_profile(conn, pending.account_id, pending.profile_id)
    account = account_store.get_account(conn, pending.account_id)
    list_row = list_store.get_list(conn, pending.account_id, pending.list_id)
    if profile is None or not profile.email or account is None or list_row is None:
        return
    ctx = delivery_context(conn)
    url = subscriptions.confirmation_url(ctx.base_url, signing_secret(conn, ctx.settings), pending.id)
    sender = account.contact_information or {}
    name = html.escape(list_row.name)
    body = (f"<p>Please confirm your subscription to <strong>{name}</strong>.</p>"
            f'<p><a href="{html.escape(url)}">Yes, subscribe me to this list</a></p>'
            "<p>If you received this email by mistake, simply delete it: you won't be subscribed.</p>")
    message = OutgoingEmail(subject=f"Confirm your subscription to {list_row.name}",
                            from_email=sender.get("default_sender_email") or "no-reply@localhost",
                            from_label=sender.get("default_sender_name") or account.name, html=body,
                            marketing=False,
                            # The link itself must reach the recipient untouched: no click redirect.
                            tracking=TrackingOptions(is_tracking_opens=False, is_tracking_clicks=False,
                                                     add_tracking_params=False))
    send_email(conn, account_id=pending.account_id, profile_id=pending.profile_id, to=profile.email,
               message=message, send_key=f"confirm:{pending.id}",
               attribution={"$message": f"confirm:{pending.list_id}", "List": list_row.name})


subscriptions.PENDING_CONFIRMATION_HOOKS.append(send_confirmation)
