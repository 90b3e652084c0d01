"""What sending needs from its environment: settings, the signing secret, the clock, the public base
URL, the DKIM key and the transports. Resolved from the database and settings once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from menura import ids
from menura.clock import Clock, SystemClock, make_clock
from menura.delivery.dkim_signing import DkimSigner
from menura.delivery.smtp import SmtpTransport, transport_for
from menura.delivery.tracking import RecipientLinks, TokenSigner
from menura.settings import Settings, get_settings
from menura.store import server_state
from menura.store.db import Database

_default_settings: Settings | None = None
_secrets: dict[str, bytes] = {}
_lock = threading.Lock()


def use_settings(settings: Settings | None) -> None:
    """Make these the settings background handlers send with in this process (tests, embedded servers
    whose settings do not come from the environment). None goes back to the environment's."""
    global _default_settings
    _default_settings = settings


def current_settings() -> Settings:
    return _default_settings or get_settings()


@lru_cache(maxsize=8)
def _dkim(selector: str, domain: str, key_path: str) -> DkimSigner:
    return DkimSigner.from_files(selector, domain, key_path)


@dataclass(frozen=True)
class DeliveryContext:
    settings: Settings
    signer: TokenSigner
    clock: Clock

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def base_url(self) -> str:
        configured = self.settings.public_url.rstrip("/")
        if configured:
            return configured
        # Listening on every interface is not an address a recipient can use.
        host = "localhost" if self.settings.host in ("", "0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.settings.port}"

    def links(self, account_id: str, delivery_id: str) -> RecipientLinks:
        return RecipientLinks(self.base_url, self.signer, account_id, delivery_id)

    @property
    def dkim(self) -> DkimSigner | None:
        s = self.settings
        if not (s.dkim_selector and s.dkim_domain and s.dkim_private_key_path):
            return None
        return _dkim(s.dkim_selector, s.dkim_domain, s.dkim_private_key_path)

    def email_transport(self) -> SmtpTransport | None:
        """The relay, or None: no relay configured, messages are captured in the outbox."""
        return transport_for(self.settings.smtp_url) if self.settings.smtp_url else None

    def sms_provider(self) -> Any:
        from menura.delivery.sms import provider_for

        return provider_for(self.settings.sms_url) if self.settings.sms_url else None


def signing_secret(source: Database | Connection, settings: Settings | None = None) -> bytes:
    """The server's signing secret (the one `Services.secret` holds on the API side)."""
    return _secret(source, settings or current_settings())


def _secret(source: Database | Connection, settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    key = source.url if isinstance(source, Database) else str(source.engine.url)
    with _lock:
        cached = _secrets.get(key)
    if cached is not None:
        return cached
    if isinstance(source, Database):
        with source.write() as conn:
            value = server_state.get_or_create(conn, "secret_key", lambda: ids.token(32))
    else:
        value = server_state.get_or_create(source, "secret_key", lambda: ids.token(32))
    secret = str(value).encode()
    with _lock:
        _secrets[key] = secret
    return secret


class _ConnectionVirtualClock:
    """The virtual clock read through the caller's connection (no Database object at hand)."""

    virtual = True

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def now(self) -> datetime:
        value = server_state.get_value(self._conn, "virtual_clock")
        return datetime.fromisoformat(value) if value else SystemClock().now()


def delivery_context(source: Database | Connection, *, settings: Settings | None = None,
                     clock: Clock | None = None, secret: bytes | None = None) -> DeliveryContext:
    settings = settings or current_settings()
    if clock is None:
        if isinstance(source, Database):
            clock = make_clock(settings.clock, source)
        elif settings.clock == "virtual":
            clock = _ConnectionVirtualClock(source)
        else:
            clock = SystemClock()
    return DeliveryContext(settings, TokenSigner(secret or _secret(source, settings)), clock)


def context_for_services(services: Any) -> DeliveryContext:
    """From a request's Services (the API side)."""
    return DeliveryContext(services.settings, TokenSigner(services.secret), services.clock)
