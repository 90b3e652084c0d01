"""Identifiers in Klaviyo's formats."""

from __future__ import annotations

import base64
import os
import secrets
import string
import uuid
from time import time_ns

_ALNUM = string.ascii_letters + string.digits
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 4648 base32 digits to Crockford's, same values: the random part is encoded by base64.b32encode.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def ulid() -> str:
    """26-character ULID, as Klaviyo uses for profiles, events and campaigns."""
    return ulids(1)[0]


def ulids(count: int) -> list[str]:
    """`count` ULIDs (48-bit millisecond time, 80 random bits, Crockford base32) made in one go
    (the ULID library's ~10 us per id showed up in ingest profiles). The time part (10 digits) is
    shared; 80 random bits are exactly 16 base32 digits, so one b32encode encodes the randomness
    of the whole batch, cut in 16-digit pieces."""
    millis = time_ns() // 1_000_000
    prefix = "".join(_CROCKFORD[(millis >> shift) & 31] for shift in range(45, -1, -5))
    digits = base64.b32encode(os.urandom(10 * count)).translate(_TO_CROCKFORD).decode()
    return [prefix + digits[n:n + 16] for n in range(0, 16 * count, 16)]


def short_id(length: int = 6) -> str:
    """Short mixed-case alphanumeric id, as Klaviyo uses for lists, segments, metrics, flows."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def uuid4() -> str:
    return str(uuid.uuid4())


def token(nbytes: int = 24) -> str:
    return secrets.token_hex(nbytes)
