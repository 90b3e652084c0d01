"""SQL for lists, list membership and pending double opt-in subscriptions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from menura.store.list_tables import list_members, list_pending_subscriptions, lists

members = list_members
pending = list_pending_subscriptions

# Parameters per statement stay well under SQLite's limit (32766) and PostgreSQL's (65535).
_CHUNK = 5000


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _dialect_insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


# --------------------------------------------------------------------------- lists


def insert_list(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(lists).values(values))


def get_list(conn: Connection, account_id: str, list_id: str) -> Row[Any] | None:
    return conn.execute(select(lists).where(lists.c.account_id == account_id, lists.c.id == list_id)).first()


def update_list(conn: Connection, account_id: str, list_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(lists).where(lists.c.account_id == account_id, lists.c.id == list_id).values(values))


def delete_list(conn: Connection, account_id: str, list_id: str) -> None:
    # Members and pending subscriptions go by ON DELETE CASCADE; delete them first anyway so
    # nothing depends on the SQLite connection having foreign keys switched on.
    conn.execute(delete(members).where(members.c.list_id == list_id))
    conn.execute(delete(pending).where(pending.c.list_id == list_id))
    conn.execute(delete(lists).where(lists.c.account_id == account_id, lists.c.id == list_id))


def list_id_taken(conn: Connection, list_id: str) -> bool:
    return conn.execute(select(lists.c.id).where(lists.c.id == list_id)).first() is not None


def existing_list_ids(conn: Connection, account_id: str, ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(ids)):
        query = select(lists.c.id).where(lists.c.account_id == account_id, lists.c.id.in_(chunk))
        found.update(conn.execute(query).scalars())
    return found


def lists_by_ids(conn: Connection, account_id: str, ids: Collection[str]) -> list[Row[Any]]:
    """The account's lists among `ids`, in the order of `ids` (unknown ids are left out)."""
    wanted = list(dict.fromkeys(ids))
    rows: dict[str, Row[Any]] = {}
    for chunk in _chunks(wanted):
        query = select(lists).where(lists.c.account_id == account_id, lists.c.id.in_(chunk))
        rows.update({row.id: row for row in conn.execute(query)})
    return [rows[i] for i in wanted if i in rows]


def lists_select(account_id: str) -> Select[Any]:
    return select(lists).where(lists.c.account_id == account_id)


def member_counts(conn: Connection, list_ids: Sequence[str]) -> dict[str, int]:
    if not list_ids:
        return {}
    query = (select(members.c.list_id, func.count()).where(members.c.list_id.in_(list(list_ids)))
             .group_by(members.c.list_id))
    counts = {lid: 0 for lid in list_ids}
    counts.update({lid: int(n) for lid, n in conn.execute(query)})
    return counts


# --------------------------------------------------------------------------- membership


def list_ids_for_profile(conn: Connection, account_id: str, profile_id: str) -> list[str]:
    """Ids of the lists the profile belongs to, oldest membership first."""
    query = (select(members.c.list_id)
             .where(members.c.account_id == account_id, members.c.profile_id == profile_id)
             .order_by(members.c.joined_group_at, members.c.list_id))
    return list(conn.execute(query).scalars())


def member_ids_among(conn: Connection, list_id: str, profile_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(profile_ids)):
        query = select(members.c.profile_id).where(members.c.list_id == list_id, members.c.profile_id.in_(chunk))
        found.update(conn.execute(query).scalars())
    return found


def add_members(conn: Connection, account_id: str, list_id: str, profile_ids: Sequence[str],
                now: datetime, *, report: bool = True) -> list[str]:
    """Add profiles to the list; returns the ids that were not members yet (with `report`; bulk
    callers that need no answer skip the RETURNING). Safe against a concurrent transaction adding
    the same profile (ON CONFLICT DO NOTHING)."""
    wanted = list(dict.fromkeys(profile_ids))
    added: list[str] = []
    statement = (_dialect_insert(conn)(members)
                 .on_conflict_do_nothing(index_elements=["list_id", "profile_id"]))
    if report:
        statement = statement.returning(members.c.profile_id)
    for chunk in _chunks(wanted):
        # executemany: one cached statement for every chunk.
        rows = [{"list_id": list_id, "profile_id": pid, "account_id": account_id, "joined_group_at": now}
                for pid in chunk]
        result = conn.execute(statement, rows)
        if report:
            added.extend(result.scalars())
    order = {pid: i for i, pid in enumerate(wanted)}
    return sorted(added, key=order.__getitem__)


def remove_members(conn: Connection, list_id: str, profile_ids: Sequence[str]) -> list[str]:
    """Remove profiles from the list; returns the ids that were members."""
    removed: list[str] = []
    for chunk in _chunks(list(dict.fromkeys(profile_ids))):
        statement = (delete(members).where(members.c.list_id == list_id, members.c.profile_id.in_(chunk))
                     .returning(members.c.profile_id))
        removed.extend(conn.execute(statement).scalars())
    return removed


def member_ids_after(conn: Connection, list_id: str, after: str | None, limit: int) -> list[str]:
    """Member ids in id order after `after`: walks a whole list in batches."""
    query = select(members.c.profile_id).where(members.c.list_id == list_id)
    if after is not None:
        query = query.where(members.c.profile_id > after)
    return list(conn.execute(query.order_by(members.c.profile_id).limit(limit)).scalars())


def move_memberships(conn: Connection, account_id: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    """Profile merge: the survivor joins every list a merged profile was in (keeping the earliest
    join time), then the merged profiles' memberships go."""
    if not merged_ids:
        return
    query = (select(members.c.list_id, func.min(members.c.joined_group_at).label("joined"))
             .where(members.c.account_id == account_id, members.c.profile_id.in_(list(merged_ids)))
             .group_by(members.c.list_id))
    for list_id, joined in conn.execute(query).all():
        current = conn.execute(select(members.c.joined_group_at).where(
            members.c.list_id == list_id, members.c.profile_id == survivor_id)).scalar_one_or_none()
        if current is None:
            conn.execute(insert(members).values(list_id=list_id, profile_id=survivor_id, account_id=account_id,
                                                joined_group_at=joined))
        elif joined < current:
            conn.execute(update(members).where(members.c.list_id == list_id, members.c.profile_id == survivor_id)
                         .values(joined_group_at=joined))
    conn.execute(delete(members).where(members.c.account_id == account_id,
                                       members.c.profile_id.in_(list(merged_ids))))


def forget_profile(conn: Connection, account_id: str, profile_id: str) -> None:
    """Data-privacy deletion: no membership or pending subscription of the profile remains."""
    conn.execute(delete(members).where(members.c.account_id == account_id, members.c.profile_id == profile_id))
    conn.execute(delete(pending).where(pending.c.account_id == account_id, pending.c.profile_id == profile_id))


# --------------------------------------------------------------------------- pending double opt-in


def get_pending(conn: Connection, pending_id: str) -> Row[Any] | None:
    return conn.execute(select(pending).where(pending.c.id == pending_id)).first()


def get_pending_for(conn: Connection, list_id: str, profile_id: str) -> Row[Any] | None:
    return conn.execute(select(pending).where(pending.c.list_id == list_id,
                                              pending.c.profile_id == profile_id)).first()


def pending_for_profile(conn: Connection, account_id: str, profile_id: str) -> list[Row[Any]]:
    query = (select(pending).where(pending.c.account_id == account_id, pending.c.profile_id == profile_id)
             .order_by(pending.c.created, pending.c.id))
    return list(conn.execute(query))


def insert_pending(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(pending).values(values))


def update_pending(conn: Connection, pending_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(pending).where(pending.c.id == pending_id).values(values))


def delete_pending(conn: Connection, pending_id: str) -> None:
    conn.execute(delete(pending).where(pending.c.id == pending_id))


def move_pending(conn: Connection, account_id: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    """Profile merge: pending confirmations follow the survivor (one per list)."""
    for row in conn.execute(select(pending).where(pending.c.account_id == account_id,
                                                  pending.c.profile_id.in_(list(merged_ids)))).all():
        if get_pending_for(conn, row.list_id, survivor_id) is None:
            update_pending(conn, row.id, {"profile_id": survivor_id})
        else:
            delete_pending(conn, row.id)
