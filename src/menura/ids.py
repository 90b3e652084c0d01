"""Identifiers in Klaviyo's formats."""

from __future__ import annotations

import secrets
import string
import uuid

from ulid import ULID

_ALNUM = string.ascii_letters + string.digits


def ulid() -> str:
    """26-character ULID, as Klaviyo uses for profiles, events and campaigns."""
    return str(ULID())


def short_id(length: int = 6) -> str:
    """Short mixed-case alphanumeric id, as Klaviyo uses for lists, segments, metrics, flows."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def uuid4() -> str:
    return str(uuid.uuid4())


def token(nbytes: int = 24) -> str:
    return secrets.token_hex(nbytes)
