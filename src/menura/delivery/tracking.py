"""Signed, tamper-proof tokens for everything a recipient can reach from a message: the open pixel,
click redirects (the destination URL is inside the signed token, so only URLs that were in the
message redirect), the unsubscribe and preferences pages, the web view, and the VERP bounce address.

A token is `base64url(msgpack([kind, *fields])) "." base64url(HMAC-SHA256(key, payload)[:16])`.
The key is derived from the server secret, so tokens survive restarts and work on every process.
Delivery ids are derived from (account, send key), so a retried send produces the same links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

OPEN = "o"
CLICK = "c"
UNSUBSCRIBE = "u"
PREFERENCES = "p"
WEB_VIEW = "v"
MESSAGE = "m"  # X-Menura-Message header: which message a bounce or complaint is about
SMS_STATUS = "s"  # provider status callback of one SMS
INFO = "i"  # the organization's contact information page (an SMS's company info link)

_MAC_BYTES = 16
# SHA-256 objects are copied from these rather than made anew: with OpenSSL 3 making one looks the
# algorithm up under a process-wide lock, which threads building messages side by side queue on.
_SHA256 = hashlib.sha256()
_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))
_VERP_MAC_CHARS = 12
_SHORT_MAC_CHARS = 10  # 50 bits: a short link cannot be guessed, and it stays short


class InvalidToken(ValueError):
    """The token was not made by this server (or was altered)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def delivery_id(account_id: str, send_key: str) -> str:
    """The id of the message sent for (account, send key): deterministic, so a retry of the same send
    builds the same Message-ID and the same links. 26 lowercase base32 characters (130 bits)."""
    hasher = _SHA256.copy()
    hasher.update(f"{account_id}\0{send_key}".encode())
    return _b32(hasher.digest(), 26)


def _b32(data: bytes, chars: int) -> str:
    """The first `chars` characters of lowercase base32(data), encoding only the bytes they need."""
    groups = -(-chars // 8)  # base32 writes 8 characters per 5 bytes, each group on its own
    return base64.b32encode(data[:groups * 5]).decode("ascii").lower()[:chars]


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"menura-tracking-v1", hashlib.sha256).digest()
        # HMAC-SHA256 (RFC 2104) from the two padded key states, copied per MAC (the key is one block).
        block = self._key.ljust(_SHA256.block_size, b"\0")
        self._inner, self._outer = _SHA256.copy(), _SHA256.copy()
        self._inner.update(block.translate(_INNER_PAD))
        self._outer.update(block.translate(_OUTER_PAD))

    def _mac(self, payload: bytes) -> bytes:
        inner, outer = self._inner.copy(), self._outer.copy()
        inner.update(payload)
        outer.update(inner.digest())
        return outer.digest()

    def sign(self, kind: str, *fields: Any) -> str:
        payload = msgspec.msgpack.encode([kind, *fields])
        return f"{_b64(payload)}.{_b64(self._mac(payload)[:_MAC_BYTES])}"

    def verify(self, kind: str, token: str) -> list[Any]:
        """The token's fields (after the kind); InvalidToken if forged, altered or of another kind."""
        body, dot, mac = token.partition(".")
        if not dot:
            raise InvalidToken("malformed token")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (ValueError, TypeError):
            raise InvalidToken("malformed token") from None
        if not hmac.compare_digest(self._mac(payload)[:_MAC_BYTES], given):
            raise InvalidToken("bad signature")
        try:
            decoded = msgspec.msgpack.decode(payload)
        except msgspec.DecodeError:
            raise InvalidToken("malformed payload") from None
        if not isinstance(decoded, list) or not decoded or decoded[0] != kind:
            raise InvalidToken("token of another kind")
        return decoded[1:]

    # VERP: the bounce address must survive MTAs that fold case, so it is lowercase base32.
    def verp_local_part(self, prefix: str, message_id: str) -> str:
        mac = self._mac(f"verp:{message_id}".encode())
        return f"{prefix}+{message_id}-{_b32(mac, _VERP_MAC_CHARS)}"

    # Short links of an SMS: the delivery id, the link's place in the message, a MAC. The destination
    # URL is kept with the message, so the link carries no more than that.
    def short_code(self, message_id: str, index: int) -> str:
        return f"{message_id}{index:x}{self._short_mac(message_id, index)}"

    def parse_short_code(self, code: str) -> tuple[str, int]:
        """(delivery id, link index) of a short code; InvalidToken if it was not made here."""
        message_id, index_hex, mac = code[:26], code[26:-_SHORT_MAC_CHARS], code[-_SHORT_MAC_CHARS:]
        try:
            index = int(index_hex, 16) if index_hex.isascii() and index_hex.isalnum() else -1
        except ValueError:
            index = -1
        if len(message_id) != 26 or index < 0 or not hmac.compare_digest(
                self._short_mac(message_id, index).encode(), mac.encode("utf-8", "replace")):
            raise InvalidToken("bad short link")
        return message_id, index

    def _short_mac(self, message_id: str, index: int) -> str:
        mac = self._mac(f"short:{message_id}:{index}".encode())
        return _b32(mac, _SHORT_MAC_CHARS)

    def parse_verp(self, local_part: str) -> tuple[str, str] | None:
        """(prefix, message id) of a VERP local part made by `verp_local_part`, else None."""
        prefix, plus, rest = local_part.lower().partition("+")
        message_id, dash, _mac = rest.rpartition("-")
        if not plus or not dash or self.verp_local_part(prefix, message_id).lower() != local_part.lower():
            return None
        return prefix, message_id


@dataclass(frozen=True)
class RecipientLinks:
    """The public URLs of one delivered message."""

    base_url: str
    signer: TokenSigner
    account_id: str
    delivery_id: str

    def _url(self, path: str, kind: str, *fields: Any) -> str:
        return f"{self.base_url}{path}{self.signer.sign(kind, self.account_id, self.delivery_id, *fields)}"

    def open_pixel(self) -> str:
        return self._url("/t/o/", OPEN) + ".gif"

    def click(self, url: str) -> str:
        return self._url("/t/c/", CLICK, url)

    def unsubscribe(self) -> str:
        return self._url("/t/u/", UNSUBSCRIBE)

    def preferences(self) -> str:
        return self._url("/t/p/", PREFERENCES)

    def web_view(self) -> str:
        return self._url("/t/v/", WEB_VIEW)

    def message_token(self) -> str:
        return self.signer.sign(MESSAGE, self.account_id, self.delivery_id)

    def short_click(self, index: int) -> str:
        """A short tracked link to the message's `index`-th link (SMS, `shorten_links`)."""
        return f"{self.base_url}/t/s/{self.signer.short_code(self.delivery_id, index)}"

    def organization_info(self) -> str:
        """The sender's contact information page (SMS, `add_info_link`)."""
        return f"{self.base_url}/t/i/{self.signer.sign(INFO, self.account_id)}"

    def sms_status_callback(self) -> str:
        return self._url("/webhooks/sms/status/", SMS_STATUS)

    def template_links(self) -> dict[str, str]:
        """What the template language's unsubscribe / manage_preferences / web_view tags print."""
        return {"unsubscribe": self.unsubscribe(), "manage_preferences": self.preferences(),
                "web_view": self.web_view()}


def parse_message_token(signer: TokenSigner, kind: str, token: str) -> tuple[str, str, Sequence[Any]]:
    """(account id, delivery id, extra fields) of a recipient token."""
    fields = signer.verify(kind, token)
    if len(fields) < 2 or not all(isinstance(f, str) for f in fields[:2]):
        raise InvalidToken("malformed payload")
    return fields[0], fields[1], fields[2:]
