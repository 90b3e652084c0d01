"""Subscribing and unsubscribing profiles, with lists' double opt-in.

Klaviyo's rules (Subscribe/Unsubscribe Profiles and Create Client Subscription in its API
reference; "Understanding the double opt-in process" and "Understanding the Subscribed to List
metric" in its help center):
- Subscribing gives consent on the channels named in `subscriptions` (the client endpoint defaults
  to marketing on the channels whose identifier is given), creates the profile when no identifier
  matches, and adds it to the list. `consented_at` is only accepted with `historical_import`, which
  then requires it, in the past, and skips double opt-in.
- A double opt-in list keeps new subscribers pending until they confirm: they join the list, and
  their marketing consent is recorded (with `double_optin`), only then. Confirming by email opts in
  to email only; confirming by text opts in to SMS and email.
- "Subscribed to List" is recorded when a profile subscribes to a list it was not in (or was in
  but suppressed from).
- Unsubscribing a profile that is in the given list unsubscribes it from that list (removed, list
  suppression UNSUBSCRIBE, "Unsubscribed from List"); any other profile is unsubscribed globally.
  SMS consent is always global. A profile that does not exist is created, then unsubscribed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura import ids
from menura.domain import consent, identity
from menura.domain import lists as list_rules
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import lists as list_store
from menura.store import work
from menura.store.db import Database

SUBSCRIBE_KIND = "profiles.bulk_subscribe"
UNSUBSCRIBE_KIND = "profiles.bulk_unsubscribe"
MAX_SUBSCRIBE_PROFILES = 1000
MAX_UNSUBSCRIBE_PROFILES = 100
MAX_CUSTOM_SOURCE = 255

# Called as hook(conn, pending_row) in the transaction that leaves a subscription waiting for its
# double opt-in confirmation: the delivery area sends the message carrying `confirmation_url`.
PENDING_CONFIRMATION_HOOKS: list[Callable[[Connection, Row[Any]], None]] = []

SUBSCRIBED_TO_LIST = "Subscribed to List"
UNSUBSCRIBED_FROM_LIST = "Unsubscribed from List"
METHOD_API = "API"

EMAIL_MARKETING = "email_marketing"
SMS_MARKETING = "sms_marketing"
SMS_TRANSACTIONAL = "sms_transactional"
# Push consent is the state of the profile's push tokens (registered with the subscription).
PUSH_MARKETING = "push_marketing"
# Channels whose consent waits for the confirmation on a double opt-in list.
DOUBLE_OPT_IN_CHANNELS = (EMAIL_MARKETING, SMS_MARKETING)
EMAIL_CHANNELS = (EMAIL_MARKETING,)
SMS_CHANNELS = (SMS_MARKETING, SMS_TRANSACTIONAL)

# Request shape -> channel: (channel group, message type).
_CHANNEL_KEYS = {("email", "marketing"): EMAIL_MARKETING, ("sms", "marketing"): SMS_MARKETING,
                 ("sms", "transactional"): SMS_TRANSACTIONAL, ("push", "marketing"): PUSH_MARKETING}
# Accepted by the spec but not modelled by profiles here: validated, then not recorded.
_ACCEPTED_ONLY = {("email", "open_tracking"), ("whatsapp", "marketing"), ("whatsapp", "transactional"),
                  ("whatsapp", "conversational")}
_GROUP_KEYS = {"email": ("marketing", "open_tracking"), "sms": ("marketing", "transactional"),
               "whatsapp": ("marketing", "transactional", "conversational"),
               "push": ("marketing", "tokens", "anonymous_id")}


# --------------------------------------------------------------------------- request validation


def _parse_time(value: Any, pointer: str) -> datetime:
    if not isinstance(value, str):
        raise errors.invalid("'consented_at' must be an ISO 8601 date-time.", pointer=pointer)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise errors.invalid(f"'{value}' is not a valid ISO 8601 date-time.", pointer=pointer) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_channels(raw: Any, pointer: str, *, wanted: str, historical_import: bool, now: datetime,
                   ) -> dict[str, dict[str, Any]]:
    """`subscriptions` of one profile -> {channel: {"consented_at": iso or None}} for the channels
    this server records. `wanted` is the one consent value allowed (SUBSCRIBED / UNSUBSCRIBED)."""
    if not isinstance(raw, dict):
        raise errors.invalid("'subscriptions' must be an object.", pointer=pointer)
    channels: dict[str, dict[str, Any]] = {}
    for group, section in raw.items():
        where = f"{pointer}/{group}"
        if group not in _GROUP_KEYS:
            raise errors.invalid(f"'{group}' is not a valid subscription channel.", pointer=where)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise errors.invalid(f"'{group}' must be an object.", pointer=where)
        for kind, params in section.items():
            at = f"{where}/{kind}"
            if kind not in _GROUP_KEYS[group]:
                raise errors.invalid(f"'{kind}' is not a valid message type for '{group}'.", pointer=at)
            if kind in ("tokens", "anonymous_id") or params is None:
                continue
            if not isinstance(params, dict):
                raise errors.invalid(f"'{kind}' must be an object.", pointer=at)
            if params.get("consent") != wanted:
                raise errors.invalid(f"'consent' must be '{wanted}'.", pointer=f"{at}/consent")
            consented_at = _check_consented_at(params.get("consented_at"), f"{at}/consented_at",
                                               historical_import=historical_import, now=now,
                                               required=wanted == consent.SUBSCRIBED and kind != "open_tracking")
            channel = _CHANNEL_KEYS.get((group, kind))
            if channel is not None:
                channels[channel] = {"consented_at": consented_at}
            elif (group, kind) not in _ACCEPTED_ONLY:  # pragma: no cover - the tables above agree
                raise errors.invalid(f"'{kind}' is not supported.", pointer=at)
    return channels


def parse_push_extras(raw: Any, pointer: str) -> dict[str, Any]:
    """`subscriptions.push.tokens` / `.anonymous_id` (already shape-checked by parse_channels):
    each token validated with the push token rules; returned as JSON for the work entry."""
    from menura.domain import push_tokens

    push = raw.get("push") if isinstance(raw, dict) else None
    if not isinstance(push, dict):
        return {}
    out: dict[str, Any] = {}
    where = f"{pointer}/push"
    tokens = push.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, list):
            raise errors.invalid("'tokens' must be a list.", pointer=f"{where}/tokens")
        for index, token in enumerate(tokens):
            if not isinstance(token, dict):
                raise errors.invalid("A push token must be an object.", pointer=f"{where}/tokens/{index}")
            push_tokens.parse_push_token(token, f"{where}/tokens/{index}")
        out["tokens"] = tokens
    anonymous_id = push.get("anonymous_id")
    if anonymous_id is not None:
        if not isinstance(anonymous_id, str):
            raise errors.invalid("'anonymous_id' must be a string.", pointer=f"{where}/anonymous_id")
        out["anonymous_id"] = identity.normalize_opaque(anonymous_id, "anonymous_id",
                                                        pointer=f"{where}/anonymous_id")
    return out


def _check_consented_at(value: Any, pointer: str, *, historical_import: bool, now: datetime,
                        required: bool) -> str | None:
    if value is None:
        if historical_import and required:
            raise errors.invalid("'consented_at' is required when 'historical_import' is true.", pointer=pointer)
        return None
    if not historical_import:
        raise errors.invalid("'consented_at' can only be given when 'historical_import' is true.", pointer=pointer)
    when = _parse_time(value, pointer)
    if when >= now:
        raise errors.invalid("'consented_at' must be in the past.", pointer=pointer)
    return when.isoformat()


def _identifier(attrs: Mapping[str, Any], name: str, pointer: str) -> str | None:
    value = attrs.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.invalid(f"'{name}' must be a string.", pointer=f"{pointer}/{name}")
    if name == "email":
        return identity.normalize_email(value, pointer=f"{pointer}/{name}")
    return identity.normalize_phone(value, pointer=f"{pointer}/{name}")


def _check_identifiers_for(channels: Mapping[str, Any], email: str | None, phone: str | None, pointer: str,
                           *, by_id: bool, other_identifier: bool = False) -> None:
    if email is None and phone is None and not by_id and not other_identifier:
        raise errors.invalid("One of 'email' or 'phone_number' is required.", pointer=pointer)
    if by_id:
        return
    if email is None and any(c in channels for c in EMAIL_CHANNELS):
        raise errors.invalid("An email address is required to subscribe to email.", pointer=f"{pointer}/email")
    if phone is None and any(c in channels for c in SMS_CHANNELS):
        raise errors.invalid("A phone number is required to subscribe to SMS.", pointer=f"{pointer}/phone_number")


def parse_subscribe_profile(item: Mapping[str, Any], index: int, *, historical_import: bool,
                            now: datetime) -> dict[str, Any]:
    """One profile of a bulk subscribe request -> a work entry (JSON), or 400 pointing at it."""
    base = f"/data/attributes/profiles/data/{index}"
    pointer = f"{base}/attributes"
    attrs = item.get("attributes")
    if not isinstance(attrs, dict):
        raise errors.invalid("Expected an object of profile attributes.", pointer=pointer)
    for name in attrs:
        if name not in ("email", "phone_number", "subscriptions", "age_gated_date_of_birth"):
            raise errors.invalid(f"'{name}' is not a valid field here.", pointer=f"{pointer}/{name}")
    if attrs.get("subscriptions") is None:
        raise errors.invalid("'subscriptions' is a required field.", pointer=f"{pointer}/subscriptions")
    _check_birth_date(attrs.get("age_gated_date_of_birth"), f"{pointer}/age_gated_date_of_birth")
    profile_id = _profile_id(item.get("id"), f"{base}/id")
    email, phone = _identifier(attrs, "email", pointer), _identifier(attrs, "phone_number", pointer)
    channels = parse_channels(attrs["subscriptions"], f"{pointer}/subscriptions", wanted=consent.SUBSCRIBED,
                              historical_import=historical_import, now=now)
    push = parse_push_extras(attrs["subscriptions"], f"{pointer}/subscriptions")
    _check_identifiers_for(channels, email, phone, pointer, by_id=profile_id is not None,
                           other_identifier="anonymous_id" in push)
    profile = {k: v for k, v in (("email", email), ("phone_number", phone),
                                 ("anonymous_id", push.get("anonymous_id"))) if v is not None}
    return {"id": profile_id, "profile": profile, "channels": channels, "push_tokens": push.get("tokens", [])}


def parse_unsubscribe_profile(item: Mapping[str, Any], index: int, *, now: datetime) -> dict[str, Any]:
    pointer = f"/data/attributes/profiles/data/{index}/attributes"
    attrs = item.get("attributes")
    if not isinstance(attrs, dict):
        raise errors.invalid("Expected an object of profile attributes.", pointer=pointer)
    for name in attrs:
        if name not in ("email", "phone_number", "subscriptions"):
            raise errors.invalid(f"'{name}' is not a valid field here.", pointer=f"{pointer}/{name}")
    if attrs.get("subscriptions") is None:
        raise errors.invalid("'subscriptions' is a required field.", pointer=f"{pointer}/subscriptions")
    email, phone = _identifier(attrs, "email", pointer), _identifier(attrs, "phone_number", pointer)
    channels = parse_channels(attrs["subscriptions"], f"{pointer}/subscriptions", wanted=consent.UNSUBSCRIBED,
                              historical_import=False, now=now)
    push = parse_push_extras(attrs["subscriptions"], f"{pointer}/subscriptions")
    _check_identifiers_for(channels, email, phone, pointer, by_id=False)
    profile = {k: v for k, v in (("email", email), ("phone_number", phone)) if v is not None}
    return {"id": None, "profile": profile, "channels": channels, "push_tokens": push.get("tokens", [])}


def _profile_id(value: Any, pointer: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise errors.invalid("'id' must be a profile id.", pointer=pointer)
    return value


def _check_birth_date(value: Any, pointer: str) -> None:
    if value is None:
        return
    message = "'age_gated_date_of_birth' must be a date (YYYY-MM-DD)."
    if not isinstance(value, str):
        raise errors.invalid(message, pointer=pointer)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise errors.invalid(message, pointer=pointer) from None


def check_custom_source(value: Any, pointer: str = "/data/attributes/custom_source") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.invalid("'custom_source' must be a string.", pointer=pointer)
    if len(value) > MAX_CUSTOM_SOURCE:
        raise errors.invalid(f"'custom_source' must be at most {MAX_CUSTOM_SOURCE} characters.", pointer=pointer)
    return value


def _check_count(items: Sequence[Any], limit: int) -> None:
    pointer = "/data/attributes/profiles/data"
    if not items:
        raise errors.invalid("At least one profile is required.", pointer=pointer)
    if len(items) > limit:
        raise errors.invalid(f"At most {limit} profiles can be sent per request; {len(items)} were sent.",
                             pointer=pointer)


def _check_profiles_exist(conn: Connection, account_id: str, entries: Sequence[dict[str, Any]]) -> None:
    from menura.domain.profiles import get_profile_ids_existing

    wanted = [entry["id"] for entry in entries if entry.get("id")]
    existing = get_profile_ids_existing(conn, account_id, wanted) if wanted else set()
    for index, entry in enumerate(entries):
        if entry.get("id") and entry["id"] not in existing:
            err = errors.not_found(f"A profile with id '{entry['id']}' does not exist.")
            err.pointer = f"/data/attributes/profiles/data/{index}/id"
            raise err


def _enqueue(db: Database, account_id: str, now: datetime, kind: str, payload: dict[str, Any],
             list_id: str | None, entries: Sequence[dict[str, Any]]) -> None:
    with db.write() as conn:
        if list_id is not None:
            list_rules.get_list(conn, account_id, list_id, pointer="/data/relationships/list/data/id")
        _check_profiles_exist(conn, account_id, entries)
        work.enqueue(conn, kind=kind, payload=payload, now=now, account_id=account_id)


def accept_bulk_subscribe(db: Database, account_id: str, now: datetime, *, list_id: str | None,
                          custom_source: Any, historical_import: Any, profiles: Sequence[Mapping[str, Any]]) -> None:
    """Validate a bulk subscribe request and queue it durably (the 202 is answered after commit)."""
    source = check_custom_source(custom_source)
    if historical_import is not None and not isinstance(historical_import, bool):
        raise errors.invalid("'historical_import' must be a boolean.", pointer="/data/attributes/historical_import")
    historical = bool(historical_import)
    _check_count(profiles, MAX_SUBSCRIBE_PROFILES)
    entries = [parse_subscribe_profile(item, i, historical_import=historical, now=now)
               for i, item in enumerate(profiles)]
    payload = {"list_id": list_id, "custom_source": source, "historical_import": historical,
               "method": METHOD_API, "entries": entries}
    _enqueue(db, account_id, now, SUBSCRIBE_KIND, payload, list_id, entries)


def accept_bulk_unsubscribe(db: Database, account_id: str, now: datetime, *, list_id: str | None,
                            profiles: Sequence[Mapping[str, Any]]) -> None:
    _check_count(profiles, MAX_UNSUBSCRIBE_PROFILES)
    entries = [parse_unsubscribe_profile(item, i, now=now) for i, item in enumerate(profiles)]
    _enqueue(db, account_id, now, UNSUBSCRIBE_KIND, {"list_id": list_id, "entries": entries}, list_id, entries)


def accept_client_subscription(db: Database, account_id: str, now: datetime, *, list_id: str, custom_source: Any,
                               profile_id: Any, attributes: Any) -> None:
    """POST /client/subscriptions: the profile's attributes are upserted, its `subscriptions` (or, when
    absent, marketing on the channels of the identifiers given) are subscribed to the list."""
    from menura.domain.profiles import profile_input_from_attributes

    source = check_custom_source(custom_source)
    pointer = "/data/attributes/profile/data/attributes"
    if not isinstance(attributes, dict):
        raise errors.invalid("Expected an object of profile attributes.", pointer=pointer)
    meta = attributes.get("meta")
    profile_attrs = {k: v for k, v in attributes.items() if k not in ("meta", "subscriptions")}
    # Validates every attribute (email, E.164 phone, location, ...) with the profiles area's rules.
    data = profile_input_from_attributes(profile_attrs, pointer, meta=meta, meta_pointer=f"{pointer}/meta")
    pid = _profile_id(profile_id, "/data/attributes/profile/data/id")
    raw = attributes.get("subscriptions")
    if raw is None:
        channels: dict[str, dict[str, Any]] = {}
        if data.email is not None:
            channels[EMAIL_MARKETING] = {"consented_at": None}
        if data.phone_number is not None:
            channels[SMS_MARKETING] = {"consented_at": None}
    else:
        channels = parse_channels(raw, f"{pointer}/subscriptions", wanted=consent.SUBSCRIBED,
                                  historical_import=False, now=now)
    push = parse_push_extras(raw, f"{pointer}/subscriptions")
    if "anonymous_id" in push and "anonymous_id" not in profile_attrs:
        profile_attrs["anonymous_id"] = push["anonymous_id"]
    identified = any(data.has(name) for name in ("external_id", "anonymous_id", "_kx")) or "anonymous_id" in push
    _check_identifiers_for(channels, data.email, data.phone_number, pointer, by_id=pid is not None,
                           other_identifier=identified)
    entry = {"id": pid, "profile": profile_attrs, "meta": meta, "channels": channels,
             "push_tokens": push.get("tokens", [])}
    payload = {"list_id": list_id, "custom_source": source, "historical_import": False, "method": METHOD_API,
               "entries": [entry]}
    with db.write() as conn:
        list_rules.get_list(conn, account_id, list_id, pointer="/data/relationships/list/data/id")
        work.enqueue(conn, kind=SUBSCRIBE_KIND, payload=payload, now=now, account_id=account_id)


# --------------------------------------------------------------------------- applying (worker side)


def resolve_entry(conn: Connection, account_id: str, entry: Mapping[str, Any], now: datetime,
                  secret: bytes | None = None) -> str:
    """The entry's profile: found by id or identifiers (and updated with them), or created.
    `secret` (the server secret) lets a client's `_kx` identify its profile."""
    from menura.domain.profiles import profile_input_from_attributes, resolve_profile

    data = profile_input_from_attributes(dict(entry.get("profile") or {}), meta=entry.get("meta"),
                                         profile_id=entry.get("id"))
    profile_id, _created = resolve_profile(conn, account_id=account_id, data=data, now=now, conflicts="skip",
                                           secret=secret)
    return profile_id


def _consent_time(params: Mapping[str, Any]) -> datetime | None:
    raw = params.get("consented_at")
    return datetime.fromisoformat(raw) if raw else None


def grant(conn: Connection, account_id: str, profile_id: str, channels: Mapping[str, Mapping[str, Any]], *,
          method: str, custom_source: str | None, double_optin: bool, now: datetime) -> None:
    """Record SUBSCRIBED consent on each channel (subscribing also lifts UNSUBSCRIBE, SPAM_COMPLAINT
    and USER_SUPPRESSED suppressions, as Klaviyo's subscribe does)."""
    if EMAIL_MARKETING in channels:
        consent.set_email_marketing(conn, account_id=account_id, profile_id=profile_id, consent=consent.SUBSCRIBED,
                                    now=now, method=method, method_detail=None, custom_method_detail=custom_source,
                                    double_optin=double_optin,
                                    consent_timestamp=_consent_time(channels[EMAIL_MARKETING]))
    if SMS_MARKETING in channels:
        consent.set_sms_marketing(conn, account_id=account_id, profile_id=profile_id, consent=consent.SUBSCRIBED,
                                  now=now, method=method, method_detail=custom_source,
                                  consent_timestamp=_consent_time(channels[SMS_MARKETING]))
    if SMS_TRANSACTIONAL in channels:
        consent.set_sms_transactional(conn, account_id=account_id, profile_id=profile_id,
                                      consent=consent.SUBSCRIBED, now=now, method=method,
                                      method_detail=custom_source,
                                      consent_timestamp=_consent_time(channels[SMS_TRANSACTIONAL]))


def _record(conn: Connection, account_id: str, profile_id: str, metric: str, list_row: Row[Any],
            now: datetime, extra: Mapping[str, Any] | None = None) -> None:
    from menura.domain.events import record_event

    properties = {"List": list_row.name, "list_id": list_row.id, **(extra or {})}
    record_event(conn, account_id=account_id, profile_id=profile_id, metric_name=metric, properties=properties,
                 time=now, now=now)


def join_list(conn: Connection, account_id: str, list_row: Row[Any], profile_id: str, now: datetime,
              *, method: str | None = None) -> bool:
    """Subscribe the profile to the list: member, no list suppression, and "Subscribed to List" when
    it was not in the list or was suppressed from it. True when that happened."""
    added = list_store.add_members(conn, account_id, list_row.id, [profile_id], now)
    list_rules.membership_changed(conn, account_id, list_row.id, added)
    unsuppressed = consent.remove_list_suppression(conn, account_id=account_id, profile_id=profile_id,
                                                   list_id=list_row.id)
    if added or unsuppressed:
        _record(conn, account_id, profile_id, SUBSCRIBED_TO_LIST, list_row, now,
                {"method": method} if method else None)
        return True
    return False


def subscribe_entry(conn: Connection, account_id: str, entry: Mapping[str, Any], list_row: Row[Any] | None, *,
                    custom_source: str | None, historical_import: bool, method: str, now: datetime,
                    secret: bytes | None = None) -> str:
    """Apply one validated subscribe entry; returns the profile id."""
    profile_id = resolve_entry(conn, account_id, entry, now, secret)
    channels: dict[str, Any] = dict(entry.get("channels") or {})
    waiting: dict[str, Any] = {}
    if (list_row is not None and list_row.opt_in_process == list_rules.DOUBLE_OPT_IN and not historical_import
            and not _already_confirmed(conn, account_id, list_row.id, profile_id, channels)):
        waiting = {c: v for c, v in channels.items() if c in DOUBLE_OPT_IN_CHANNELS}
        channels = {c: v for c, v in channels.items() if c not in DOUBLE_OPT_IN_CHANNELS}
    grant(conn, account_id, profile_id, channels, method=method, custom_source=custom_source, double_optin=False,
          now=now)
    _register_push_tokens(conn, account_id, profile_id, entry.get("push_tokens") or (), now)
    if waiting:
        assert list_row is not None
        _stash_pending(conn, account_id, list_row.id, profile_id, waiting, custom_source, method, now)
    elif list_row is not None and channels:
        join_list(conn, account_id, list_row, profile_id, now, method=method)
    return profile_id


def _register_push_tokens(conn: Connection, account_id: str, profile_id: str, tokens: Sequence[Mapping[str, Any]],
                          now: datetime) -> None:
    """Klaviyo: push tokens given with a push subscription are registered for the profile."""
    from menura.domain import push_tokens

    for raw in tokens:
        push_tokens.register(conn, account_id=account_id, profile_id=profile_id,
                             data=push_tokens.parse_push_token(dict(raw)), now=now)


def _unregister_push_tokens(conn: Connection, account_id: str, profile_id: str,
                            tokens: Sequence[Mapping[str, Any]]) -> None:
    """Klaviyo: push tokens given with a push unsubscription are removed from the profile."""
    from menura.domain import push_tokens

    for raw in tokens:
        push_tokens.unregister(conn, account_id=account_id, token=str(raw.get("token", "")).strip(),
                               profile_id=profile_id)


def _already_confirmed(conn: Connection, account_id: str, list_id: str, profile_id: str,
                       channels: Mapping[str, Any]) -> bool:
    """A member already subscribed on every double opt-in channel asked for has nothing to confirm."""
    if not list_store.member_ids_among(conn, list_id, [profile_id]):
        return False
    from menura.domain.profiles import get_profile

    row = get_profile(conn, account_id, profile_id)
    states = {EMAIL_MARKETING: consent.can_receive_email_marketing(row),
              SMS_MARKETING: consent.can_receive_sms_marketing(row)}
    return all(states[c] for c in channels if c in DOUBLE_OPT_IN_CHANNELS)


def _stash_pending(conn: Connection, account_id: str, list_id: str, profile_id: str, channels: Mapping[str, Any],
                   custom_source: str | None, method: str, now: datetime) -> None:
    existing = list_store.get_pending_for(conn, list_id, profile_id)
    if existing is None:
        pending_id = ids.ulid()
        list_store.insert_pending(conn, {
            "id": pending_id, "account_id": account_id, "list_id": list_id, "profile_id": profile_id,
            "channels": {"channels": dict(channels), "custom_source": custom_source, "method": method},
            "created": now, "updated": now})
        row = list_store.get_pending(conn, pending_id)
        for hook in list(PENDING_CONFIRMATION_HOOKS):
            hook(conn, row)
        return
    merged = {**existing.channels.get("channels", {}), **channels}
    list_store.update_pending(conn, existing.id, {
        "channels": {"channels": merged, "custom_source": custom_source, "method": method}, "updated": now})


def unsubscribe_entry(conn: Connection, account_id: str, entry: Mapping[str, Any], list_row: Row[Any] | None, *,
                      now: datetime) -> str:
    profile_id = resolve_entry(conn, account_id, entry, now)
    channels = entry.get("channels") or {}
    in_list = list_row is not None and bool(list_store.member_ids_among(conn, list_row.id, [profile_id]))
    if EMAIL_MARKETING in channels:
        if in_list:
            assert list_row is not None
            consent.add_list_suppression(conn, account_id=account_id, profile_id=profile_id, list_id=list_row.id,
                                         reason=consent.UNSUBSCRIBE, now=now)
        else:
            consent.set_email_marketing(conn, account_id=account_id, profile_id=profile_id,
                                        consent=consent.UNSUBSCRIBED, now=now, method=METHOD_API)
    for channel, setter in ((SMS_MARKETING, consent.set_sms_marketing),
                            (SMS_TRANSACTIONAL, consent.set_sms_transactional)):
        if channel in channels:
            setter(conn, account_id=account_id, profile_id=profile_id, consent=consent.UNSUBSCRIBED, now=now,
                   method=METHOD_API)
    _unregister_push_tokens(conn, account_id, profile_id, entry.get("push_tokens") or ())
    if list_row is not None:
        pending = list_store.get_pending_for(conn, list_row.id, profile_id)
        if pending is not None:
            list_store.delete_pending(conn, pending.id)
        removed = list_store.remove_members(conn, list_row.id, [profile_id])
        list_rules.membership_changed(conn, account_id, list_row.id, removed)
        if removed:
            _record(conn, account_id, profile_id, UNSUBSCRIBED_FROM_LIST, list_row, now)
    return profile_id


# --------------------------------------------------------------------------- double opt-in confirmation


def confirmation_token(secret: bytes, pending_id: str) -> str:
    """`<pending id>.<signature>`: only this server can mint a link that confirms a subscription."""
    signature = hmac.new(secret, f"doi:{pending_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{pending_id}.{signature}"


def pending_id_from_token(secret: bytes, token: str) -> str | None:
    pending_id, _, signature = token.partition(".")
    if not pending_id or not signature:
        return None
    expected = confirmation_token(secret, pending_id).partition(".")[2]
    return pending_id if hmac.compare_digest(expected, signature) else None


def confirmation_url(base_url: str, secret: bytes, pending_id: str) -> str:
    """The link a confirmation message carries (GET shows the result page)."""
    return f"{base_url.rstrip('/')}/p/confirm/{confirmation_token(secret, pending_id)}"


def pending_confirmations(conn: Connection, account_id: str, profile_id: str) -> list[Row[Any]]:
    """What a profile still has to confirm (the delivery area sends one message per row)."""
    return list_store.pending_for_profile(conn, account_id, profile_id)


def confirm_pending(conn: Connection, pending_id: str, now: datetime, *, via: str = "email") -> Row[Any] | None:
    """Follow a confirmation: grant the pending consent (email only when confirmed by email; SMS
    and email when confirmed by text), join the list, and drop what was confirmed. Returns the list
    confirmed, or None when nothing was pending."""
    row = list_store.get_pending(conn, pending_id)
    if row is None:
        return None
    state = dict(row.channels)
    channels: dict[str, Any] = dict(state.get("channels") or {})
    confirmed = {c: v for c, v in channels.items() if via == "sms" or c == EMAIL_MARKETING}
    if not confirmed:
        return None
    list_row = list_store.get_list(conn, row.account_id, row.list_id)
    grant(conn, row.account_id, row.profile_id, confirmed, method=state.get("method") or METHOD_API,
          custom_source=state.get("custom_source"), double_optin=True, now=now)
    remaining = {c: v for c, v in channels.items() if c not in confirmed}
    if remaining:
        list_store.update_pending(conn, row.id, {"channels": {**state, "channels": remaining}, "updated": now})
    else:
        list_store.delete_pending(conn, row.id)
    if list_row is not None:
        join_list(conn, row.account_id, list_row, row.profile_id, now, method=state.get("method"))
    return list_row


def failure(err: ApiError) -> str:
    return f"{err.status} {err.code}: {err.detail}"
