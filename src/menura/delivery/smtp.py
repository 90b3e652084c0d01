"""SMTP transport through a relay (`MENURA_SMTP_URL`), with aiosmtplib: TLS (implicit or STARTTLS),
AUTH, a pool of reused connections, concurrency up to the pool size, per-recipient-domain rate
limits, and classification of every reply (see `status_codes`).

    smtp://user:pass@host:587?starttls=true&pool=4&rate=gmail.com:20,*:100&timeout=30&verify=true
    smtps://user:pass@host:465

The dispatcher and the retry handler run in worker threads, so the public methods are synchronous:
the transport owns an asyncio loop in a daemon thread and submits work to it. One transport per
URL per process (`transport_for`), so all threads share the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from menura.delivery.status_codes import DEFERRED, DELIVERED, RELAY_DOWN, SendOutcome, classify_reply

log = logging.getLogger(__name__)

# After the relay refused a connection, fail fast for this long instead of timing out per message.
CIRCUIT_SECONDS = 2.0


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt: str
    data: bytes
    # Cc/Bcc recipients of the same bytes. The outcome is the profile's (`rcpt`): a refused copy is logged.
    copies: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool | None = None  # None: use STARTTLS when the server offers it
    pool_size: int = 4
    timeout: float = 30.0
    verify_certs: bool = True
    domain_rates: dict[str, float] = field(default_factory=dict)  # messages/second; "*" for any other

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"MENURA_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("MENURA_SMTP_URL needs a host")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        starttls = _flag(query.get("starttls"))
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 587 if starttls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=False if implicit else starttls,
            pool_size=max(1, int(query.get("pool", "4"))),
            timeout=float(query.get("timeout", "30")),
            verify_certs=_flag(query.get("verify")) is not False,
            domain_rates=_rates(query.get("rate", "")),
        )


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def _rates(text: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in text.split(","):
        domain, _, rate = item.strip().rpartition(":")
        if domain and rate:
            rates[domain.lower()] = float(rate)
    return rates


class DomainRateLimiter:
    """Spaces out messages per recipient domain (the configured rate, or "*"'s, messages/second)."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.rates = rates
        self._next: dict[str, float] = {}

    def delay(self, domain: str, now: float) -> float:
        rate = self.rates.get(domain, self.rates.get("*", 0.0))
        if rate <= 0:
            return 0.0
        slot = max(now, self._next.get(domain, now))
        self._next[domain] = slot + 1.0 / rate
        return slot - now

    async def wait(self, domain: str) -> None:
        delay = self.delay(domain, time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)


class _LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: object, timeout: float | None = None) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SmtpTransport:
    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._runner = _LoopThread(f"menura-smtp-{config.host}")
        self._limiter = DomainRateLimiter(config.domain_rates)
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots: asyncio.Semaphore | None = None
        self._down_until = 0.0

    # -- synchronous API (any thread) --

    def send_many(self, envelopes: Sequence[Envelope]) -> list[SendOutcome]:
        """Send each envelope on the pool, concurrently; one outcome per envelope, in order."""
        if not envelopes:
            return []
        # Generous, but bounded: a wedged relay must not hang a worker thread forever.
        rounds = len(envelopes) / self.config.pool_size + 2
        result = self._runner.run(self._send_all(list(envelopes)), timeout=self.config.timeout * 4 * rounds)
        assert isinstance(result, list)
        return result

    def send(self, envelope: Envelope) -> SendOutcome:
        return self.send_many([envelope])[0]

    def close(self) -> None:
        try:
            self._runner.run(self._close_all(), timeout=10)
        finally:
            self._runner.stop()

    # -- inside the loop --

    async def _send_all(self, envelopes: list[Envelope]) -> list[SendOutcome]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.pool_size)
        return list(await asyncio.gather(*(self._send_one(e) for e in envelopes)))

    async def _send_one(self, envelope: Envelope) -> SendOutcome:
        assert self._slots is not None
        await self._limiter.wait(envelope.rcpt.rpartition("@")[2].lower())
        async with self._slots:
            for attempt in (1, 2):
                if time.monotonic() < self._down_until:
                    return SendOutcome(RELAY_DOWN, detail="relay unreachable (recently refused a connection)")
                try:
                    client = await self._acquire()
                except (TimeoutError, OSError, aiosmtplib.SMTPException) as exc:
                    self._down_until = time.monotonic() + CIRCUIT_SECONDS
                    return SendOutcome(RELAY_DOWN, detail=f"cannot connect to the relay: {exc}")
                try:
                    errors, response = await _transaction(client, envelope)
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    self._release(client)
                    refused = next((r for r in exc.recipients if r.recipient == envelope.rcpt), exc.recipients[0])
                    return classify_reply(refused.code, refused.message)
                except aiosmtplib.SMTPResponseException as exc:
                    # Sender or data refused: the reply is about this message (421 closes the session).
                    self._release(client, keep=exc.code != 421)
                    return classify_reply(exc.code, exc.message)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
                    self._release(client, keep=False)
                    if attempt == 2:
                        return SendOutcome(RELAY_DOWN, detail=f"connection lost: {exc}")
                    continue  # a pooled connection the server had closed: retry once on a fresh one
                except aiosmtplib.SMTPException as exc:
                    self._release(client, keep=False)
                    return SendOutcome(DEFERRED, detail=f"SMTP error: {exc}")
                self._release(client)
                if envelope.rcpt in errors:
                    code, message = errors[envelope.rcpt]
                    return classify_reply(code, message)
                if errors:
                    log.warning("relay refused copies %s of a message to %s", sorted(errors), envelope.rcpt)
                return SendOutcome(DELIVERED, 250, response[:500])
        return SendOutcome(RELAY_DOWN, detail="unreachable")  # pragma: no cover

    async def _acquire(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        cfg = self.config
        client = aiosmtplib.SMTP(hostname=cfg.host, port=cfg.port, username=cfg.username, password=cfg.password,
                                 use_tls=cfg.implicit_tls, start_tls=cfg.starttls, validate_certs=cfg.verify_certs,
                                 timeout=cfg.timeout)
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except BaseException:
            client.close()  # e.g. connected, then AUTH refused: don't leave the session open
            raise
        return client

    def _release(self, client: aiosmtplib.SMTP, *, keep: bool = True) -> None:
        if keep and client.is_connected:
            self._idle.append(client)
        else:
            client.close()

    async def _close_all(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


async def _transaction(client: aiosmtplib.SMTP, envelope: Envelope) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """What `SMTP.sendmail` does (MAIL with SIZE, RCPT per address, DATA; RSET after a refusal), minus
    its extra passes: sendmail parses every address twice and runs the line-ending regex over the
    whole message once more just to measure it, and built messages have CRLF line endings already.
    Returns (refused copies' replies by address, the DATA reply)."""
    options = [f"SIZE={len(envelope.data)}"] if client.supports_extension("size") else []
    refused: list[aiosmtplib.SMTPRecipientRefused] = []
    try:
        await client.mail(envelope.mail_from, options=options)
        for address in (envelope.rcpt, *envelope.copies):
            try:
                await client.rcpt(address)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused.append(exc)
        if len(refused) == 1 + len(envelope.copies):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        response = await client.data(envelope.data)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()
        raise
    return {exc.recipient: aiosmtplib.SMTPResponse(exc.code, exc.message) for exc in refused}, response.message


_transports: dict[str, SmtpTransport] = {}
_transports_lock = threading.Lock()


def transport_for(url: str) -> SmtpTransport:
    """The process-wide transport of a relay URL (its pool is shared by every thread)."""
    with _transports_lock:
        transport = _transports.get(url)
        if transport is None:
            transport = _transports[url] = SmtpTransport(SmtpConfig.from_url(url))
        return transport


def close_transports() -> None:
    with _transports_lock:
        transports = list(_transports.values())
        _transports.clear()
    for transport in transports:
        transport.close()
