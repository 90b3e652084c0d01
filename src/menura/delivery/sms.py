"""SMS: a provider interface, a Twilio-compatible REST provider, and inbound keyword handling.

    MENURA_SMS_URL=twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001111
    (add `&scheme=http` to talk to a local fake on 127.0.0.1)

With no provider configured, SMS are captured in the outbox like email.

Inbound keywords (Klaviyo help center, "How compliance keywords work" and "configure your opt-out
keyword settings"): an opt-out keyword anywhere in the message ("contains word", Klaviyo's default and
the only choice for US numbers) removes SMS marketing and transactional consent; START / UNSTOP / YES /
Y as the whole message re-subscribes; HELP / INFO as the whole message gets the help reply. Opt-out
keywords include those the FCC's 2025 revocation rule requires (STOP, QUIT, END, CANCEL, UNSUBSCRIBE,
REVOKE, OPT OUT).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from menura.delivery.message import TrackingOptions
from menura.delivery.status_codes import DEFERRED, DELIVERED, FAILED, RELAY_DOWN, SendOutcome
from menura.domain.tracking_settings import UtmContext

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE"})
OPT_OUT_PHRASES = ("OPT OUT", "OPT-OUT", "OPTOUT")
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES", "Y"})
HELP_WORDS = frozenset({"HELP", "INFO"})

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"
NONE = "none"

_WORD = re.compile(r"[A-Za-z]+")

# Twilio error codes -> Klaviyo's "Failure Type" names (help center, "SMS metrics").
_FAILURE_TYPES = {
    30003: "Device Unreachable", 30005: "Device Disconnected", 30006: "Device Incapable of Receiving SMS",
    21614: "Device Incapable of Receiving SMS", 30007: "Carrier Violation", 30004: "Message Blocked",
    21610: "Message Blocked", 21211: "Device Incapable of Receiving SMS", 21408: "Message Blocked",
}


def keyword_action(body: str) -> str:
    """What an inbound message asks for: opt_out, opt_in, help or none."""
    text = " ".join(_WORD.findall(body.upper()))
    words = text.split()
    if any(w in OPT_OUT_WORDS for w in words) or any(p in body.upper() for p in OPT_OUT_PHRASES):
        return OPT_OUT
    if len(words) == 1 and words[0] in OPT_IN_WORDS:
        return OPT_IN
    if len(words) == 1 and words[0] in HELP_WORDS:
        return HELP
    return NONE


def failure_type(error_code: int | None) -> str:
    return _FAILURE_TYPES.get(error_code or 0, "Unknown")


@dataclass(frozen=True)
class OutgoingSms:
    body: str
    from_number: str | None = None  # default: the provider's configured number
    media_urls: Sequence[str] = ()
    tracking: TrackingOptions = field(default_factory=TrackingOptions)
    utm: UtmContext | None = None
    marketing: bool = True
    # Links: None sends each through a signed click redirect; True through a short tracked link
    # (Klaviyo's `shorten_links`); False leaves them as written (UTM parameters only, no click tracking).
    shorten_links: bool | None = None


@dataclass(frozen=True)
class SmsOutcome(SendOutcome):
    provider_id: str | None = None
    failure_type: str | None = None


class SmsProvider(Protocol):
    name: str
    from_number: str

    def send(self, *, to: str, from_number: str, body: str, media_urls: Sequence[str],
             status_callback: str | None) -> SmsOutcome: ...

    def verify_webhook(self, url: str, params: Mapping[str, str], signature: str | None) -> bool: ...


class TwilioProvider:
    """Twilio's Messages API (form-encoded POST, basic auth with the account SID and auth token)."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, base_url: str,
                 timeout: float = 15.0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(auth=(account_sid, auth_token), timeout=timeout)

    @classmethod
    def from_url(cls, url: str) -> TwilioProvider:
        parts = urlsplit(url)
        if parts.scheme != "twilio" or not parts.username or not parts.password or not parts.hostname:
            raise ValueError("MENURA_SMS_URL must look like twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+1...")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        scheme = query.get("scheme", "https")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(unquote(parts.username), unquote(parts.password), query.get("from", ""), f"{scheme}://{netloc}")

    def send(self, *, to: str, from_number: str, body: str, media_urls: Sequence[str] = (),
             status_callback: str | None = None) -> SmsOutcome:
        data: dict[str, Any] = {"To": to, "From": from_number, "Body": body}
        if media_urls:
            data["MediaUrl"] = list(media_urls)
        if status_callback:
            data["StatusCallback"] = status_callback
        try:
            response = self._client.post(f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json",
                                         data=data)
        except httpx.HTTPError as exc:
            return SmsOutcome(RELAY_DOWN, detail=f"SMS provider unreachable: {exc}")
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            payload = {}
        if response.status_code in (200, 201):
            return SmsOutcome(DELIVERED, response.status_code, str(payload.get("status", "queued")),
                              provider_id=payload.get("sid"))
        code = payload.get("code")
        detail = str(payload.get("message") or response.text[:500])
        if response.status_code == 429 or response.status_code >= 500:
            return SmsOutcome(DEFERRED, response.status_code, detail)
        return SmsOutcome(FAILED, response.status_code, detail, failure_type=failure_type(code))

    def verify_webhook(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """Twilio's X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + each POST key and value,
        keys sorted))."""
        if not signature:
            return False
        payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
        expected = base64.b64encode(hmac.new(self.auth_token.encode(), payload.encode(), hashlib.sha1).digest())
        return hmac.compare_digest(expected.decode(), signature)

    def close(self) -> None:
        self._client.close()


_providers: dict[str, TwilioProvider] = {}
_providers_lock = threading.Lock()


def provider_for(url: str) -> TwilioProvider:
    with _providers_lock:
        provider = _providers.get(url)
        if provider is None:
            provider = _providers[url] = TwilioProvider.from_url(url)
        return provider


def twiml(reply: str | None) -> bytes:
    """A TwiML answer to an inbound message: the reply text, or nothing."""
    if not reply:
        return b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    from xml.sax.saxutils import escape

    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
            f"{escape(reply)}</Message></Response>").encode()


URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
