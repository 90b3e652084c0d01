"""Queries for tags, tag groups and tag assignments. Every query is restricted to one account."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from menura.store.tables import tag_assignments, tag_groups, tags

# Columns the API may filter and sort on, by API field name.
TAG_COLUMNS = {"id": tags.c.id, "name": tags.c.name}
GROUP_COLUMNS = {"id": tag_groups.c.id, "name": tag_groups.c.name, "exclusive": tag_groups.c.exclusive,
                 "default": tag_groups.c.default}

# Ids per IN (...) clause: SQLite and PostgreSQL both cap the number of bound parameters.
CHUNK = 500


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


# --------------------------------------------------------------------------- tag groups


def group_select(account_id: str) -> Select[Any]:
    return select(tag_groups.c.id, tag_groups.c.name, tag_groups.c.exclusive, tag_groups.c.default) \
        .where(tag_groups.c.account_id == account_id)


def get_default_group(conn: Connection, account_id: str, *, lock: bool = False) -> Row[Any] | None:
    stmt = group_select(account_id).where(tag_groups.c.default.is_(True))
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def insert_group_if_absent(conn: Connection, values: dict[str, Any]) -> None:
    """Insert, or do nothing when a unique constraint (name, one default per account) objects.
    Used for the lazily created default group, which two requests may create at the same time."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(tag_groups).values(**values).on_conflict_do_nothing())


def insert_group(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(tag_groups).values(**values))


def get_group(conn: Connection, account_id: str, group_id: str) -> Row[Any] | None:
    return conn.execute(group_select(account_id).where(tag_groups.c.id == group_id)).first()


def groups_by_ids(conn: Connection, account_id: str, group_ids: Collection[str]) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for chunk in _chunks(sorted(set(group_ids))):
        rows += conn.execute(group_select(account_id).where(tag_groups.c.id.in_(chunk))).all()
    return rows


def group_name_taken(conn: Connection, account_id: str, name: str, *, except_id: str | None = None) -> bool:
    stmt = select(tag_groups.c.id).where(tag_groups.c.account_id == account_id, tag_groups.c.name == name)
    if except_id is not None:
        stmt = stmt.where(tag_groups.c.id != except_id)
    return conn.execute(stmt.limit(1)).first() is not None


def count_groups(conn: Connection, account_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(tag_groups)
                            .where(tag_groups.c.account_id == account_id)).scalar_one())


def rename_group(conn: Connection, account_id: str, group_id: str, name: str) -> None:
    conn.execute(update(tag_groups).where(tag_groups.c.account_id == account_id, tag_groups.c.id == group_id)
                 .values(name=name))


def delete_group(conn: Connection, account_id: str, group_id: str) -> None:
    """The group, its tags and their assignments; explicit rather than trusting ON DELETE CASCADE,
    which SQLite only honours with its foreign_keys pragma on."""
    tag_ids = select(tags.c.id).where(tags.c.account_id == account_id, tags.c.tag_group_id == group_id)
    conn.execute(delete(tag_assignments).where(tag_assignments.c.account_id == account_id,
                                               tag_assignments.c.tag_id.in_(tag_ids)))
    conn.execute(delete(tags).where(tags.c.account_id == account_id, tags.c.tag_group_id == group_id))
    conn.execute(delete(tag_groups).where(tag_groups.c.account_id == account_id, tag_groups.c.id == group_id))


# --------------------------------------------------------------------------- tags


def tag_select(account_id: str) -> Select[Any]:
    return select(tags.c.id, tags.c.name, tags.c.tag_group_id).where(tags.c.account_id == account_id)


def insert_tag(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(tags).values(**values))


def insert_tags(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(tags), rows)


def get_tag(conn: Connection, account_id: str, tag_id: str) -> Row[Any] | None:
    return conn.execute(tag_select(account_id).where(tags.c.id == tag_id)).first()


def tags_in_group(conn: Connection, account_id: str, group_id: str) -> list[Row[Any]]:
    stmt = tag_select(account_id).where(tags.c.tag_group_id == group_id).order_by(tags.c.id)
    return list(conn.execute(stmt).all())


def tag_name_taken(conn: Connection, account_id: str, group_id: str, name: str, *,
                   except_id: str | None = None) -> bool:
    stmt = select(tags.c.id).where(tags.c.account_id == account_id, tags.c.tag_group_id == group_id,
                                   tags.c.name == name)
    if except_id is not None:
        stmt = stmt.where(tags.c.id != except_id)
    return conn.execute(stmt.limit(1)).first() is not None


def count_tags(conn: Connection, account_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(tags)
                            .where(tags.c.account_id == account_id)).scalar_one())


def rename_tag(conn: Connection, account_id: str, tag_id: str, name: str) -> None:
    conn.execute(update(tags).where(tags.c.account_id == account_id, tags.c.id == tag_id).values(name=name))


def delete_tag(conn: Connection, account_id: str, tag_id: str) -> None:
    conn.execute(delete(tag_assignments).where(tag_assignments.c.account_id == account_id,
                                               tag_assignments.c.tag_id == tag_id))
    conn.execute(delete(tags).where(tags.c.account_id == account_id, tags.c.id == tag_id))


# --------------------------------------------------------------------------- assignments


def assigned_ids(conn: Connection, account_id: str, tag_id: str, resource_type: str) -> list[str]:
    stmt = (select(tag_assignments.c.resource_id)
            .where(tag_assignments.c.account_id == account_id, tag_assignments.c.tag_id == tag_id,
                   tag_assignments.c.resource_type == resource_type)
            .order_by(tag_assignments.c.resource_id))
    return list(conn.execute(stmt).scalars())


def assigned_among(conn: Connection, account_id: str, tag_id: str, resource_type: str,
                   resource_ids: Sequence[str]) -> set[str]:
    """Which of `resource_ids` already carry the tag."""
    found: set[str] = set()
    for chunk in _chunks(resource_ids):
        found.update(conn.execute(
            select(tag_assignments.c.resource_id)
            .where(tag_assignments.c.account_id == account_id, tag_assignments.c.tag_id == tag_id,
                   tag_assignments.c.resource_type == resource_type,
                   tag_assignments.c.resource_id.in_(chunk))).scalars())
    return found


def tag_counts(conn: Connection, account_id: str, resource_type: str,
               resource_ids: Sequence[str]) -> dict[str, int]:
    """How many tags each resource carries (resources without tags are absent)."""
    counts: dict[str, int] = {}
    for chunk in _chunks(resource_ids):
        stmt = (select(tag_assignments.c.resource_id, func.count())
                .where(tag_assignments.c.account_id == account_id,
                       tag_assignments.c.resource_type == resource_type,
                       tag_assignments.c.resource_id.in_(chunk))
                .group_by(tag_assignments.c.resource_id))
        counts.update({rid: int(n) for rid, n in conn.execute(stmt).all()})
    return counts


def group_tags_on(conn: Connection, account_id: str, resource_type: str, resource_ids: Sequence[str],
                  group_id: str) -> dict[str, str]:
    """For each resource carrying some tag of `group_id`: resource id -> one such tag's name."""
    found: dict[str, str] = {}
    for chunk in _chunks(resource_ids):
        stmt = (select(tag_assignments.c.resource_id, tags.c.name)
                .join(tags, tags.c.id == tag_assignments.c.tag_id)
                .where(tag_assignments.c.account_id == account_id,
                       tag_assignments.c.resource_type == resource_type,
                       tag_assignments.c.resource_id.in_(chunk), tags.c.tag_group_id == group_id)
                .order_by(tag_assignments.c.resource_id, tags.c.name))
        for rid, name in conn.execute(stmt).all():
            found.setdefault(rid, name)
    return found


def add_assignments(conn: Connection, account_id: str, tag_id: str, resource_type: str,
                    resource_ids: Sequence[str]) -> None:
    rows = [{"tag_id": tag_id, "resource_type": resource_type, "resource_id": rid, "account_id": account_id}
            for rid in resource_ids]
    if rows:
        conn.execute(insert(tag_assignments), rows)


def remove_assignments(conn: Connection, account_id: str, resource_type: str, resource_ids: Sequence[str],
                       *, tag_id: str | None = None) -> None:
    """Untag the resources: from one tag, or (tag_id None) from every tag."""
    for chunk in _chunks(resource_ids):
        stmt = delete(tag_assignments).where(tag_assignments.c.account_id == account_id,
                                             tag_assignments.c.resource_type == resource_type,
                                             tag_assignments.c.resource_id.in_(chunk))
        if tag_id is not None:
            stmt = stmt.where(tag_assignments.c.tag_id == tag_id)
        conn.execute(stmt)


def tags_of_resources(conn: Connection, account_id: str, resource_type: str,
                      resource_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """resource id -> its tags (id, name, tag_group_id), by tag id."""
    out: dict[str, list[Row[Any]]] = {}
    for chunk in _chunks(resource_ids):
        stmt = (select(tag_assignments.c.resource_id, tags.c.id, tags.c.name, tags.c.tag_group_id)
                .join(tags, tags.c.id == tag_assignments.c.tag_id)
                .where(tag_assignments.c.account_id == account_id,
                       tag_assignments.c.resource_type == resource_type,
                       tag_assignments.c.resource_id.in_(chunk))
                .order_by(tags.c.id))
        for row in conn.execute(stmt).all():
            out.setdefault(row.resource_id, []).append(row)
    return out
