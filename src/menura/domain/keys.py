"""API keys: private keys (`pk_…`, stored hashed, optionally scoped), public keys (the account id)
and the operator token guarding /menura/* endpoints."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from menura import ids
from menura.jsonapi import errors
from menura.store import accounts as store
from menura.store import server_state
from menura.store.db import Database

PRIVATE_PREFIX = "pk_"
SCHEME = "Klaviyo-API-Key"

# Every scope Klaviyo's keys can carry (resource names of x-klaviyo-scopes).
KNOWN_RESOURCES = frozenset({
    "accounts", "campaigns", "catalogs", "conversations", "coupon-codes", "coupons", "custom-objects",
    "data-privacy", "events", "flows", "forms", "images", "list", "lists", "metrics", "profiles",
    "push-tokens", "reviews", "segments", "subscriptions", "tags", "templates", "tracking-settings",
    "web-feeds", "webhooks",
})


@dataclass(frozen=True)
class KeyInfo:
    account_id: str
    scopes: frozenset[str] | None  # None: full access


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_private_key() -> str:
    return PRIVATE_PREFIX + ids.token(17)


def parse_scopes(text: str | Iterable[str] | None) -> list[str] | None:
    """`profiles:read,lists:write` -> list; None or empty means full access."""
    if text is None:
        return None
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        return None
    for item in items:
        resource, _, access = item.partition(":")
        if access not in ("read", "write") or resource not in KNOWN_RESOURCES:
            raise ValueError(f"not a scope: {item!r} (use <resource>:read or <resource>:write)")
    return sorted(set(items))


def has_scopes(granted: frozenset[str] | None, required: Iterable[str]) -> bool:
    """Klaviyo grants read or full access per resource: write access includes read."""
    if granted is None:
        return True
    for scope in required:
        resource, _, access = scope.partition(":")
        if scope in granted:
            continue
        if access == "read" and f"{resource}:write" in granted:
            continue
        return False
    return True


# Valid keys (by the Authorization header that carried them) and existing public company ids seen
# in the last few seconds: saves a query on every request. A key revoked by another process stops
# working within this many seconds (at once in the revoking process).
KEY_CACHE_SECONDS = 2.0
_key_cache: dict[str, tuple[KeyInfo, float]] = {}
_public_cache: dict[str, float] = {}
_key_cache_lock = threading.Lock()


def _cached_key(header: str) -> KeyInfo | None:
    cached = _key_cache.get(header)
    return cached[0] if cached is not None and cached[1] > time.monotonic() else None


def authenticate(db: Database, header: str | None) -> KeyInfo:
    if not header:
        raise errors.not_authenticated()
    info = _cached_key(header)
    if info is not None:
        return info
    scheme, _, key = header.strip().partition(" ")
    if scheme != SCHEME or not key.strip():
        raise errors.not_authenticated()
    with db.read() as conn:
        row = store.find_key_by_hash(conn, hash_key(key.strip()))
    if row is None or row.revoked_at is not None:
        raise errors.authentication_failed()
    info = KeyInfo(row.account_id, frozenset(row.scopes) if row.scopes is not None else None)
    with _key_cache_lock:
        if len(_key_cache) > 10_000:
            _key_cache.clear()
        _key_cache[header] = (info, time.monotonic() + KEY_CACHE_SECONDS)
    return info


def needs_lookup(_db: Database, auth: str, headers: Any, params: Any) -> bool:
    """Whether authenticating would query the database (lets async handlers stay on the loop)."""
    if auth == "public":
        company_id = params.get("company_id")
        return bool(company_id) and _public_cache.get(company_id, 0.0) <= time.monotonic()
    if auth != "private":
        return auth == "operator"
    header = headers.get("authorization")
    if not header or _cached_key(header) is not None:
        return False
    scheme, _, key = header.strip().partition(" ")
    return scheme == SCHEME and bool(key.strip())  # otherwise answered 401 without a query


def forget_cached_keys() -> None:
    with _key_cache_lock:
        _key_cache.clear()
        _public_cache.clear()


def authenticate_public(db: Database, company_id: str | None) -> str:
    if not company_id:
        raise errors.invalid("The company_id query parameter is required.", parameter="company_id")
    if _public_cache.get(company_id, 0.0) > time.monotonic():
        return company_id
    with db.read() as conn:
        if not store.account_exists(conn, company_id):
            raise errors.ApiError(400, "invalid", "Invalid input.",
                                  f"'{company_id}' is not a valid company_id.", parameter="company_id")
    with _key_cache_lock:
        if len(_public_cache) > 10_000:
            _public_cache.clear()
        _public_cache[company_id] = time.monotonic() + KEY_CACHE_SECONDS
    return company_id


def operator_token(db: Database, configured: str) -> str:
    if configured:
        return configured
    with db.write() as conn:
        return str(server_state.get_or_create(conn, "operator_token", lambda: "op_" + ids.token(16)))


def check_operator(services: Any, header: str | None) -> None:
    expected = operator_token(services.db, services.settings.operator_token)
    given = (header or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given, expected):
        raise errors.not_authenticated("Operator endpoints need 'Authorization: Bearer <operator token>'.")


def create_key(db: Database, account_id: str, now: datetime, *, scopes: list[str] | None = None,
               label: str = "") -> tuple[str, str]:
    """Returns (key id, the key itself — shown once, only its hash is kept)."""
    key = new_private_key()
    key_id = ids.short_id(10)
    with db.write() as conn:
        if not store.account_exists(conn, account_id):
            raise LookupError(f"no account {account_id!r}")
        store.insert_key(conn, {"id": key_id, "account_id": account_id, "label": label,
                                "key_hash": hash_key(key), "key_prefix": key[:7], "scopes": scopes,
                                "created": now})
    return key_id, key


def revoke_key(db: Database, key_or_id: str, now: datetime) -> bool:
    with db.write() as conn:
        if key_or_id.startswith(PRIVATE_PREFIX):
            count = store.revoke_key(conn, key_id=None, key_hash=hash_key(key_or_id), when=now)
        else:
            count = store.revoke_key(conn, key_id=key_or_id, key_hash=None, when=now)
    forget_cached_keys()
    return count > 0
