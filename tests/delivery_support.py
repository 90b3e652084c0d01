"""Test support for delivery: subscribed profiles, outcome events, an aiosmtpd sink that records what
it receives, and a fake Twilio API on loopback that records requests."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from sqlalchemy import select

from menura.clock import SystemClock
from menura.domain import consent
from menura.domain.profiles import ProfileInput, resolve_profile
from menura.store import profiles as profile_store
from menura.store.event_tables import events, metrics


def make_profile(db: Any, account_id: str, *, email: str | None = None, phone: str | None = None,
                 subscribe: bool = True) -> str:
    now = SystemClock().now()
    email = email or f"p-{uuid.uuid4().hex[:10]}@example.org"
    with db.write() as conn:
        profile_id, _ = resolve_profile(conn, account_id=account_id,
                                        data=ProfileInput(email=email, phone_number=phone), now=now)
        if subscribe:
            consent.set_email_marketing(conn, account_id=account_id, profile_id=profile_id,
                                        consent=consent.SUBSCRIBED, now=now)
            if phone:
                consent.set_sms_marketing(conn, account_id=account_id, profile_id=profile_id,
                                          consent=consent.SUBSCRIBED, now=now)
    return profile_id


def profile_row(db: Any, account_id: str, profile_id: str) -> Any:
    with db.read() as conn:
        return profile_store.get_profile(conn, account_id, profile_id)


def events_of(db: Any, account_id: str, metric: str, profile_id: str | None = None) -> list[dict[str, Any]]:
    query = (select(events.c.properties, events.c.profile_id).join(metrics, metrics.c.id == events.c.metric_id)
             .where(events.c.account_id == account_id, metrics.c.name == metric))
    if profile_id is not None:
        query = query.where(events.c.profile_id == profile_id)
    with db.read() as conn:
        return [dict(row.properties) for row in conn.execute(query.order_by(events.c.id))]


def html_of(raw: bytes) -> str:
    message: Any = message_from_bytes(raw, policy=policy.default)
    return str(message.get_body(("html",)).get_content())


def links_in(html: str, marker: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(r'(?:href|src)="([^"]+)"', html) if marker in href]


# --- an SMTP sink -------------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any = None


@dataclass
class SmtpSink:
    """Accepts everything, or answers with `reply_for(rcpt)` when it returns an SMTP reply line."""

    messages: list[Received] = field(default_factory=list)
    reply_for: Callable[[str], str | None] = lambda rcpt: None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.reply_for(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                          session.peer))
        return "250 2.0.0 Ok: queued"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]


@contextmanager
def smtp_sink(port: int, sink: SmtpSink | None = None, **kwargs: Any) -> Iterator[SmtpSink]:
    sink = sink or SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# --- a fake Twilio ------------------------------------------------------------------------------------------


@dataclass
class FakeTwilio:
    requests: list[dict[str, Any]] = field(default_factory=list)
    # (status, json body) for the next requests; empty: 201 with a new sid
    replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    port: int = 0


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    state = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            state.requests.append({"path": self.path, "auth": self.headers.get("authorization"),
                                   "form": parse_qs(body)})
            status, payload = state.replies.pop(0) if state.replies else (
                201, {"sid": f"SM{uuid.uuid4().hex}", "status": "queued"})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
