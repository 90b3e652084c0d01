"""Every SQL statement on segments, their members and their membership history."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    String,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from menura.store.list_tables import list_members, lists
from menura.store.profile_tables import profiles
from menura.store.segment_tables import segment_members, segment_membership_changes, segments
from menura.store.types import UtcDateTime

CHUNK = 500
SEGMENT_COLUMNS = {"id": segments.c.id, "name": segments.c.name, "created": segments.c.created,
                   "updated": segments.c.updated, "is_active": segments.c.is_active,
                   "is_starred": segments.c.is_starred}


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


# --------------------------------------------------------------------------- SQLite functions

# The date and datetime texts a property may hold to count as a date (ISO 8601, UTC when naive).
# PostgreSQL's menura_ts function (migration 0006) applies the same pattern.
PROPERTY_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
                           r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?"
                           r"(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?$")


def property_date(text: Any) -> datetime | None:
    """A property's text as a UTC datetime, None when it is not an ISO 8601 date."""
    if not isinstance(text, str) or not PROPERTY_DATE.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)



def _sqlite_ts(text: Any) -> str | None:
    when = property_date(text)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if when is not None else None


def _sqlite_regexp(pattern: Any, text: Any) -> int | None:
    if pattern is None or text is None:
        return None
    try:
        return 1 if re.search(pattern, text) else 0
    except (re.error, TypeError):
        return 0


def prepare(conn: Connection) -> None:
    """Give a SQLite connection the functions segment queries call (PostgreSQL has them from the
    migration or natively). Cheap enough to call before every segment query."""
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.driver_connection
    raw.create_function("menura_ts", 1, _sqlite_ts, deterministic=True)
    raw.create_function("menura_regexp", 2, _sqlite_regexp, deterministic=True)


# --------------------------------------------------------------------------- segments


def segment_select(account_id: str) -> Select[Any]:
    return select(segments).where(segments.c.account_id == account_id)


def get_segment(conn: Connection, account_id: str, segment_id: str, *, lock: str | None = None) -> Row[Any] | None:
    stmt = segment_select(account_id).where(segments.c.id == segment_id)
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "share":
        stmt = stmt.with_for_update(read=True)
    return conn.execute(stmt).first()


def segments_by_ids(conn: Connection, account_id: str, ids: Collection[str]) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for chunk in _chunks(sorted(set(ids))):
        rows += conn.execute(segment_select(account_id).where(segments.c.id.in_(chunk))).all()
    return rows


def segment_id_taken(conn: Connection, segment_id: str) -> bool:
    return conn.execute(select(segments.c.id).where(segments.c.id == segment_id)).first() is not None


def insert_segment(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(segments).values(**values))


def update_segment(conn: Connection, account_id: str, segment_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(segments).where(segments.c.account_id == account_id, segments.c.id == segment_id)
                 .values(**values))


def bump_version(conn: Connection, account_id: str, segment_id: str, values: Mapping[str, Any]) -> int:
    conn.execute(update(segments).where(segments.c.account_id == account_id, segments.c.id == segment_id)
                 .values(version=segments.c.version + 1, **values))
    return int(conn.execute(select(segments.c.version).where(segments.c.id == segment_id)).scalar_one())


def delete_segment(conn: Connection, account_id: str, segment_id: str) -> None:
    conn.execute(delete(segment_members).where(segment_members.c.segment_id == segment_id))
    conn.execute(delete(segment_membership_changes).where(segment_membership_changes.c.segment_id == segment_id))
    conn.execute(delete(segments).where(segments.c.account_id == account_id, segments.c.id == segment_id))


def existing_segment_ids(conn: Connection, account_id: str, ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        found.update(conn.execute(select(segments.c.id).where(segments.c.account_id == account_id,
                                                               segments.c.id.in_(chunk))).scalars())
    return found


def existing_segment_ids_all(conn: Connection, account_id: str) -> set[str]:
    return set(conn.execute(select(segments.c.id).where(segments.c.account_id == account_id)).scalars())


def existing_list_ids(conn: Connection, account_id: str, ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        found.update(conn.execute(select(lists.c.id).where(lists.c.account_id == account_id,
                                                           lists.c.id.in_(chunk))).scalars())
    return found


def active_segments(conn: Connection, account_id: str) -> list[Row[Any]]:
    """What the live hooks need: id, version, definition, dependencies."""
    stmt = select(segments.c.id, segments.c.version, segments.c.updated, segments.c.definition,
                  segments.c.dependencies).where(
        segments.c.account_id == account_id, segments.c.is_active.is_(True)).order_by(segments.c.id)
    return list(conn.execute(stmt).all())


def account_segment_graph(conn: Connection, account_id: str) -> dict[str, list[str]]:
    """segment id -> the groups its definition reads (lists and segments)."""
    stmt = select(segments.c.id, segments.c.dependencies).where(segments.c.account_id == account_id)
    return {row.id: list((row.dependencies or {}).get("groups", [])) for row in conn.execute(stmt)}


def set_processing(conn: Connection, segment_id: str, version: int, *, processing: bool, now: datetime) -> bool:
    """Only for the version the caller computed; False when the definition changed meanwhile."""
    values: dict[str, Any] = {"is_processing": processing}
    if not processing:
        values["computed_at"] = now
    result = conn.execute(update(segments).where(segments.c.id == segment_id, segments.c.version == version)
                          .values(**values))
    return result.rowcount > 0


# --------------------------------------------------------------------------- evaluating


def matching_profile_ids(conn: Connection, account_id: str, condition: ColumnElement[bool]) -> set[str]:
    prepare(conn)
    stmt = select(profiles.c.id).where(profiles.c.account_id == account_id, condition)
    return set(conn.execute(stmt).scalars())


def matching_select(account_id: str, condition: ColumnElement[bool]) -> Select[Any]:
    return select(profiles.c.id).where(profiles.c.account_id == account_id, condition)


def evaluate_profile(conn: Connection, account_id: str, profile_id: str,
                     conditions: Mapping[str, ColumnElement[bool]]) -> dict[str, bool]:
    """For one profile, which of the conditions hold: one round trip however many there are."""
    if not conditions:
        return {}
    prepare(conn)
    keys = list(conditions)
    columns = [exists(select(literal(1)).select_from(profiles).where(
        profiles.c.account_id == account_id, profiles.c.id == profile_id, conditions[key])).label(f"c{i}")
        for i, key in enumerate(keys)]
    row = conn.execute(select(*columns)).one()
    return {key: bool(row[i]) for i, key in enumerate(keys)}


def profile_exists(conn: Connection, account_id: str, profile_id: str) -> bool:
    stmt = select(profiles.c.id).where(profiles.c.account_id == account_id, profiles.c.id == profile_id)
    return conn.execute(stmt).first() is not None


# --------------------------------------------------------------------------- members


def member_ids(conn: Connection, segment_id: str) -> set[str]:
    return set(conn.execute(select(segment_members.c.profile_id)
                            .where(segment_members.c.segment_id == segment_id)).scalars())


def memberships_of(conn: Connection, account_id: str, profile_id: str) -> set[str]:
    stmt = select(segment_members.c.segment_id).where(segment_members.c.account_id == account_id,
                                                      segment_members.c.profile_id == profile_id)
    return set(conn.execute(stmt).scalars())


def segment_ids_for_profile(conn: Connection, account_id: str, profile_id: str) -> list[str]:
    stmt = (select(segment_members.c.segment_id).join(segments, segments.c.id == segment_members.c.segment_id)
            .where(segment_members.c.account_id == account_id, segment_members.c.profile_id == profile_id)
            .order_by(segment_members.c.segment_id))
    return list(conn.execute(stmt).scalars())


def add_members(conn: Connection, account_id: str, segment_id: str, profile_ids: Sequence[str],
                now: datetime) -> None:
    if not profile_ids:
        return
    if conn.dialect.name == "postgresql":
        # One statement over an array parameter: thousands of members cost one round trip.
        rows = select(literal(segment_id), func.unnest(literal(list(profile_ids), ARRAY(String))),
                      literal(account_id), literal(now, UtcDateTime))
        conn.execute(insert(segment_members).from_select(["segment_id", "profile_id", "account_id", "joined_at"],
                                                         rows))
    else:
        conn.execute(insert(segment_members), [{"segment_id": segment_id, "profile_id": pid,
                                                "account_id": account_id, "joined_at": now} for pid in profile_ids])
    _record(conn, account_id, segment_id, profile_ids, True, now)


def remove_members(conn: Connection, account_id: str, segment_id: str, profile_ids: Sequence[str],
                   now: datetime) -> None:
    if not profile_ids:
        return
    for chunk in _chunks(list(profile_ids)):
        conn.execute(delete(segment_members).where(segment_members.c.segment_id == segment_id,
                                                   segment_members.c.profile_id.in_(chunk)))
    _record(conn, account_id, segment_id, profile_ids, False, now)


def _record(conn: Connection, account_id: str, segment_id: str, profile_ids: Sequence[str], entered: bool,
            now: datetime) -> None:
    if conn.dialect.name == "postgresql":
        rows = select(literal(account_id), literal(segment_id), func.unnest(literal(list(profile_ids), ARRAY(String))),
                      literal(entered), literal(now, UtcDateTime))
        conn.execute(insert(segment_membership_changes).from_select(
            ["account_id", "segment_id", "profile_id", "entered", "at"], rows))
        return
    conn.execute(insert(segment_membership_changes),
                 [{"account_id": account_id, "segment_id": segment_id, "profile_id": pid, "entered": entered,
                   "at": now} for pid in profile_ids])


def add_matching_members(conn: Connection, account_id: str, segment_id: str, condition: ColumnElement[bool],
                         now: datetime) -> list[str]:
    """For a segment with no members yet: every profile matching `condition` joins, in one
    INSERT ... SELECT (and one for its history), with no round trip of ids through Python."""
    prepare(conn)
    chosen = select(literal(segment_id), profiles.c.id, literal(account_id), literal(now, UtcDateTime)).where(
        profiles.c.account_id == account_id, condition)
    added = list(conn.execute(insert(segment_members).from_select(
        ["segment_id", "profile_id", "account_id", "joined_at"], chosen).returning(segment_members.c.profile_id))
        .scalars())
    history = select(literal(account_id), segment_members.c.segment_id, segment_members.c.profile_id, true(),
                     segment_members.c.joined_at).where(segment_members.c.segment_id == segment_id)
    conn.execute(insert(segment_membership_changes).from_select(
        ["account_id", "segment_id", "profile_id", "entered", "at"], history))
    return added


def has_members(conn: Connection, segment_id: str) -> bool:
    stmt = select(segment_members.c.profile_id).where(segment_members.c.segment_id == segment_id).limit(1)
    return conn.execute(stmt).first() is not None


def member_counts(conn: Connection, segment_ids: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in _chunks(list(segment_ids)):
        stmt = (select(segment_members.c.segment_id, func.count()).where(segment_members.c.segment_id.in_(chunk))
                .group_by(segment_members.c.segment_id))
        counts.update({row[0]: int(row[1]) for row in conn.execute(stmt)})
    return counts


def member_profiles_select(account_id: str, segment_id: str) -> Select[Any]:
    """Profiles of the segment with their entry time, for the members listings."""
    return (select(profiles, segment_members.c.joined_at.label("joined_group_at"))
            .join(segment_members, segment_members.c.profile_id == profiles.c.id)
            .where(segment_members.c.segment_id == segment_id, profiles.c.account_id == account_id))


JOINED_AT = segment_members.c.joined_at


def forget_profile(conn: Connection, account_id: str, profile_id: str) -> None:
    conn.execute(delete(segment_members).where(segment_members.c.account_id == account_id,
                                               segment_members.c.profile_id == profile_id))
    conn.execute(delete(segment_membership_changes).where(segment_membership_changes.c.account_id == account_id,
                                                          segment_membership_changes.c.profile_id == profile_id))


# --------------------------------------------------------------------------- reports


def changes_between(conn: Connection, segment_ids: Sequence[str], start: datetime,
                    end: datetime) -> list[Row[Any]]:
    """(segment_id, entered, at) of every change in [start, end), oldest first."""
    stmt = (select(segment_membership_changes.c.segment_id, segment_membership_changes.c.entered,
                   segment_membership_changes.c.at)
            .where(segment_membership_changes.c.segment_id.in_(list(segment_ids)),
                   segment_membership_changes.c.at >= start, segment_membership_changes.c.at < end)
            .order_by(segment_membership_changes.c.at, segment_membership_changes.c.id))
    return list(conn.execute(stmt).all())


def net_change_before(conn: Connection, segment_ids: Sequence[str], when: datetime) -> dict[str, int]:
    """Members at `when`: entries minus exits recorded before it."""
    out: dict[str, int] = dict.fromkeys(segment_ids, 0)
    stmt = (select(segment_membership_changes.c.segment_id, segment_membership_changes.c.entered, func.count())
            .where(segment_membership_changes.c.segment_id.in_(list(segment_ids)),
                   segment_membership_changes.c.at < when)
            .group_by(segment_membership_changes.c.segment_id, segment_membership_changes.c.entered))
    for segment_id, entered, count in conn.execute(stmt):
        out[segment_id] += int(count) if entered else -int(count)
    return out


# --------------------------------------------------------------------------- lists read by conditions


def list_memberships(conn: Connection, account_id: str, profile_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """profile id -> {list id: joined time} (the evaluator's input)."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(profile_ids))):
        stmt = select(list_members.c.profile_id, list_members.c.list_id, list_members.c.joined_group_at).where(
            and_(list_members.c.account_id == account_id, list_members.c.profile_id.in_(chunk)))
        for pid, lid, joined in conn.execute(stmt):
            out.setdefault(pid, {})[lid] = joined
    return out
