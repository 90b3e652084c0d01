"""Tags and tag groups: the account's default group, names, limits, exclusive groups, and tagging
lists, segments, campaigns and flows.

Klaviyo's documented rules (create_tag, create_tag_group, tag_* operations of its API reference):
an account has at most 500 tags and 50 tag groups; every account has one default tag group, which
cannot be deleted and which takes tags created without a group; only names can be changed (a tag
never moves between groups, a group's `exclusive`/`default` never change); deleting a group deletes
its tags and their associations; a resource carries at most 100 tags, and at most one tag of an
exclusive group.

Tagged resources belong to other categories. Each registers, in `RESOURCE_EXISTS`, a function that
says which ids exist in an account; ids of a type with no registered function are rejected, so an
assignment never points at something that was never there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura import ids as id_formats
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import tags as store
from menura.store.db import Database

DEFAULT_GROUP_NAME = "Default"
MAX_TAGS_PER_ACCOUNT = 500
MAX_GROUPS_PER_ACCOUNT = 50
MAX_TAGS_PER_RESOURCE = 100
# The storage limit of the name columns; Klaviyo documents none, and longer names must not reach SQL.
MAX_NAME_LENGTH = 255

RESOURCE_TYPES = ("list", "segment", "campaign", "flow")

# (connection, account id, candidate ids) -> the subset of ids that exist in that account.
ExistenceChecker = Callable[[Connection, str, Collection[str]], set[str]]
RESOURCE_EXISTS: dict[str, ExistenceChecker] = {}


def resource_checker(resource_type: str) -> Callable[[ExistenceChecker], ExistenceChecker]:
    """Decorator for other categories: `@resource_checker("list") def lists_exist(conn, account, ids)`."""
    if resource_type not in RESOURCE_TYPES:
        raise ValueError(f"tags cannot be assigned to {resource_type!r}")

    def register(checker: ExistenceChecker) -> ExistenceChecker:
        RESOURCE_EXISTS[resource_type] = checker
        return checker
    return register


# --------------------------------------------------------------------------- errors


def tag_not_found(tag_id: str) -> ApiError:
    return errors.not_found(f"A tag with id '{tag_id}' does not exist.")


def group_not_found(group_id: str, *, pointer: str | None = None) -> ApiError:
    err = errors.not_found(f"A tag group with id '{group_id}' does not exist.")
    err.pointer = pointer
    return err


def _invalid_data(detail: str, pointer: str = "/data") -> ApiError:
    return errors.invalid(detail, pointer=pointer)


def check_name(name: str, *, what: str) -> str:
    """A usable name, or 400 pointing at it."""
    pointer = "/data/attributes/name"
    if not name.strip():
        raise errors.invalid(f"A {what} name cannot be blank.", pointer=pointer)
    if len(name) > MAX_NAME_LENGTH:
        raise errors.invalid(f"A {what} name cannot be longer than {MAX_NAME_LENGTH} characters.", pointer=pointer)
    return name


# --------------------------------------------------------------------------- the default group


def default_group(conn: Connection, account_id: str, now: datetime) -> Row[Any]:
    """The account's default group, created on first use, and locked (PostgreSQL: row lock;
    SQLite: the write transaction already excludes other writers). Every tags write starts here,
    so limit checks and exclusive-group checks of one account never race each other."""
    row = store.get_default_group(conn, account_id, lock=True)
    if row is not None:
        return row
    name, attempt = DEFAULT_GROUP_NAME, 1
    while True:
        store.insert_group_if_absent(conn, {"id": id_formats.uuid4(), "account_id": account_id, "name": name,
                                            "exclusive": False, "default": True, "created": now})
        row = store.get_default_group(conn, account_id, lock=True)
        if row is not None:
            return row
        # Only reachable if a non-default group already holds the name.
        attempt += 1
        name = f"{DEFAULT_GROUP_NAME} {attempt}"


def ensure_default_group(db: Database, account_id: str, now: datetime) -> None:
    """For read paths: a cheap read, and a write only the first time."""
    with db.read() as conn:
        if store.get_default_group(conn, account_id) is not None:
            return
    with db.write() as conn:
        default_group(conn, account_id, now)


# --------------------------------------------------------------------------- tag groups


def create_group(db: Database, account_id: str, now: datetime, *, name: str, exclusive: bool) -> Row[Any]:
    check_name(name, what="tag group")
    with db.write() as conn:
        default_group(conn, account_id, now)
        if store.count_groups(conn, account_id) >= MAX_GROUPS_PER_ACCOUNT:
            raise _invalid_data(f"An account cannot have more than {MAX_GROUPS_PER_ACCOUNT} tag groups.")
        _check_group_name_free(conn, account_id, name)
        group_id = id_formats.uuid4()
        store.insert_group(conn, {"id": group_id, "account_id": account_id, "name": name,
                                  "exclusive": exclusive, "default": False, "created": now})
        row = store.get_group(conn, account_id, group_id)
    assert row is not None
    return row


def rename_group(db: Database, account_id: str, now: datetime, group_id: str, name: str) -> None:
    check_name(name, what="tag group")
    with db.write() as conn:
        default_group(conn, account_id, now)
        if store.get_group(conn, account_id, group_id) is None:
            raise group_not_found(group_id)
        _check_group_name_free(conn, account_id, name, except_id=group_id)
        store.rename_group(conn, account_id, group_id, name)


def delete_group(db: Database, account_id: str, now: datetime, group_id: str) -> None:
    with db.write() as conn:
        default_group(conn, account_id, now)
        row = store.get_group(conn, account_id, group_id)
        if row is None:
            raise group_not_found(group_id)
        if row.default:
            raise errors.invalid("The default tag group cannot be deleted.")
        store.delete_group(conn, account_id, group_id)


def _check_group_name_free(conn: Connection, account_id: str, name: str, *, except_id: str | None = None) -> None:
    if store.group_name_taken(conn, account_id, name, except_id=except_id):
        raise errors.conflict("conflict", f"A tag group named '{name}' already exists.",
                              pointer="/data/attributes/name")


# --------------------------------------------------------------------------- tags


def create_tag(db: Database, account_id: str, now: datetime, *, name: str, group_id: str | None) -> Row[Any]:
    """A new tag in `group_id`, or in the default group when None."""
    check_name(name, what="tag")
    with db.write() as conn:
        default = default_group(conn, account_id, now)
        if group_id is None:
            group_id = default.id
        elif store.get_group(conn, account_id, group_id) is None:
            raise group_not_found(group_id, pointer="/data/relationships/tag-group/data/id")
        if store.count_tags(conn, account_id) >= MAX_TAGS_PER_ACCOUNT:
            raise _invalid_data(f"An account cannot have more than {MAX_TAGS_PER_ACCOUNT} tags.")
        _check_tag_name_free(conn, account_id, group_id, name)
        tag_id = id_formats.uuid4()
        store.insert_tag(conn, {"id": tag_id, "account_id": account_id, "tag_group_id": group_id,
                                "name": name, "created": now})
        row = store.get_tag(conn, account_id, tag_id)
    assert row is not None
    return row


def rename_tag(db: Database, account_id: str, now: datetime, tag_id: str, name: str) -> None:
    check_name(name, what="tag")
    with db.write() as conn:
        default_group(conn, account_id, now)
        row = _tag(conn, account_id, tag_id)
        _check_tag_name_free(conn, account_id, row.tag_group_id, name, except_id=tag_id)
        store.rename_tag(conn, account_id, tag_id, name)


def delete_tag(db: Database, account_id: str, now: datetime, tag_id: str) -> None:
    with db.write() as conn:
        default_group(conn, account_id, now)
        _tag(conn, account_id, tag_id)
        store.delete_tag(conn, account_id, tag_id)


def _tag(conn: Connection, account_id: str, tag_id: str) -> Row[Any]:
    row = store.get_tag(conn, account_id, tag_id)
    if row is None:
        raise tag_not_found(tag_id)
    return row


def _check_tag_name_free(conn: Connection, account_id: str, group_id: str, name: str, *,
                         except_id: str | None = None) -> None:
    if store.tag_name_taken(conn, account_id, group_id, name, except_id=except_id):
        raise errors.conflict("conflict", f"A tag named '{name}' already exists in this tag group.",
                              pointer="/data/attributes/name")


# --------------------------------------------------------------------------- tagging resources


def tag_resources(db: Database, account_id: str, now: datetime, tag_id: str, resource_type: str,
                  resource_ids: Sequence[str]) -> None:
    """Associate the tag with resources (ids in request order; `/data/<i>/id` points at culprits).
    Already associated ids are left as they are; nothing is written unless every id passes."""
    wanted = _unique(resource_ids)
    with db.write() as conn:
        default_group(conn, account_id, now)
        tag = _tag(conn, account_id, tag_id)
        _check_exist(conn, account_id, resource_type, resource_ids, wanted)
        carrying = store.assigned_among(conn, account_id, tag_id, resource_type, wanted)
        new = [rid for rid in wanted if rid not in carrying]
        _check_room(conn, account_id, resource_type, resource_ids, new)
        _check_exclusive(conn, account_id, tag, resource_type, resource_ids, new)
        store.add_assignments(conn, account_id, tag_id, resource_type, new)


def untag_resources(db: Database, account_id: str, now: datetime, tag_id: str, resource_type: str,
                    resource_ids: Sequence[str]) -> None:
    """Remove the tag from resources. Ids that carry the tag are always accepted (even if their
    resource has gone); others must exist, as for tagging."""
    wanted = _unique(resource_ids)
    with db.write() as conn:
        default_group(conn, account_id, now)
        _tag(conn, account_id, tag_id)
        carrying = store.assigned_among(conn, account_id, tag_id, resource_type, wanted)
        others = [rid for rid in wanted if rid not in carrying]
        _check_exist(conn, account_id, resource_type, resource_ids, others)
        store.remove_assignments(conn, account_id, resource_type, sorted(carrying), tag_id=tag_id)


def _unique(resource_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(resource_ids))


def _pointer(resource_ids: Sequence[str], rid: str) -> str:
    return f"/data/{resource_ids.index(rid)}/id"


def _check_exist(conn: Connection, account_id: str, resource_type: str, resource_ids: Sequence[str],
                 candidates: Sequence[str]) -> None:
    if not candidates:
        return
    checker = RESOURCE_EXISTS.get(resource_type)
    existing = checker(conn, account_id, candidates) if checker is not None else set()
    missing = [rid for rid in candidates if rid not in existing]
    if missing:
        shown = ", ".join(f"'{rid}'" for rid in missing[:10]) + (", ..." if len(missing) > 10 else "")
        noun = resource_type if len(missing) == 1 else f"{resource_type}s"
        verb = "does" if len(missing) == 1 else "do"
        err = errors.not_found(f"The {noun} with id {shown} {verb} not exist.")
        err.pointer = _pointer(resource_ids, missing[0])
        raise err


def _check_room(conn: Connection, account_id: str, resource_type: str, resource_ids: Sequence[str],
                new: Sequence[str]) -> None:
    counts = store.tag_counts(conn, account_id, resource_type, new)
    for rid in new:
        if counts.get(rid, 0) >= MAX_TAGS_PER_RESOURCE:
            raise _invalid_data(f"The {resource_type} '{rid}' already has {MAX_TAGS_PER_RESOURCE} tags, "
                                f"the most one {resource_type} can have.", _pointer(resource_ids, rid))


def _check_exclusive(conn: Connection, account_id: str, tag: Row[Any], resource_type: str,
                     resource_ids: Sequence[str], new: Sequence[str]) -> None:
    group = store.get_group(conn, account_id, tag.tag_group_id)
    if group is None or not group.exclusive or not new:
        return
    holders = store.group_tags_on(conn, account_id, resource_type, new, group.id)
    for rid in new:
        if rid in holders:
            raise _invalid_data(
                f"The {resource_type} '{rid}' already has the tag '{holders[rid]}' of the exclusive tag group "
                f"'{group.name}'; a resource can have only one tag of an exclusive group.",
                _pointer(resource_ids, rid))


# --------------------------------------------------------------------------- for other categories


def forget_resources(conn: Connection, account_id: str, resource_type: str, resource_ids: Sequence[str]) -> None:
    """Call when resources are deleted, in the deleting transaction: their tags go with them."""
    store.remove_assignments(conn, account_id, resource_type, _unique(resource_ids))


def tags_of(conn: Connection, account_id: str, resource_type: str,
            resource_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """resource id -> its tags (rows with id, name, tag_group_id), for `include=tags` elsewhere."""
    return store.tags_of_resources(conn, account_id, resource_type, _unique(resource_ids))
