"""The outbox: with no relay or SMS provider configured, messages are captured in the database
(`outbound_messages`, status "captured") instead of sent, so a new user sees exactly what would have
gone out. Browsable with `menura outbox` and at /outbox (operator token). Every sent message is listed
too, with its status; only captured ones keep their complete MIME."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from typing import Any

import msgspec
from sqlalchemy import Connection

from menura.delivery.sending import decompress
from menura.store import delivery as store


@dataclass(frozen=True)
class OutboxEntry:
    id: str
    account_id: str
    channel: str
    to: str
    sender: str
    subject: str
    status: str
    created: datetime


def entries(conn: Connection, *, account_id: str | None = None, limit: int = 50) -> list[OutboxEntry]:
    rows = store.list_messages(conn, account_id=account_id, limit=limit)
    return [OutboxEntry(r.id, r.account_id, r.channel, r.to_address, r.from_address, r.subject or "", r.status,
                        r.created) for r in rows]


def raw_message(conn: Connection, delivery_id: str) -> bytes | None:
    """The captured message as sent: MIME for email, the text (and media URLs) for SMS."""
    row = store.get_message(conn, delivery_id)
    if row is None:
        return None
    if row.channel == "sms":
        data = msgspec.json.decode(decompress(row.raw_z)) if row.raw_z else {}
        media = "".join(f"\nMedia: {url}" for url in data.get("media", []))
        return f"From: {row.from_address}\nTo: {row.to_address}\n\n{data.get('body', '')}{media}\n".encode()
    return decompress(row.raw_z) or None


def html_part(conn: Connection, delivery_id: str) -> str | None:
    """The HTML the recipient's mail client shows (from the captured MIME; else the stored HTML)."""
    row = store.get_message(conn, delivery_id)
    if row is None:
        return None
    if row.channel == "email" and row.raw_z:
        message: Any = message_from_bytes(decompress(row.raw_z), policy=policy.default)
        part = message.get_body(preferencelist=("html",))
        if part is not None:
            return str(part.get_content())
    if row.html_z:
        return decompress(row.html_z).decode()
    raw = raw_message(conn, delivery_id)
    return f"<pre>{html.escape(raw.decode())}</pre>" if raw else None


def listing_page(items: Sequence[OutboxEntry], token: str, account_id: str | None) -> str:
    query = f"?token={html.escape(token)}" if token else ""
    rows = "".join(
        f"<tr><td>{e.created:%Y-%m-%d %H:%M:%S}</td><td>{html.escape(e.account_id)}</td><td>{e.channel}</td>"
        f"<td>{html.escape(e.to)}</td><td>{html.escape(e.sender)}</td>"
        f'<td><a href="/outbox/{e.id}{query}">{html.escape(e.subject or "(no subject)")}</a></td>'
        f'<td>{e.status}</td><td><a href="/outbox/{e.id}/raw{query}">raw</a></td></tr>'
        for e in items)
    scope = f" for account {html.escape(account_id)}" if account_id else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Menura outbox</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}</style></head><body>"
        f"<h1>Outbox{scope}</h1><p>{len(items)} most recent messages. With no SMTP relay or SMS provider "
        "configured, messages are captured here instead of sent.</p><table><tr><th>Time (UTC)</th><th>Account</th>"
        "<th>Channel</th><th>To</th><th>From</th><th>Subject</th><th>Status</th><th></th></tr>"
        f"{rows}</table></body></html>")
