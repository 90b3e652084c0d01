"""The durable work queue: every SQL statement that touches `work_items`.

A work item is a row: accepted 202 requests, scheduled sends, flow delays, webhook deliveries and
bulk jobs all become one before the request that created them returns. Workers claim due rows,
run them and mark them done. A claim is a lease: `claimed_by` plus `lease_until`. If a worker dies,
its lease runs out and the next `claim` takes the item again, so handlers must be idempotent (or
record their effects together with `complete`/`checkpoint` in one transaction, which makes the
effects exactly-once).

Two clocks meet here. `now` is the work clock (possibly virtual): it decides due-ness (`run_at`)
and stamps `updated`/`finished`. `lease_now` is the real passage of time: a lease must not expire
just because someone advanced a virtual clock by three days, nor never expire because a virtual
clock stands still. It defaults to `now` so callers with one clock pass one.

Concurrency: on PostgreSQL `claim` picks rows with `FOR UPDATE SKIP LOCKED`, so several workers
never wait on or take the same row. On SQLite there is one writer at a time (the Database opens
write transactions with BEGIN IMMEDIATE), so the same UPDATE ... RETURNING is atomic by itself.
Every state change after the claim is fenced by `claimed_by = worker_id AND status = 'running'`:
a worker whose lease was taken over can no longer complete, fail or checkpoint the item.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from menura.store.db import Database, after_commit
from menura.store.tables import work_items

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
FINISHED_STATUSES = (DONE, FAILED)

# Retry delays: 2 s, 4 s, 8 s, ... capped at one hour. Deterministic (no jitter) so tests and a
# virtual clock can predict them; herds are unlikely because items fail at different times.
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0
# last_error keeps the tail of a traceback; the column is TEXT but rows should stay small.
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class WorkItem:
    id: int
    kind: str
    account_id: str | None
    payload: dict[str, Any]
    status: str
    run_at: datetime
    attempts: int
    max_attempts: int
    lease_until: datetime | None
    claimed_by: str | None
    progress: dict[str, Any] | None
    last_error: str | None
    dedupe_key: str | None
    created: datetime
    updated: datetime
    finished: datetime | None


def _to_item(row: RowMapping) -> WorkItem:
    return WorkItem(
        id=row["id"],
        kind=row["kind"],
        account_id=row["account_id"],
        payload=row["payload"],
        status=row["status"],
        run_at=row["run_at"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        lease_until=row["lease_until"],
        claimed_by=row["claimed_by"],
        progress=row["progress"],
        last_error=row["last_error"],
        dedupe_key=row["dedupe_key"],
        created=row["created"],
        updated=row["updated"],
        finished=row["finished"],
    )


def backoff_delay(attempts: int) -> timedelta:
    """How long to wait before retrying an item that has failed `attempts` times."""
    # The exponent is bounded so a huge max_attempts cannot overflow the float.
    exponent = min(max(attempts - 1, 0), 64)
    seconds = min(BACKOFF_BASE_SECONDS * 2.0**exponent, BACKOFF_MAX_SECONDS)
    return timedelta(seconds=seconds)


# --- enqueue ---------------------------------------------------------------------------------


def enqueue(
    conn: Connection,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    run_at: datetime | None = None,
    account_id: str | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
) -> int:
    """Add a work item inside the caller's transaction and return its id.

    With a `dedupe_key` already present for `kind` (in any status, until purged) the existing id is
    returned and nothing is inserted. Workers in this process are woken when the transaction
    commits, so due work starts without waiting for the poll interval.
    """
    values = {
        "kind": kind,
        "payload": payload,
        "account_id": account_id,
        "dedupe_key": dedupe_key,
        "status": QUEUED,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created": now,
        "updated": now,
    }
    if dedupe_key is None:
        item_id = conn.execute(insert(work_items).values(values).returning(work_items.c.id)).scalar_one()
    else:
        item_id = _enqueue_deduplicated(conn, kind, dedupe_key, values)
    _wake_after_commit(conn)
    return int(item_id)


def _find_by_dedupe_key(conn: Connection, kind: str, dedupe_key: str) -> int | None:
    query = select(work_items.c.id).where(work_items.c.kind == kind, work_items.c.dedupe_key == dedupe_key)
    return conn.execute(query).scalar_one_or_none()


def _enqueue_deduplicated(conn: Connection, kind: str, dedupe_key: str, values: dict[str, Any]) -> int:
    # The common case (key already there) costs one indexed read and burns no sequence value.
    existing = _find_by_dedupe_key(conn, kind, dedupe_key)
    if existing is not None:
        return existing
    # Two transactions may both have seen nothing. ON CONFLICT DO NOTHING makes the loser wait for
    # the winner's commit and then insert nothing, instead of raising a unique violation that would
    # abort the caller's whole PostgreSQL transaction. Both dialects spell it the same way.
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(work_items)
        .values(values)
        .on_conflict_do_nothing(index_elements=["kind", "dedupe_key"])
        .returning(work_items.c.id)
    )
    inserted = conn.execute(statement).scalar_one_or_none()
    if inserted is not None:
        return inserted
    # READ COMMITTED: this new statement sees the row the other transaction committed.
    winner = _find_by_dedupe_key(conn, kind, dedupe_key)
    if winner is None:  # pragma: no cover - only if the winner's row was deleted in between
        raise RuntimeError(f"work item {kind}/{dedupe_key} vanished while enqueueing")
    return winner


# --- in-process wake-up ------------------------------------------------------------------------
# A worker thread in the same process (embedded mode) registers a listener; enqueue arranges for it
# to be called after the enqueuing transaction commits (earlier, the row would not be visible yet).

_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def add_enqueue_listener(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener()` after each commit that enqueued work in this process; returns a remover."""
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def _notify_listeners(_conn: Connection | None = None) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener()


def _wake_after_commit(conn: Connection) -> None:
    if _listeners:
        after_commit(conn, _notify_listeners)


# --- claim -----------------------------------------------------------------------------------


def _due_condition(now: datetime, lease_now: datetime) -> ColumnElement[bool]:
    queued_and_due = and_(work_items.c.status == QUEUED, work_items.c.run_at <= now)
    lease_expired = and_(work_items.c.status == RUNNING, work_items.c.lease_until < lease_now)
    return or_(queued_and_due, lease_expired)


def _kind_filter(kinds: Sequence[str] | None) -> list[ColumnElement[bool]]:
    return [] if kinds is None else [work_items.c.kind.in_(list(kinds))]


def has_due(
    conn: Connection, *, now: datetime, lease_now: datetime | None = None, kinds: Sequence[str] | None = None
) -> bool:
    """Whether `claim` would find anything: a cheap read used before taking SQLite's write lock."""
    condition = and_(_due_condition(now, lease_now or now), *_kind_filter(kinds))
    return conn.execute(select(work_items.c.id).where(condition).limit(1)).first() is not None


def claim(
    db: Database,
    *,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
    limit: int = 1,
    kinds: Sequence[str] | None = None,
    lease_now: datetime | None = None,
) -> list[WorkItem]:
    """Take up to `limit` due items (queued and due, or running with an expired lease) for
    `worker_id`: mark them running with a lease and count the attempt. Runs its own transaction."""
    if kinds is not None and not kinds:
        return []
    lease_now = lease_now or now
    if db.is_sqlite:
        # Idle polling must not take SQLite's single write lock every half second.
        with db.read() as conn:
            if not has_due(conn, now=now, lease_now=lease_now, kinds=kinds):
                return []
    with db.write() as conn:
        _fail_exhausted_leases(conn, now=now, lease_now=lease_now, kinds=kinds)
        return _claim_rows(conn, worker_id, now, lease_now, lease_seconds, limit, kinds)


def _fail_exhausted_leases(
    conn: Connection, *, now: datetime, lease_now: datetime, kinds: Sequence[str] | None
) -> None:
    # An item whose worker died max_attempts times (e.g. it runs the process out of memory) would
    # otherwise be retried forever: its handler never got to call fail().
    conn.execute(
        update(work_items)
        .where(
            work_items.c.status == RUNNING,
            work_items.c.lease_until < lease_now,
            work_items.c.attempts >= work_items.c.max_attempts,
            *_kind_filter(kinds),
        )
        .values(
            status=FAILED,
            claimed_by=None,
            lease_until=None,
            finished=now,
            updated=now,
            last_error="lease expired: the worker stopped without finishing, on the last attempt",
        )
    )


def _claim_rows(
    conn: Connection,
    worker_id: str,
    now: datetime,
    lease_now: datetime,
    lease_seconds: float,
    limit: int,
    kinds: Sequence[str] | None,
) -> list[WorkItem]:
    # SKIP LOCKED lets concurrent PostgreSQL claimers pass over each other's rows; SQLite's
    # compiler drops the clause (it has one writer anyway).
    candidates = (
        select(work_items.c.id)
        .where(_due_condition(now, lease_now), *_kind_filter(kinds))
        .order_by(work_items.c.run_at, work_items.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(work_items)
        .where(work_items.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=RUNNING,
            claimed_by=worker_id,
            lease_until=lease_now + timedelta(seconds=lease_seconds),
            attempts=work_items.c.attempts + 1,
            updated=now,
        )
        .returning(*work_items.c)
    )
    items = [_to_item(row) for row in conn.execute(statement).mappings()]
    # RETURNING order is unspecified; hand them out oldest first.
    return sorted(items, key=lambda item: (item.run_at, item.id))


# --- outcomes (all fenced by the claim) ---------------------------------------------------------


def _owned(item_id: int, worker_id: str) -> ColumnElement[bool]:
    return and_(work_items.c.id == item_id, work_items.c.claimed_by == worker_id, work_items.c.status == RUNNING)


def complete(conn: Connection, item_id: int, *, worker_id: str, now: datetime) -> bool:
    """Mark the item done. False (and no change) if it is no longer claimed by `worker_id`."""
    statement = (
        update(work_items)
        .where(_owned(item_id, worker_id))
        .values(status=DONE, lease_until=None, finished=now, updated=now, last_error=None)
    )
    return conn.execute(statement).rowcount == 1


def fail(conn: Connection, item_id: int, *, worker_id: str, now: datetime, error: str) -> bool:
    """Record a failed attempt: retry after an exponential backoff, or give up (status failed) once
    max_attempts attempts were made. False if the item is no longer claimed by `worker_id`."""
    row = conn.execute(
        select(work_items.c.attempts, work_items.c.max_attempts).where(_owned(item_id, worker_id))
    ).first()
    if row is None:
        return False
    error = error[-MAX_ERROR_CHARS:]
    released = {"claimed_by": None, "lease_until": None, "updated": now, "last_error": error}
    if row.attempts >= row.max_attempts:
        values = {**released, "status": FAILED, "finished": now}
    else:
        values = {**released, "status": QUEUED, "run_at": now + backoff_delay(row.attempts)}
    return conn.execute(update(work_items).where(_owned(item_id, worker_id)).values(values)).rowcount == 1


def checkpoint(
    conn: Connection,
    item_id: int,
    *,
    worker_id: str,
    now: datetime,
    progress: dict[str, Any],
    lease_seconds: float,
    lease_now: datetime | None = None,
) -> bool:
    """Store a long job's progress and renew its lease. Call it in the transaction that holds the
    batch's effects, so progress and effects commit (or vanish) together. False if not ours."""
    lease_until = (lease_now or now) + timedelta(seconds=lease_seconds)
    statement = (
        update(work_items)
        .where(_owned(item_id, worker_id))
        .values(progress=progress, lease_until=lease_until, updated=now)
    )
    return conn.execute(statement).rowcount == 1


def release(
    conn: Connection,
    item_id: int,
    *,
    worker_id: str,
    now: datetime,
    progress: dict[str, Any] | None = None,
) -> bool:
    """Hand a claimed item back to the queue, due at once, without counting the attempt: for a
    worker shutting down gracefully in the middle of a long job. False if not ours."""
    values: dict[str, Any] = {
        "status": QUEUED,
        "claimed_by": None,
        "lease_until": None,
        "run_at": now,
        "updated": now,
        "attempts": work_items.c.attempts - 1,
    }
    if progress is not None:
        values["progress"] = progress
    return conn.execute(update(work_items).where(_owned(item_id, worker_id)).values(values)).rowcount == 1


# --- reading and maintenance ----------------------------------------------------------------------


def get(conn: Connection, item_id: int) -> WorkItem | None:
    row = conn.execute(select(work_items).where(work_items.c.id == item_id)).mappings().first()
    return None if row is None else _to_item(row)


def queue_depth(conn: Connection) -> dict[str, int]:
    """Number of unfinished items per status: {"queued": n, "running": n} (done/failed history is
    not counted: it can be large and is not a queue)."""
    query = (
        select(work_items.c.status, func.count())
        .where(work_items.c.status.in_([QUEUED, RUNNING]))
        .group_by(work_items.c.status)
    )
    depth = {QUEUED: 0, RUNNING: 0}
    depth.update({status: int(count) for status, count in conn.execute(query)})
    return depth


def queue_depth_by_kind(conn: Connection) -> dict[str, int]:
    """Unfinished (queued or running) items per kind of work, for the queue-depth metric."""
    query = (
        select(work_items.c.kind, func.count())
        .where(work_items.c.status.in_([QUEUED, RUNNING]))
        .group_by(work_items.c.kind)
    )
    return {kind: int(count) for kind, count in conn.execute(query)}


def next_due_at(conn: Connection) -> datetime | None:
    """When the next item becomes claimable: the earliest queued run_at or running lease end."""
    # func.min keeps the column's type, so UtcDateTime still converts the results.
    queued = select(func.min(work_items.c.run_at)).where(work_items.c.status == QUEUED)
    leases = select(func.min(work_items.c.lease_until)).where(work_items.c.status == RUNNING)
    candidates = [conn.execute(queued).scalar(), conn.execute(leases).scalar()]
    present = [when for when in candidates if when is not None]
    return min(present) if present else None


def purge_finished(conn: Connection, *, finished_before: datetime, limit: int) -> int:
    """Delete up to `limit` done/failed items finished before the cutoff; returns how many."""
    batch = (
        select(work_items.c.id)
        .where(work_items.c.status.in_(FINISHED_STATUSES), work_items.c.finished < finished_before)
        .limit(limit)
    )
    # Materialize the ids first: MySQL-style "delete with limit" isn't portable, and deleting by a
    # list of primary keys is cheap on both databases.
    ids = list(conn.execute(batch).scalars())
    if not ids:
        return 0
    return conn.execute(delete(work_items).where(work_items.c.id.in_(ids))).rowcount
