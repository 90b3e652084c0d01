"""Lists: names, opt-in process, membership changes, and the hooks that keep memberships right
when profiles merge or are deleted.

Klaviyo facts (Lists operations of its API reference and help center):
- every list is double opt-in unless set otherwise ("Lists are set to double opt-in by default");
- adding/removing members takes at most 1000 profiles per call and never changes consent;
- list ids are short mixed-case alphanumeric strings ("Y6nRLr").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura import ids as id_formats
from menura.domain import profiles
from menura.domain import tags as tag_rules
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import lists as store
from menura.store import profiles as profile_store
from menura.store.db import Database

SINGLE_OPT_IN = "single_opt_in"
DOUBLE_OPT_IN = "double_opt_in"
OPT_IN_PROCESSES = (DOUBLE_OPT_IN, SINGLE_OPT_IN)
DEFAULT_OPT_IN = DOUBLE_OPT_IN
MAX_MEMBERS_PER_CALL = 1000
MAX_NAME_LENGTH = 255
LIST_ID_LENGTH = 6

# Called as hook(conn, account_id, list_id, profile_ids) after profiles join or leave a list, in the
# same transaction (segments built on lists re-evaluate those profiles).
MembershipHook = Callable[[Connection, str, str, Sequence[str]], None]
LIST_MEMBERSHIP_HOOKS: list[MembershipHook] = []


def membership_changed(conn: Connection, account_id: str, list_id: str, profile_ids: Sequence[str]) -> None:
    """Run the LIST_MEMBERSHIP_HOOKS; for every write that adds or removes list members."""
    if profile_ids:
        for hook in list(LIST_MEMBERSHIP_HOOKS):
            hook(conn, account_id, list_id, profile_ids)


def list_not_found(list_id: str, *, pointer: str | None = None) -> ApiError:
    err = errors.not_found(f"A list with id '{list_id}' does not exist.")
    err.pointer = pointer
    return err


def check_name(name: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(name, str):
        raise errors.invalid("A list name must be a string.", pointer=pointer)
    if not name.strip():
        raise errors.invalid("A list name cannot be blank.", pointer=pointer)
    if len(name) > MAX_NAME_LENGTH:
        raise errors.invalid(f"A list name cannot be longer than {MAX_NAME_LENGTH} characters.", pointer=pointer)
    return name


def check_opt_in(value: Any, pointer: str = "/data/attributes/opt_in_process") -> str:
    if value not in OPT_IN_PROCESSES:
        allowed = ", ".join(f"'{v}'" for v in OPT_IN_PROCESSES)
        raise errors.invalid(f"'{value}' is not a valid opt_in_process; use one of {allowed}.", pointer=pointer)
    return str(value)


def get_list(conn: Connection, account_id: str, list_id: str, *, pointer: str | None = None) -> Row[Any]:
    row = store.get_list(conn, account_id, list_id)
    if row is None:
        raise list_not_found(list_id, pointer=pointer)
    return row


def _new_list_id(conn: Connection) -> str:
    while True:
        candidate = id_formats.short_id(LIST_ID_LENGTH)
        if not store.list_id_taken(conn, candidate):
            return candidate


def create_list(db: Database, account_id: str, now: datetime, *, name: str, opt_in_process: str | None) -> Row[Any]:
    check_name(name)
    process = DEFAULT_OPT_IN if opt_in_process is None else check_opt_in(opt_in_process)
    with db.write() as conn:
        list_id = _new_list_id(conn)
        store.insert_list(conn, {"id": list_id, "account_id": account_id, "name": name,
                                 "opt_in_process": process, "created": now, "updated": now})
        return get_list(conn, account_id, list_id)


def update_list(db: Database, account_id: str, now: datetime, list_id: str, changes: dict[str, Any]) -> Row[Any]:
    """`changes` holds only the attributes the request sent."""
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = check_name(changes["name"])
    if "opt_in_process" in changes:
        values["opt_in_process"] = check_opt_in(changes["opt_in_process"])
    with db.write() as conn:
        get_list(conn, account_id, list_id)
        if values:
            store.update_list(conn, account_id, list_id, {**values, "updated": now})
        return get_list(conn, account_id, list_id)


def delete_list(db: Database, account_id: str, list_id: str) -> None:
    with db.write() as conn:
        get_list(conn, account_id, list_id)
        tag_rules.forget_resources(conn, account_id, "list", [list_id])
        profile_store.delete_list_suppressions_of_list(conn, account_id, list_id)
        store.delete_list(conn, account_id, list_id)


# --------------------------------------------------------------------------- membership


def check_profile_ids(conn: Connection, account_id: str, profile_ids: Sequence[str]) -> None:
    """404 naming the first unknown profile, pointing at its place in `data`."""
    existing = profiles.get_profile_ids_existing(conn, account_id, list(dict.fromkeys(profile_ids)))
    for index, pid in enumerate(profile_ids):
        if pid not in existing:
            err = errors.not_found(f"A profile with id '{pid}' does not exist.")
            err.pointer = f"/data/{index}/id"
            raise err


def check_member_count(profile_ids: Sequence[str]) -> None:
    if len(profile_ids) > MAX_MEMBERS_PER_CALL:
        raise errors.invalid(f"At most {MAX_MEMBERS_PER_CALL} profiles can be sent per call; "
                             f"{len(profile_ids)} were sent.", pointer="/data")


def add_profiles(db: Database, account_id: str, now: datetime, list_id: str, profile_ids: Sequence[str]) -> list[str]:
    """Add existing profiles to the list without touching consent; returns the newly added ids.
    All or nothing: one unknown profile id rejects the whole call."""
    check_member_count(profile_ids)
    with db.write() as conn:
        get_list(conn, account_id, list_id)
        check_profile_ids(conn, account_id, profile_ids)
        added = store.add_members(conn, account_id, list_id, profile_ids, now)
        membership_changed(conn, account_id, list_id, added)
        return added


def remove_profiles(db: Database, account_id: str, list_id: str, profile_ids: Sequence[str]) -> list[str]:
    """Remove profiles from the list (consent unchanged); ids that are not members are ignored."""
    check_member_count(profile_ids)
    with db.write() as conn:
        get_list(conn, account_id, list_id)
        check_profile_ids(conn, account_id, profile_ids)
        removed = store.remove_members(conn, list_id, profile_ids)
        membership_changed(conn, account_id, list_id, removed)
        return removed


# --------------------------------------------------------------------------- hooks for other areas


@tag_rules.resource_checker("list")
def lists_exist(conn: Connection, account_id: str, ids: Collection[str]) -> set[str]:
    return store.existing_list_ids(conn, account_id, ids)


def on_profile_deleted(conn: Connection, account_id: str, profile_id: str) -> None:
    store.forget_profile(conn, account_id, profile_id)


def on_profiles_merged(conn: Connection, account_id: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    store.move_memberships(conn, account_id, survivor_id, merged_ids)
    store.move_pending(conn, account_id, survivor_id, merged_ids)


def _register_profile_hooks() -> None:
    # Registered on import, so every process that can touch lists (API, workers) keeps them in step.
    if on_profile_deleted not in profiles.PROFILE_DELETE_HOOKS:
        profiles.PROFILE_DELETE_HOOKS.append(on_profile_deleted)
    if on_profiles_merged not in profiles.PROFILE_MERGE_HOOKS:
        profiles.PROFILE_MERGE_HOOKS.append(on_profiles_merged)


_register_profile_hooks()
