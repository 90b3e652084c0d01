"""Opaque, tamper-proof cursors for keyset pagination (stable under concurrent inserts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

import msgspec

from menura.jsonapi.errors import invalid

_SIG_BYTES = 12


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "dt" in value:
        return datetime.fromisoformat(value["dt"])
    return value


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_SIG_BYTES]

    def encode(self, key: list[Any], direction: str, scope: str) -> str:
        """`key` is the (sort value, id) of the boundary row; `scope` binds the cursor to one listing."""
        body = msgspec.json.encode({"k": [_encode_value(v) for v in key], "d": direction, "s": scope})
        return base64.urlsafe_b64encode(body + self._sign(body)).decode().rstrip("=")

    def decode(self, token: str, scope: str) -> tuple[list[Any], str]:
        bad = invalid("The page cursor is invalid.", parameter="page[cursor]")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise bad from None
        body, sig = raw[:-_SIG_BYTES], raw[-_SIG_BYTES:]
        if len(raw) <= _SIG_BYTES or not hmac.compare_digest(sig, self._sign(body)):
            raise bad
        try:
            data = msgspec.json.decode(body)
            key, direction, cursor_scope = data["k"], data["d"], data["s"]
        except (msgspec.DecodeError, KeyError, TypeError):
            raise bad from None
        if cursor_scope != scope or direction not in ("next", "prev") or not isinstance(key, list):
            raise bad
        return [_decode_value(v) for v in key], direction
