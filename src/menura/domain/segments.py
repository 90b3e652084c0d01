"""Segments: names, definitions (validated against the account: metrics, lists and segments must
exist, segments may not refer to themselves through other segments), activation, and the
recompute that every definition change queues.

Klaviyo facts (Segments API reference): ids are short alphanumeric strings; deactivating must be
the only change in its request; inactive segments are not processed and keep their membership.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura import ids as id_formats
from menura.domain import postal_codes
from menura.domain import segment_conditions as sc
from menura.domain import tags as tag_rules
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import metrics as metric_store
from menura.store import segments as store
from menura.store import work
from menura.store.db import Database

SEGMENT_ID_LENGTH = 6
MAX_NAME_LENGTH = 255
RECOMPUTE = "segment.recompute"  # handled by menura.engine.segments.live
DEFINITION = "/data/attributes/definition"


def segment_not_found(segment_id: str) -> ApiError:
    return errors.not_found(f"A segment with id '{segment_id}' does not exist.")


def get_segment(conn: Connection, account_id: str, segment_id: str) -> Row[Any]:
    row = store.get_segment(conn, account_id, segment_id)
    if row is None:
        raise segment_not_found(segment_id)
    return row


def check_name(name: Any) -> str:
    pointer = "/data/attributes/name"
    if not isinstance(name, str):
        raise errors.invalid("A segment name must be a string.", pointer=pointer)
    if not name.strip():
        raise errors.invalid("A segment name cannot be blank.", pointer=pointer)
    if len(name) > MAX_NAME_LENGTH:
        raise errors.invalid(f"A segment name cannot be longer than {MAX_NAME_LENGTH} characters.", pointer=pointer)
    return name


# --------------------------------------------------------------------------- definitions


def _walk(raw: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(pointer, condition) for every condition of a raw (already parsed) definition."""
    for gi, group in enumerate(raw["condition_groups"]):
        for ci, cond in enumerate(group["conditions"]):
            yield f"{pointer}/condition_groups/{gi}/conditions/{ci}", cond


def validate_definition(conn: Connection, account_id: str, raw: Any, *, segment_id: str | None = None
                        ) -> tuple[sc.Definition, sc.Dependencies]:
    """Parse the definition and check what it names exists in the account; 400 at the culprit."""
    definition = sc.parse_definition(raw, DEFINITION)
    deps = sc.dependencies(definition)
    _check_metrics(conn, account_id, raw, deps.metrics)
    _check_groups(conn, account_id, raw, deps.groups, segment_id)
    for pointer, cond in _walk(raw, DEFINITION):
        if cond.get("type") == "profile-postal-code-distance":
            try:
                postal_codes.center(str(cond["country_code"]).upper(), str(cond["postal_code"]))
            except postal_codes.PostalError as exc:
                raise errors.invalid(str(exc), pointer=f"{pointer}/{exc.field}") from None
    return definition, deps


def _check_metrics(conn: Connection, account_id: str, raw: Any, metric_ids: Collection[str]) -> None:
    known = {row.id for row in metric_store.get_metrics(conn, account_id, metric_ids)}
    for pointer, cond in _walk(raw, DEFINITION):
        if cond.get("type") == "profile-metric" and cond["metric_id"] not in known:
            raise errors.invalid(f"The metric '{cond['metric_id']}' does not exist.", pointer=f"{pointer}/metric_id")
        if cond.get("type") == "profile-metric-funnel":
            for si, step in enumerate(cond["steps"]):
                if step["metric_id"] not in known:
                    raise errors.invalid(f"The metric '{step['metric_id']}' does not exist.",
                                         pointer=f"{pointer}/steps/{si}/metric_id")


def _check_groups(conn: Connection, account_id: str, raw: Any, group_ids: Collection[str],
                  segment_id: str | None) -> None:
    lists = store.existing_list_ids(conn, account_id, group_ids)
    segment_ids = store.existing_segment_ids(conn, account_id, group_ids)
    graph = store.account_segment_graph(conn, account_id)
    for pointer, cond in _walk(raw, DEFINITION):
        if cond.get("type") != "profile-group-membership":
            continue
        for index, gid in enumerate(cond["group_ids"]):
            at = f"{pointer}/group_ids/{index}"
            if gid not in lists and gid not in segment_ids:
                raise errors.invalid(f"No list or segment with id '{gid}' exists.", pointer=at)
            if gid in segment_ids and segment_id is not None:
                path = _path_to(graph, gid, segment_id)
                if path is not None:
                    chain = " -> ".join([segment_id, *path])
                    raise errors.invalid(f"The segment '{gid}' depends on this segment ({chain}); a segment "
                                         "cannot contain itself.", pointer=at)
            if gid == segment_id:
                raise errors.invalid("A segment cannot contain itself.", pointer=at)


def _path_to(graph: dict[str, list[str]], start: str, target: str) -> list[str] | None:
    """Segments from `start` to `target` following definitions, if `start` reaches it."""
    stack, seen = [(start, [start])], {start}
    while stack:
        node, path = stack.pop()
        if node == target:
            return path
        for nxt in graph.get(node, []):
            if nxt not in seen and nxt in graph:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


# --------------------------------------------------------------------------- operations


def _new_id(conn: Connection) -> str:
    while True:
        candidate = id_formats.short_id(SEGMENT_ID_LENGTH)
        if not store.segment_id_taken(conn, candidate):
            return candidate


def _queue_recompute(conn: Connection, account_id: str, segment_id: str, version: int, now: datetime) -> None:
    work.enqueue(conn, kind=RECOMPUTE, payload={"segment_id": segment_id, "version": version}, now=now,
                 account_id=account_id)


def create_segment(db: Database, account_id: str, now: datetime, *, name: Any, definition: Any,
                   is_starred: bool | None) -> Row[Any]:
    check_name(name)
    with db.write() as conn:
        segment_id = _new_id(conn)
        _, deps = validate_definition(conn, account_id, definition, segment_id=segment_id)
        store.insert_segment(conn, {"id": segment_id, "account_id": account_id, "name": name,
                                    "definition": definition, "dependencies": deps.to_json(), "is_active": True,
                                    "is_starred": bool(is_starred), "is_processing": True, "version": 1,
                                    "created": now, "updated": now})
        _queue_recompute(conn, account_id, segment_id, 1, now)
        return get_segment(conn, account_id, segment_id)


def update_segment(db: Database, account_id: str, now: datetime, segment_id: str,
                   changes: dict[str, Any]) -> Row[Any]:
    """`changes` holds the attributes the request sent (null ones included)."""
    if changes.get("is_active") is False and len([k for k, v in changes.items() if v is not None]) > 1:
        raise errors.invalid("Deactivating a segment must be the only change in the request.",
                             pointer="/data/attributes/is_active")
    with db.write() as conn:
        row = store.get_segment(conn, account_id, segment_id, lock="update")
        if row is None:
            raise segment_not_found(segment_id)
        values: dict[str, Any] = {}
        if changes.get("name") is not None:
            values["name"] = check_name(changes["name"])
        if changes.get("is_starred") is not None:
            values["is_starred"] = bool(changes["is_starred"])
        recompute = False
        if changes.get("definition") is not None:
            _, deps = validate_definition(conn, account_id, changes["definition"], segment_id=segment_id)
            values.update(definition=changes["definition"], dependencies=deps.to_json())
            recompute = row.is_active or changes.get("is_active") is True
        if changes.get("is_active") is not None and bool(changes["is_active"]) != row.is_active:
            values["is_active"] = bool(changes["is_active"])
            recompute = recompute or values["is_active"]
        if not values:
            return row
        values["updated"] = now
        if recompute:
            values["is_processing"] = True
            version = store.bump_version(conn, account_id, segment_id, values)
            _queue_recompute(conn, account_id, segment_id, version, now)
        elif "definition" in values:
            store.bump_version(conn, account_id, segment_id, values)
        else:
            store.update_segment(conn, account_id, segment_id, values)
        return get_segment(conn, account_id, segment_id)


def delete_segment(db: Database, account_id: str, segment_id: str) -> None:
    with db.write() as conn:
        get_segment(conn, account_id, segment_id)
        users = sorted(sid for sid, groups in store.account_segment_graph(conn, account_id).items()
                       if segment_id in groups and sid != segment_id)
        if users:
            raise errors.conflict("conflict", f"The segment '{segment_id}' is used by the segment(s) "
                                  f"{', '.join(repr(u) for u in users)}; change or delete those first.")
        tag_rules.forget_resources(conn, account_id, "segment", [segment_id])
        store.delete_segment(conn, account_id, segment_id)


# --------------------------------------------------------------------------- for other categories


@tag_rules.resource_checker("segment")
def segments_exist(conn: Connection, account_id: str, ids: Collection[str]) -> set[str]:
    return store.existing_segment_ids(conn, account_id, ids)


def attributes(row: Row[Any], *, profile_count: int | None = None) -> dict[str, Any]:
    attrs = {
        "name": row.name,
        "definition": row.definition,
        "created": _iso(row.created),
        "updated": _iso(row.updated),
        "is_active": bool(row.is_active),
        "is_processing": bool(row.is_processing),
        "is_starred": bool(row.is_starred),
    }
    if profile_count is not None:
        attrs["profile_count"] = profile_count
    return attrs


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
