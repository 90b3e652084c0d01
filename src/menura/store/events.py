"""Queries for events, the ingest staging rows and bulk jobs.

Also the two dialect-specific expressions the aggregate compiler needs (epoch seconds of a
timestamp, a JSON property as JSON text), so no SQL dialect knowledge leaks out of store/.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Row,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from menura.store import planner_stats
from menura.store.db import json_text
from menura.store.event_tables import (
    event_bulk_jobs,
    event_ingest,
    events,
    ingest_state,
    intake_log_offsets,
    metrics,
)
from menura.store.profile_tables import profile_secondary_emails, profiles

# Rows per multi-row INSERT statement: well under SQLite's 32,766 bound parameters at 10 columns.
INSERT_CHUNK = 1000


def _dialect_insert(conn: Connection, table: Any) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


# --- events --------------------------------------------------------------------------------------


def insert_events(conn: Connection, rows: Sequence[dict[str, Any]], *,
                  new_profiles: Collection[str] = frozenset()) -> set[str]:
    """Insert events, skipping any whose (profile, metric, unique_id) is already recorded (also
    within `rows`: the first wins). Returns the ids actually inserted. `new_profiles` were created
    in this transaction: no event of theirs can be recorded already (nobody else sees them yet)."""
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        if not new_profiles:
            return _insert_events_by_copy(conn, rows)
        fresh, others = _first_of_new_profiles(rows, new_profiles)
        inserted = _copy_into_events(conn, fresh) if fresh else set()
        if others:
            inserted |= insert_events(conn, others)
        return inserted
    if conn.dialect.name == "sqlite":
        return _insert_events_sqlite(conn, rows)
    inserted: set[str] = set()
    stmt = (_dialect_insert(conn, events)
            .on_conflict_do_nothing(index_elements=["profile_id", "metric_id", "unique_id"])
            .returning(events.c.id))
    # executemany: one cached statement; SQLAlchemy's insertmanyvalues sends it as multi-row VALUES.
    for start in range(0, len(rows), INSERT_CHUNK):
        inserted.update(conn.execute(stmt, list(rows[start:start + INSERT_CHUNK])).scalars())
    return inserted


# Bound parameters per SQLite statement (SQLite allows 32,766 since 3.32), and rows per multi-row
# INSERT of events (10 parameters a row).
SQLITE_MAX_PARAMETERS = 32_000
SQLITE_ROWS_PER_INSERT = 1000


def _insert_events_sqlite(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """SQLite: multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING with the values already in their
    stored form (the text SQLAlchemy's DateTime and JSON types would write), so the batch does not
    pay per-value type processing."""
    inserted: set[str] = set()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
            chunk = rows[start:start + SQLITE_ROWS_PER_INSERT]
            params: list[Any] = []
            received: tuple[datetime, str] | None = None  # a batch shares its receipt time
            for row in chunk:
                if received is None or received[0] != row["received_at"]:
                    received = (row["received_at"], sqlite_datetime(row["received_at"]))
                params += (row["id"], row["account_id"], row["metric_id"], row["profile_id"],
                           sqlite_datetime(row["occurred_at"]), json_text(row["properties"]), row["value"],
                           row["value_currency"], row["unique_id"], received[1])
            cursor.execute(_sqlite_insert_sql(len(chunk)), params)
            inserted.update(found for (found,) in cursor.fetchall())
    finally:
        cursor.close()
    return inserted


def _sqlite_insert_sql(count: int) -> str:
    sql = _sqlite_insert_cache.get(count)
    if sql is None:
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * count)
        sql = _sqlite_insert_cache[count] = (
            "INSERT INTO events (id, account_id, metric_id, profile_id, occurred_at, properties, value, "
            f"value_currency, unique_id, received_at) VALUES {values} "
            "ON CONFLICT (profile_id, metric_id, unique_id) DO NOTHING RETURNING id")
    return sql


_sqlite_insert_cache: dict[int, str] = {}


def sqlite_datetime(value: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite (UtcDateTime's stored form)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without "+00:00": cheaper than replace()


# Below this many rows a plain INSERT beats the COPY detour.
COPY_THRESHOLD = 50


def _insert_events_by_copy(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    return insert_by_copy(conn, events, rows, "ON CONFLICT (profile_id, metric_id, unique_id) DO NOTHING")


def _first_of_new_profiles(rows: Sequence[dict[str, Any]], new_profiles: Collection[str]) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]]]:
    """(events of new profiles, the first of each (profile, metric, unique_id) only; the rest)."""
    fresh: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for row in rows:
        if row["profile_id"] in new_profiles and row["unique_id"] is not None:  # NULLs never conflict
            fresh.setdefault((row["profile_id"], row["metric_id"], row["unique_id"]), row)
        else:
            others.append(row)
    return list(fresh.values()), others


def _copy_into_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """COPY straight into `events`: for rows that cannot conflict with anything recorded."""
    _copy_rows(conn, "events", events, rows)
    return {row["id"] for row in rows}


def _copy_rows(conn: Connection, target: str, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """COPY rows (all with the same keys) into `target`, shaped like `table`. JSON columns go as JSON
    text, None too as JSON null (as SQLAlchemy's JSON type stores it)."""
    names = list(rows[0])
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json_text(row[name]) if name in json_columns else row[name] for name in names])
    finally:
        cursor.close()


def insert_by_copy(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], on_conflict: str) -> set[str]:
    """PostgreSQL: COPY rows (all with the same keys) into a session-local copy of `table`, then
    one INSERT ... SELECT ... `on_conflict` RETURNING id; returns the ids inserted. COPY is
    PostgreSQL's fastest load path and formats rows in C; one short statement then moves the batch
    whatever its size (a multi-row VALUES statement of a few thousand parameters is parsed again
    by the driver on every batch)."""
    load = f"{table.name}_load"
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {load} (LIKE {table.name} INCLUDING DEFAULTS) "
                         "ON COMMIT DELETE ROWS")
    _copy_rows(conn, load, table, rows)
    columns = ", ".join(rows[0])
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        # Duplicates inside the batch conflict with the copy inserted first, which is kept.
        cursor.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {load} {on_conflict} "
                       "RETURNING id")
        inserted = {found for (found,) in cursor.fetchall()}
        cursor.execute(f"TRUNCATE {load}")
    finally:
        cursor.close()
    return inserted


def touch_last_events(conn: Connection, account_id: str, latest: dict[str, datetime]) -> None:
    """Move each profile's last_event_date forward (never back): one statement for the batch.
    The same rule as the profiles area's touch_last_event, executed as executemany."""
    if not latest:
        return
    if conn.dialect.name == "postgresql":
        # One statement for the whole batch instead of a round trip per profile.
        conn.execute(text(
            "UPDATE profiles SET last_event_date = u.w "
            "FROM unnest(CAST(:ids AS text[]), CAST(:whens AS timestamptz[])) AS u(id, w) "
            "WHERE profiles.account_id = :a AND profiles.id = u.id "
            "AND (profiles.last_event_date IS NULL OR profiles.last_event_date < u.w)"),
            {"ids": list(latest), "whens": list(latest.values()), "a": account_id})
        return
    # SQLite: the driver's executemany with the stored text form (no per-row bind processing).
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            "UPDATE profiles SET last_event_date = ?1 WHERE account_id = ?2 AND id = ?3 "
            "AND (last_event_date IS NULL OR last_event_date < ?1)",
            [(sqlite_datetime(when), account_id, pid) for pid, when in latest.items()])
    finally:
        cursor.close()


# --- profiles in bulk (the ingest worker's find-or-create for identifier-only profiles) -----------


def find_ids_by_secondary_email(conn: Connection, account_id: str, emails: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(emails), 900):
        query = select(profile_secondary_emails.c.email, profile_secondary_emails.c.profile_id).where(
            profile_secondary_emails.c.account_id == account_id,
            profile_secondary_emails.c.email.in_(list(emails[start:start + 900])))
        found.update({email: pid for email, pid in conn.execute(query)})
    return found


def insert_new_profiles(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert profile rows (built by the profiles area's new_profile_values); one whose identifier
    a concurrent writer took is skipped. Returns the ids inserted."""
    inserted: set[str] = set()
    if not rows:
        return inserted
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD and _same_keys(rows):
        inserted = insert_by_copy(conn, profiles, rows, "ON CONFLICT DO NOTHING")
    elif conn.dialect.name == "sqlite" and _same_keys(rows):
        inserted = _insert_rows_sqlite(conn, profiles, rows)
    else:
        stmt = _dialect_insert(conn, profiles).on_conflict_do_nothing().returning(profiles.c.id)
        for start in range(0, len(rows), 500):
            inserted.update(conn.execute(stmt, list(rows[start:start + 500])).scalars())
    planner_stats.note_rows_added(conn, "profiles", len(inserted))
    return inserted


def _insert_rows_sqlite(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> set[str]:
    """SQLite: multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING id on the driver's cursor, each
    value converted by its column type's own bind processor (so stored exactly as through
    SQLAlchemy, without its per-statement compilation and parameter building)."""
    names = list(rows[0])
    processors = [table.c[name].type._cached_bind_processor(conn.dialect) for name in names]
    pairs = list(zip(names, processors, strict=True))
    inserted: set[str] = set()
    per_statement = max(1, SQLITE_MAX_PARAMETERS // len(names))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            params = [value if process is None else process(value)
                      for row in chunk for name, process in pairs for value in (row[name],)]
            placeholders = ", ".join(["(" + ", ".join("?" * len(names)) + ")"] * len(chunk))
            cursor.execute(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {placeholders} "
                           "ON CONFLICT DO NOTHING RETURNING id", params)
            inserted.update(found for (found,) in cursor.fetchall())
    finally:
        cursor.close()
    return inserted


def _same_keys(rows: Sequence[dict[str, Any]]) -> bool:
    keys = rows[0].keys()
    return all(row.keys() == keys for row in rows)


def find_event_ids_by_unique_id(conn: Connection, profile_id: str, metric_id: str, unique_id: str) -> str | None:
    return conn.execute(select(events.c.id).where(
        events.c.profile_id == profile_id, events.c.metric_id == metric_id, events.c.unique_id == unique_id)
    ).scalar_one_or_none()


def get_event(conn: Connection, account_id: str, event_id: str) -> Row[Any] | None:
    return conn.execute(select(events).where(events.c.account_id == account_id, events.c.id == event_id)).first()


def event_listing_select(account_id: str) -> Any:
    return select(events).where(events.c.account_id == account_id)


def delete_profile_events(conn: Connection, account_id: str, profile_id: str) -> int:
    return conn.execute(delete(events).where(events.c.account_id == account_id,
                                             events.c.profile_id == profile_id)).rowcount


def move_profile_events(conn: Connection, account_id: str, from_profile: str, to_profile: str) -> int:
    """Re-home a merged profile's events; an event the survivor already has (same metric and
    unique_id) is dropped instead of duplicated."""
    survivor = events.alias("survivor")
    duplicate = exists().where(survivor.c.profile_id == to_profile, survivor.c.metric_id == events.c.metric_id,
                               survivor.c.unique_id == events.c.unique_id)
    conn.execute(delete(events).where(events.c.account_id == account_id, events.c.profile_id == from_profile,
                                      events.c.unique_id.isnot(None), duplicate))
    return conn.execute(update(events).where(events.c.account_id == account_id,
                                             events.c.profile_id == from_profile)
                        .values(profile_id=to_profile)).rowcount


def events_of_metrics(conn: Connection, account_id: str, metric_ids: Sequence[str], start: datetime,
                      end: datetime) -> Iterable[Row[Any]]:
    """Stream (metric_id, properties, value) of events in [start, end) for custom metric totals."""
    query = (select(events.c.metric_id, events.c.properties, events.c.value)
             .where(events.c.account_id == account_id, events.c.metric_id.in_(list(metric_ids)),
                    events.c.occurred_at >= start, events.c.occurred_at < end))
    return conn.execution_options(yield_per=2000).execute(query)


# --- expressions for the aggregate compiler -------------------------------------------------------


def epoch_seconds(conn: Connection, column: Any) -> ColumnElement[Any]:
    """Whole unix seconds of a UtcDateTime column, as an integer."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)


def _json_path(name: str) -> str:
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def property_json_text(conn: Connection, name: str) -> ColumnElement[Any]:
    """The event property `name` as JSON text ('"abc"', '12', 'true'), NULL when absent, so both
    databases group and compare the same representation."""
    if conn.dialect.name == "postgresql":
        return cast(events.c.properties.op("->")(literal(name, String)), String)
    return events.c.properties.op("->", return_type=String)(literal(_json_path(name), String))


def json_text_of(conn: Connection, column: Any) -> ColumnElement[Any]:
    """A text column as JSON text (a quoted string); NULL stays NULL."""
    if conn.dialect.name == "postgresql":
        return cast(func.to_jsonb(column), String)
    return case((column.is_(None), None), else_=func.json_quote(column))


def property_value(conn: Connection, name: str) -> ColumnElement[Any]:
    """The event property `name` as scalar text (strings unquoted), for filters."""
    if conn.dialect.name == "postgresql":
        return events.c.properties.op("->>", return_type=String)(literal(name, String))
    return cast(events.c.properties.op("->>", return_type=String)(literal(_json_path(name), String)), String)


# --- ingest staging ------------------------------------------------------------------------------

_STATE_ID = 1
# Advisory lock key guarding the generation row on PostgreSQL ("menura events" in ASCII-ish).
_PG_LOCK_KEY = 0x6D656E657673


def current_generation(conn: Connection, *, for_staging: bool) -> int:
    """The generation new staging rows join. With `for_staging` on PostgreSQL, a shared advisory
    lock is held to the end of the transaction, so a drain's bump waits for in-flight stagers.
    (SQLite serializes write transactions, which gives the same guarantee.)"""
    if for_staging and conn.dialect.name == "postgresql":
        conn.execute(_SHARED_LOCK, {"k": _PG_LOCK_KEY})
    value = conn.execute(_GENERATION).scalar()
    if value is None:
        stmt = _dialect_insert(conn, ingest_state).values(id=_STATE_ID, generation=1)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))
        value = conn.execute(select(ingest_state.c.generation).where(ingest_state.c.id == _STATE_ID)).scalar_one()
    return int(value)


def close_generation(conn: Connection, generation: int) -> None:
    """Move new staging rows on to generation+1 (no-op if already done). On PostgreSQL this waits for
    every transaction still staging into `generation`, so afterwards all its rows are visible."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    current_generation(conn, for_staging=False)
    conn.execute(update(ingest_state).where(ingest_state.c.id == _STATE_ID,
                                            ingest_state.c.generation == generation)
                 .values(generation=generation + 1))


# Built once: the staging writer runs these for every batch of accepted events.
_SHARED_LOCK = text("SELECT pg_advisory_xact_lock_shared(:k)")
_GENERATION = select(ingest_state.c.generation).where(ingest_state.c.id == _STATE_ID)
_STAGE = insert(event_ingest)


def stage(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(_STAGE, values)


_PG_STAGE = ("INSERT INTO event_ingest (account_id, generation, payload, event_count, received_at, job_id) "
             "SELECT %s, generation, %s, %s, %s, %s FROM event_ingest_state WHERE id = 1 RETURNING generation")


def stage_in_current_generation(conn: Connection, values: dict[str, Any]) -> int | None:
    """PostgreSQL: stage a row into the current generation (with the shared lock a drain's bump
    waits for) in two statements on the driver's cursor — the group-commit writer's whole per-batch
    work. None when there is no generation row yet (use current_generation + stage)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_PG_LOCK_KEY,))
        cursor.execute(_PG_STAGE, (values["account_id"], values["payload"], values["event_count"],
                                   values["received_at"], values["job_id"]))
        row = cursor.fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row is not None else None


def take_staged(conn: Connection, *, up_to_generation: int, max_events: int) -> list[Row[Any]]:
    """The oldest staged rows of generations <= `up_to_generation`, about `max_events` events'
    worth (at least one row). On PostgreSQL they are locked until the caller's transaction ends and
    rows another drain holds are skipped, so drains of successive generations run in parallel: a
    drain that rolls back is retried, and its retry (same or higher generation) takes them again."""
    # Sizes first, payloads only of the rows taken (a bulk request's payload is ~200 KB).
    query = (select(event_ingest.c.id, event_ingest.c.event_count)
             .where(event_ingest.c.generation <= up_to_generation).order_by(event_ingest.c.id).limit(64))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    picked: list[int] = []
    total = 0
    for row in conn.execute(query):
        if picked and total + row.event_count > max_events:
            break
        picked.append(row.id)
        total += row.event_count
    if not picked:
        return []
    return list(conn.execute(select(event_ingest).where(event_ingest.c.id.in_(picked)).order_by(event_ingest.c.id)))


def delete_staged(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(delete(event_ingest).where(event_ingest.c.id.in_(list(ids))))


# --- attribution ---------------------------------------------------------------------------------


def campaign_touches(conn: Connection, account_id: str, metric_names: Sequence[str], profile_ids: Iterable[str],
                     start: datetime, end: datetime) -> list[Row[Any]]:
    """Events of the named metrics attributed to a campaign (`$campaign`), of the profiles, between
    `start` and `end`, oldest first: (id, profile_id, occurred_at, campaign_id, message_id)."""
    wanted = list(profile_ids)
    campaign = events.c.properties["$campaign"].as_string()
    rows: list[Row[Any]] = []
    for begin in range(0, len(wanted), 500):
        stmt = (select(events.c.id, events.c.profile_id, events.c.occurred_at, campaign.label("campaign_id"),
                       events.c.properties["$message"].as_string().label("message_id"))
                .join(metrics, metrics.c.id == events.c.metric_id)
                .where(events.c.account_id == account_id, metrics.c.account_id == account_id,
                       metrics.c.name.in_(list(metric_names)), events.c.profile_id.in_(wanted[begin:begin + 500]),
                       events.c.occurred_at >= start, events.c.occurred_at <= end, campaign.is_not(None))
                .order_by(events.c.occurred_at, events.c.id))
        rows += conn.execute(stmt).all()
    rows.sort(key=lambda row: (row.occurred_at, row.id))
    return rows


# --- intake log offsets --------------------------------------------------------------------------


def intake_log_offsets_for_update(conn: Connection) -> dict[str, int]:
    """Drained offset per intake log segment (read inside the drain's write transaction)."""
    return {row.segment: int(row.offset) for row in conn.execute(select(intake_log_offsets))}


def set_intake_log_offset(conn: Connection, segment: str, offset: int) -> None:
    stmt = _dialect_insert(conn, intake_log_offsets).values(segment=segment, offset=offset)
    conn.execute(stmt.on_conflict_do_update(index_elements=["segment"], set_={"offset": offset}))


def forget_intake_log_segments(conn: Connection, segments: Iterable[str]) -> None:
    names = list(segments)
    if names:
        conn.execute(delete(intake_log_offsets).where(intake_log_offsets.c.segment.in_(names)))


# --- bulk jobs -----------------------------------------------------------------------------------


def insert_bulk_job(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(event_bulk_jobs).values(**values))


def finish_bulk_job(conn: Connection, job_id: str, *, completed: int, failed: int,
                    errors: list[dict[str, Any]], now: datetime) -> None:
    conn.execute(update(event_bulk_jobs).where(event_bulk_jobs.c.id == job_id).values(
        status="complete", completed_count=completed, failed_count=failed, errors=errors or None,
        completed_at=now))


def get_bulk_job(conn: Connection, account_id: str, job_id: str) -> Row[Any] | None:
    return conn.execute(select(event_bulk_jobs).where(
        and_(event_bulk_jobs.c.account_id == account_id, event_bulk_jobs.c.id == job_id))).first()
