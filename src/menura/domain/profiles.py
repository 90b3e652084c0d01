"""Profiles: identity resolution, attribute updates, merges and deletion.

Rules (Klaviyo's, as documented for the Profiles API):
- Identifiers are `email`, `phone_number`, `external_id`, `anonymous_id` (client-side), the
  Klaviyo `id` and the `_kx` exchange id; each is unique within an account.
- A request finds its profile by the first identifier that matches, in this order: id, _kx, email
  (primary, then secondary addresses), phone_number, external_id, anonymous_id. Identifiers that
  belong to a *different* profile are never moved: strict callers get 409 naming that profile
  (`meta.duplicate_profile_id`), lenient ones (event ingestion) leave them out.
- Updating: a field left out is unchanged, a field sent as null is cleared. `location` and
  `properties` merge key by key (Klaviyo stores each as a separate profile field), `meta.patch_properties`
  then appends / unappends / unsets custom properties.
- `created` is set once, `updated` moves only when something actually changed, `last_event_date`
  follows the newest event (`touch_last_event`).

Request parsing lives in domain/profile_input.py and column values in domain/profile_values.py; the names
other areas import from this module are re-exported here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from menura.domain import identity
from menura.domain.profile_input import ATTRIBUTE_FIELDS as ATTRIBUTE_FIELDS
from menura.domain.profile_input import IDENTIFIER_FIELDS, TEXT_FIELDS, ProfileInput
from menura.domain.profile_input import LOCATION_FIELDS as LOCATION_FIELDS
from menura.domain.profile_input import profile_input_from_attributes as profile_input_from_attributes
from menura.domain.profile_values import attribute_values, historic_order_figures, merged_values, new_profile_values
from menura.domain.profile_values import profile_attributes as profile_attributes
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import profiles as store

# Called as hook(conn, account_id, profile_id) before a profile row is deleted for good.
PROFILE_DELETE_HOOKS: list[Callable[[Connection, str, str], None]] = []
# Called as hook(conn, account_id, survivor_id, merged_ids) before the merged profiles are deleted.
PROFILE_MERGE_HOOKS: list[Callable[[Connection, str, str, Sequence[str]], None]] = []
# Called as hook(conn, account_id, profile_id) after a profile is created or its attributes or consent
# change, in the same transaction (segments re-evaluate the profile).
PROFILE_CHANGE_HOOKS: list[Callable[[Connection, str, str], None]] = []
# Filled by the segments engine: (conn, account_id, profile_id) -> ids of the segments it is in.
PROFILE_SEGMENT_IDS: Callable[[Connection, str, str], list[str]] | None = None
# Filled by a predictions engine: (conn, account_id, profile_ids) -> {profile_id: predictive_analytics}.
PREDICTIVE_ANALYTICS: Callable[[Connection, str, Sequence[str]], dict[str, dict[str, Any]]] | None = None

MERGED_PROFILE_METRIC = "Merged Profile"
# Work kind of a data privacy deletion request (handled in engine/data_privacy.py).
DELETE_PROFILES_KIND = "data_privacy.delete_profiles"
# Modules that register delete/merge hooks when imported; loaded before hooks run, so a worker
# process that never imported them still removes events and memberships.
HOOK_MODULES = ("menura.domain.events", "menura.domain.lists")
# How find_matches names a match through a profile's additional email address.
SECONDARY_EMAIL = "secondary_email"


# --------------------------------------------------------------------------- resolution


def _kx_profile(conn: Connection, account_id: str, data: ProfileInput, secret: bytes | None) -> str | None:
    if data.kx is None or secret is None:
        return None
    profile_id = identity.kx_profile_id(secret, account_id, data.kx)
    if profile_id is None or store.get_profile(conn, account_id, profile_id) is None:
        return None
    return profile_id


def find_matches(conn: Connection, account_id: str, data: ProfileInput,
                 secret: bytes | None = None) -> list[tuple[str, str]]:
    """(identifier name, profile id) for every identifier that names an existing profile, in precedence order."""
    matches: list[tuple[str, str]] = []
    if data.id is not None and store.get_profile(conn, account_id, data.id) is not None:
        matches.append(("id", data.id))
    kx_id = _kx_profile(conn, account_id, data, secret)
    if kx_id is not None:
        matches.append(("_kx", kx_id))
    for name in IDENTIFIER_FIELDS:
        value = getattr(data, name)
        if value is None:
            continue
        found = store.find_id_by(conn, account_id, name, value)
        if found is None and name == "email":
            secondary = store.find_id_by_secondary_email(conn, account_id, value)
            if secondary is not None:
                matches.append((SECONDARY_EMAIL, secondary))
        elif found is not None:
            matches.append((name, found))
    return matches


def duplicate_error(profile_id: str, pointer: str = "/data/attributes") -> ApiError:
    """Klaviyo's 409 for an identifier held by another profile, naming that profile in meta."""
    return errors.conflict("duplicate_profile", "A profile already exists with one of these identifiers.",
                           pointer=pointer, meta={"duplicate_profile_id": profile_id})


def resolve_profile(conn: Connection, *, account_id: str, data: ProfileInput, now: datetime, update: bool = True,
                    secret: bytes | None = None, conflicts: str = "skip",
                    update_identifiers: bool = True) -> tuple[str, bool]:
    """Find the profile the input identifies (Klaviyo's precedence), create it when none matches,
    and with `update` apply the given attributes. Returns (profile_id, created).

    `conflicts`: "skip" leaves out identifiers that already belong to another profile; "error"
    answers 409 `duplicate_profile` instead. `update_identifiers=False` never changes identifiers
    of an existing profile (client-side endpoints). `secret` (the server secret) enables `_kx`."""
    for _attempt in range(3):
        matches = find_matches(conn, account_id, data, secret)
        if not matches:
            if not (data.identifiers() or data.id):
                raise errors.invalid("At least one profile identifier is required: email, phone_number, "
                                     "external_id or anonymous_id.", pointer="/data/attributes")
            created_id = _try_create(conn, account_id, data, now)
            if created_id is not None:
                return created_id, True
            continue  # a concurrent writer took one of the identifiers: resolve again
        target = matches[0][1]
        others = [(name, pid) for name, pid in matches if pid != target]
        if others and conflicts == "error":
            raise duplicate_error(others[0][1])
        taken = {"email" if name == SECONDARY_EMAIL else name for name, _ in others}
        if (SECONDARY_EMAIL, target) in matches:
            taken.add("email")  # found by a secondary address: it does not become the primary one
        if update and not _already_applied(data, matches, target):
            apply_update(conn, account_id, target, data, now, skip=taken, update_identifiers=update_identifiers,
                         conflicts=conflicts)
        return target, False
    raise errors.conflict("duplicate_profile", "The profile was changed concurrently; please retry.")


def _already_applied(data: ProfileInput, matches: Sequence[tuple[str, str]], target: str) -> bool:
    """True when the input carries only identifiers, each already the target's: nothing to write.
    (The common case of event ingestion, spared a locking read per event.)"""
    if data.given - set(IDENTIFIER_FIELDS) - {"_kx"} or data.patch or data.add_emails or data.remove_emails:
        return False
    if any(getattr(data, name) is not None for name in (*TEXT_FIELDS, "location", "properties")):
        return False
    matched = {name for name, pid in matches if pid == target}
    return all(name in matched for name in data.identifiers()) and not any(data.cleared(n) for n in IDENTIFIER_FIELDS)


def _try_create(conn: Connection, account_id: str, data: ProfileInput, now: datetime) -> str | None:
    """Insert a new profile; None when a unique identifier was taken by a concurrent transaction."""
    values = new_profile_values(account_id, data, now)
    if conn.dialect.name == "postgresql":
        # A unique violation aborts a PostgreSQL transaction; the savepoint keeps the caller's alive.
        try:
            with conn.begin_nested():
                store.insert_profile(conn, values)
        except IntegrityError:
            return None
    else:
        store.insert_profile(conn, values)
    _patch_secondary_emails(conn, account_id, values["id"], data, now, conflicts="skip")
    profile_changed(conn, account_id, str(values["id"]))
    return str(values["id"])




def apply_update(conn: Connection, account_id: str, profile_id: str, data: ProfileInput, now: datetime, *,
                 skip: Collection[str] = (), update_identifiers: bool = True, conflicts: str = "error") -> bool:
    """Apply the input to an existing profile; True when anything changed (then `updated` moves)."""
    row = store.get_profile_for_update(conn, account_id, profile_id)
    if row is None:
        raise not_found(profile_id)
    changes = attribute_values(row, data)
    if update_identifiers:
        for name in IDENTIFIER_FIELDS:
            if name in skip or not data.has(name):
                continue
            value = getattr(data, name)
            if value is not None and value != getattr(row, name):
                holder = store.find_id_by(conn, account_id, name, value)
                if name == "email" and holder is None:
                    holder = store.find_id_by_secondary_email(conn, account_id, value)
                    if holder == profile_id:  # promoting a secondary address to primary
                        store.remove_secondary_email(conn, account_id, profile_id, value)
                        holder = None
                if holder is not None and holder != profile_id:
                    if conflicts == "error":
                        raise duplicate_error(holder)
                    continue
            changes[name] = value
    changes = {key: value for key, value in changes.items() if getattr(row, key) != value}
    if not any(changes.get(name, getattr(row, name)) for name in IDENTIFIER_FIELDS):
        raise errors.invalid("A profile must keep at least one identifier: email, phone_number, external_id or "
                             "anonymous_id.", pointer="/data/attributes")
    changed = _patch_secondary_emails(conn, account_id, profile_id, data, now, conflicts=conflicts)
    if changes or changed:
        changes["updated"] = now
        _write_update(conn, account_id, profile_id, changes)
        profile_changed(conn, account_id, profile_id)
        return True
    return False


def _write_update(conn: Connection, account_id: str, profile_id: str, changes: dict[str, Any]) -> None:
    """Write the changes; a concurrent transaction that took one of the new identifiers first makes
    this a 409 instead of a database error. (SQLite has one writer at a time: no such race there.)"""
    if conn.dialect.name != "postgresql" or not any(name in changes for name in IDENTIFIER_FIELDS):
        store.update_profile(conn, account_id, profile_id, changes)
        return
    try:
        with conn.begin_nested():
            store.update_profile(conn, account_id, profile_id, changes)
    except IntegrityError:
        raise errors.conflict("duplicate_profile", "A profile already exists with one of these identifiers.",
                              pointer="/data/attributes") from None


def _patch_secondary_emails(conn: Connection, account_id: str, profile_id: str, data: ProfileInput, now: datetime,
                            *, conflicts: str) -> bool:
    if not (data.add_emails or data.remove_emails):
        return False
    changed = False
    current = set(store.secondary_emails(conn, account_id, profile_id))
    row = store.get_profile(conn, account_id, profile_id)
    primary = row.email if row is not None else None
    for email in data.add_emails:
        if email in current or email == primary:
            continue
        holder = store.find_id_by(conn, account_id, "email", email) or store.find_id_by_secondary_email(
            conn, account_id, email)
        if holder is not None:
            if conflicts == "error":
                raise duplicate_error(holder, "/data/meta/patch_identifiers/append")
            continue
        store.add_secondary_email(conn, account_id, profile_id, email, now)
        current.add(email)
        changed = True
    for email in data.remove_emails:
        if email in current:
            store.remove_secondary_email(conn, account_id, profile_id, email)
            changed = True
    return changed


# --------------------------------------------------------------------------- operations on profiles


def not_found(profile_id: str) -> ApiError:
    return errors.not_found(f"A profile with id '{profile_id}' does not exist.")


def create_profile(conn: Connection, *, account_id: str, data: ProfileInput, now: datetime) -> str:
    """POST /api/profiles: a new profile; 409 with the existing profile's id when any identifier is taken."""
    if not data.identifiers():
        raise errors.invalid("One of 'email', 'phone_number' or 'external_id' is required to create a profile.",
                             pointer="/data/attributes")
    for _name, profile_id in find_matches(conn, account_id, data):
        raise duplicate_error(profile_id)
    for email in data.add_emails:
        holder = store.find_id_by(conn, account_id, "email", email) or store.find_id_by_secondary_email(
            conn, account_id, email)
        if holder is not None:
            raise duplicate_error(holder)
    created = _try_create(conn, account_id, data, now)
    if created is None:
        # Lost a race for an identifier: answer as if the other request had come first.
        for _name, profile_id in find_matches(conn, account_id, data):
            raise duplicate_error(profile_id)
        raise errors.conflict("duplicate_profile", "A profile already exists with one of these identifiers.")
    return created


def update_profile(conn: Connection, *, account_id: str, profile_id: str, data: ProfileInput,
                   now: datetime) -> None:
    """PATCH /api/profiles/{id}: 404 for another account's or a missing profile, 409 for taken identifiers."""
    if store.get_profile(conn, account_id, profile_id) is None:
        raise not_found(profile_id)
    apply_update(conn, account_id, profile_id, data, now, conflicts="error")


def upsert_profile(conn: Connection, *, account_id: str, data: ProfileInput, now: datetime,
                   secret: bytes | None = None) -> tuple[str, bool]:
    """POST /api/profile-import: update the profile the identifiers (or id) name, or create one."""
    if data.id is not None and store.get_profile(conn, account_id, data.id) is None:
        raise not_found(data.id)
    if data.id is None and not data.identifiers() and _kx_profile(conn, account_id, data, secret) is None:
        raise errors.invalid("One of 'email', 'phone_number', 'external_id' or a valid '_kx' is required.",
                             pointer="/data/attributes")
    return resolve_profile(conn, account_id=account_id, data=data, now=now, secret=secret, conflicts="error")


def get_profile_ids_existing(conn: Connection, account_id: str, ids: Iterable[str]) -> set[str]:
    return store.existing_ids(conn, account_id, ids)


def profile_changed(conn: Connection, account_id: str, profile_id: str) -> None:
    """Run the PROFILE_CHANGE_HOOKS; for every write that changes a profile's attributes or consent."""
    for hook in list(PROFILE_CHANGE_HOOKS):
        hook(conn, account_id, profile_id)


def touch_last_event(conn: Connection, account_id: str, profile_id: str, when: datetime) -> None:
    store.touch_last_event(conn, account_id, profile_id, when)


def _load_hook_modules() -> None:
    for name in HOOK_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - an area not built yet
            pass


def delete_profile_everywhere(conn: Connection, account_id: str, profile_id: str) -> None:
    """Remove the profile and everything about it: events and memberships (through the hooks of
    their areas), push tokens, suppressions and secondary emails."""
    _load_hook_modules()
    for hook in list(PROFILE_DELETE_HOOKS):
        hook(conn, account_id, profile_id)
    store.delete_profiles(conn, account_id, [profile_id])


def profiles_to_delete(conn: Connection, account_id: str, *, profile_id: str | None = None,
                       email: str | None = None, phone_number: str | None = None) -> list[str]:
    """Data privacy: every profile matching the one identifier given."""
    if profile_id is not None:
        return [profile_id] if store.get_profile(conn, account_id, profile_id) is not None else []
    return store.ids_matching_any(conn, account_id, email=email, phone_number=phone_number)


# --------------------------------------------------------------------------- merge


def merge_profiles(conn: Connection, *, account_id: str, destination_id: str, source_ids: Sequence[str],
                   now: datetime) -> None:
    """Merge the source profiles into the destination and delete them. The destination keeps its own
    values; the sources fill what it lacks (fields, custom properties, identifiers, consent) and their
    events, list memberships, push tokens and list suppressions move over. A source's email that the
    destination does not take is dropped: Klaviyo's merge leaves one profile with one email address."""
    destination = store.get_profile_for_update(conn, account_id, destination_id)
    if destination is None:
        raise not_found(destination_id)
    sources = []
    for source_id in dict.fromkeys(source_ids):
        if source_id == destination_id:
            raise errors.invalid("A profile cannot be merged into itself.", pointer="/data/relationships/profiles")
        row = store.get_profile_for_update(conn, account_id, source_id)
        if row is None:
            raise not_found(source_id)
        sources.append(row)
    merged_ids = [row.id for row in sources]
    changes = merged_values(destination, sources)
    _load_hook_modules()
    for hook in list(PROFILE_MERGE_HOOKS):
        hook(conn, account_id, destination_id, merged_ids)
    store.move_push_tokens(conn, account_id, merged_ids, destination_id)
    store.move_list_suppressions(conn, account_id, merged_ids, destination_id)
    store.move_secondary_emails(conn, account_id, merged_ids, destination_id)
    store.delete_profiles(conn, account_id, merged_ids)
    changes["updated"] = now
    store.update_profile(conn, account_id, destination_id, changes)
    profile_changed(conn, account_id, destination_id)
    _record_merge_event(conn, account_id, destination_id, merged_ids, now)




def _record_merge_event(conn: Connection, account_id: str, profile_id: str, merged_ids: Sequence[str],
                        now: datetime) -> None:
    try:
        from menura.domain.events import record_event
    except ImportError:  # pragma: no cover - only before the events area exists
        return
    record_event(conn, account_id=account_id, profile_id=profile_id, metric_name=MERGED_PROFILE_METRIC,
                 properties={"merged_profile_ids": list(merged_ids)}, time=now, now=now)


# --------------------------------------------------------------------------- reading


def get_profile(conn: Connection, account_id: str, profile_id: str) -> Row[Any]:
    row = store.get_profile(conn, account_id, profile_id)
    if row is None:
        raise not_found(profile_id)
    return row


def segment_ids_for_profile(conn: Connection, account_id: str, profile_id: str) -> list[str]:
    return PROFILE_SEGMENT_IDS(conn, account_id, profile_id) if PROFILE_SEGMENT_IDS is not None else []


PREDICTIVE_FIELDS = ("historic_clv", "predicted_clv", "total_clv", "historic_number_of_orders",
                     "predicted_number_of_orders", "average_days_between_orders", "average_order_value",
                     "churn_probability", "expected_date_of_next_order", "ranked_channel_affinity")


PLACED_ORDER_METRIC = "Placed Order"


def predictive_analytics(conn: Connection, account_id: str, profile_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per profile, Klaviyo's predictive analytics object. The historic figures come from the
    profile's "Placed Order" events; the predicted ones stay null until a predictions engine is
    registered in PREDICTIVE_ANALYTICS (Klaviyo, too, answers nulls where it has no model)."""
    history = store.order_history(conn, account_id, profile_ids, PLACED_ORDER_METRIC)
    computed = PREDICTIVE_ANALYTICS(conn, account_id, profile_ids) if PREDICTIVE_ANALYTICS is not None else {}
    empty = dict.fromkeys(PREDICTIVE_FIELDS)
    return {pid: {**empty, **historic_order_figures(history.get(pid)), **computed.get(pid, {})}
            for pid in profile_ids}
