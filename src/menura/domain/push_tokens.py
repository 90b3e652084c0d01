"""Mobile push tokens: registration (create or update by token value), unregistration, deletion.

A token belongs to one profile of the account at a time; registering a known token again moves it
to the profile of the request and refreshes its status. Push marketing consent is derived from a
profile's tokens (see domain.consent). Token ids are 32 hex characters, as in Klaviyo's examples,
derived from the account and token value so a re-registration keeps its id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.jsonapi import errors
from menura.store import profiles as store

PLATFORMS = ("android", "ios")
VENDORS = ("apns", "fcm")
ENABLEMENT_STATUSES = ("AUTHORIZED", "DENIED", "NOT_DETERMINED", "PROVISIONAL", "UNAUTHORIZED")
BACKGROUND_STATUSES = ("AVAILABLE", "DENIED", "RESTRICTED")
METADATA_FIELDS = ("device_id", "klaviyo_sdk", "sdk_version", "device_model", "os_name", "os_version",
                   "manufacturer", "app_name", "app_version", "app_build", "app_id", "environment")
METADATA_ENUMS = {
    "klaviyo_sdk": ("android", "flutter", "flutter_community", "react_native", "swift"),
    "os_name": ("android", "ios", "ipados", "macos", "tvos"),
    "environment": ("debug", "release"),
}
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class PushTokenInput:
    token: str
    platform: str
    vendor: str | None
    enablement_status: str = "AUTHORIZED"
    background: str = "AVAILABLE"
    metadata: dict[str, Any] | None = None


def _choice(attrs: dict[str, Any], name: str, allowed: tuple[str, ...], pointer: str, *,
            default: str | None = None, required: bool = False) -> str | None:
    value = attrs.get(name)
    if value is None:
        if required:
            raise errors.invalid(f"'{name}' is a required field.", pointer=f"{pointer}/{name}")
        return default
    if value not in allowed:
        raise errors.invalid(f"'{value}' is not a valid {name}; expected one of {', '.join(allowed)}.",
                             pointer=f"{pointer}/{name}")
    return str(value)


def parse_push_token(attrs: dict[str, Any], pointer: str = "/data/attributes", *,
                     vendor_required: bool = True) -> PushTokenInput:
    token = attrs.get("token")
    if not isinstance(token, str) or not token.strip():
        raise errors.invalid("'token' is a required string.", pointer=f"{pointer}/token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise errors.invalid(f"'token' must be at most {MAX_TOKEN_LENGTH} characters.", pointer=f"{pointer}/token")
    platform = _choice(attrs, "platform", PLATFORMS, pointer, required=True)
    vendor = _choice(attrs, "vendor", VENDORS, pointer, required=vendor_required)
    if platform == "android" and vendor == "apns":
        raise errors.invalid("Android push tokens are issued by FCM, not APNs.", pointer=f"{pointer}/vendor")
    enablement = _choice(attrs, "enablement_status", ENABLEMENT_STATUSES, pointer, default="AUTHORIZED")
    background = _choice(attrs, "background", BACKGROUND_STATUSES, pointer, default="AVAILABLE")
    metadata = _parse_metadata(attrs.get("device_metadata"), f"{pointer}/device_metadata")
    assert platform is not None and enablement is not None and background is not None
    return PushTokenInput(token.strip(), platform, vendor, enablement, background, metadata)


def _parse_metadata(raw: Any, pointer: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise errors.invalid("'device_metadata' must be an object.", pointer=pointer)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in METADATA_FIELDS:
            raise errors.invalid(f"'{key}' is not a valid device metadata field.", pointer=f"{pointer}/{key}")
        if value is None:
            continue
        if not isinstance(value, str):
            raise errors.invalid(f"'{key}' must be a string.", pointer=f"{pointer}/{key}")
        allowed = METADATA_ENUMS.get(key)
        if allowed is not None and value not in allowed:
            raise errors.invalid(f"'{value}' is not a valid {key}; expected one of {', '.join(allowed)}.",
                                 pointer=f"{pointer}/{key}")
        out[key] = value
    return out


def token_id(account_id: str, token: str) -> str:
    return hashlib.md5(f"{account_id}:{token}".encode(), usedforsecurity=False).hexdigest()


def register(conn: Connection, *, account_id: str, profile_id: str, data: PushTokenInput, now: datetime) -> str:
    """Create the token for the profile, or update it (and move it to this profile) if known."""
    existing = store.find_push_token(conn, account_id, data.token)
    values = {
        "profile_id": profile_id,
        "platform": data.platform,
        "vendor": data.vendor or (existing.vendor if existing is not None else _default_vendor(data.platform)),
        "enablement_status": data.enablement_status,
        "background": data.background,
        "metadata": data.metadata if data.metadata is not None else (existing.metadata if existing else None),
        "recorded_date": now,
    }
    if existing is not None:
        store.update_push_token(conn, account_id, existing.id, values)
        _changed(conn, account_id, profile_id, existing.profile_id)
        return str(existing.id)
    new_id = token_id(account_id, data.token)
    store.insert_push_token(conn, {"id": new_id, "account_id": account_id, "token": data.token, "created": now,
                                   **values})
    _changed(conn, account_id, profile_id)
    return new_id


def _changed(conn: Connection, account_id: str, *profile_ids: str) -> None:
    """Push consent follows the tokens: the profiles' change hooks (segments) run."""
    from menura.domain.profiles import profile_changed

    for profile_id in dict.fromkeys(profile_ids):
        profile_changed(conn, account_id, profile_id)


def _default_vendor(platform: str) -> str:
    return "apns" if platform == "ios" else "fcm"


def unregister(conn: Connection, *, account_id: str, token: str, profile_id: str | None) -> bool:
    """Forget a device token; when a profile is named, only if the token is that profile's."""
    existing = store.find_push_token(conn, account_id, token)
    if existing is None or (profile_id is not None and existing.profile_id != profile_id):
        return False
    deleted = store.delete_push_token(conn, account_id, existing.id)
    _changed(conn, account_id, existing.profile_id)
    return deleted


def find(conn: Connection, account_id: str, id_or_token: str) -> Row[Any] | None:
    """By id, or by the token value itself (Klaviyo documents the path id as "the value of the token")."""
    return store.get_push_token(conn, account_id, id_or_token) or store.find_push_token(conn, account_id,
                                                                                        id_or_token)


def get(conn: Connection, account_id: str, id_or_token: str) -> Row[Any]:
    row = find(conn, account_id, id_or_token)
    if row is None:
        raise errors.not_found(f"A push token with id '{id_or_token}' does not exist.")
    return row


def delete(conn: Connection, account_id: str, id_or_token: str) -> None:
    row = get(conn, account_id, id_or_token)
    store.delete_push_token(conn, account_id, row.id)
    _changed(conn, account_id, row.profile_id)


def attributes(row: Row[Any]) -> dict[str, Any]:
    return {
        "created": row.created.isoformat(),
        "token": row.token,
        "enablement_status": row.enablement_status,
        "platform": row.platform,
        "vendor": row.vendor,
        "background": row.background,
        "recorded_date": row.recorded_date.isoformat(),
        "metadata": {key: (row.metadata or {}).get(key) for key in METADATA_FIELDS} if row.metadata else None,
    }
