"""Accepting events: what an accepted (202) event is, and how it is made durable before the answer.

An accepted request becomes one staging row holding its validated entries, written in the request's
own transaction, so "accepted" means "stored" even if the process dies right after answering.
Single events on an embedded (SQLite file) server are appended to the process's intake log
instead (menura.store.intake_log): as durable against the process dying, without waiting for the
database's one write lock that every process shares.
The ingest worker (menura.engine.event_ingest) expands staging rows in batches: profiles found
or created, metrics found or created, unique_id de-duplication, property discovery.

Which worker drains which rows: staging rows carry a *generation*. The first row of generation G
enqueues the work item `events.ingest:G`; that drain closes G (new rows join G+1, which enqueue
their own item) and then expands every row of generations <= G. Closing waits for transactions
still staging into G (SQLite serializes writers; PostgreSQL uses an advisory lock), so no row can
be left behind by a drain that has already finished.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection

from menura.domain import profiles
from menura.jsonapi import errors
from menura.store import events as store
from menura.store import intake_log, work
from menura.store.db import after_commit

INGEST_KIND = "events.ingest"
MAX_BULK_EVENTS = 1000


class IntakeEvent(msgspec.Struct, array_like=True, frozen=True):
    metric: str
    service: str
    properties: dict[str, Any]
    time: int  # unix seconds (Klaviyo truncates event times to the second)
    value: float | None
    currency: str | None
    unique_id: str
    backfill: bool = False


class IntakeEntry(msgspec.Struct, array_like=True, frozen=True):
    """One profile and its events; `index` is its position in a bulk request."""

    index: int
    profile_id: str | None
    profile: dict[str, Any]
    events: list[IntakeEvent]
    meta: dict[str, Any] | None = None
    client: bool = False  # client-side (public key): existing identifiers are not changed
    normalized: bool = False  # `profile` is one identifier, already validated and normalized


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[IntakeEntry])
_writers_lock = threading.Lock()  # guards this process's staging writers and intake log writers


def encode_entries(entries: Sequence[IntakeEntry]) -> bytes:
    return _encoder.encode(list(entries))


def decode_entries(payload: bytes) -> list[IntakeEntry]:
    return _decoder.decode(payload)


# (database, generation) pairs this process knows have a committed drain item: later stagers
# skip the enqueue.
_enqueued: set[tuple[str, int]] = set()
_enqueued_lock = threading.Lock()


def stage(conn: Connection, *, account_id: str, entries: Sequence[IntakeEntry], now: datetime,
          job_id: str | None = None) -> None:
    """Make accepted entries durable in the caller's transaction and make sure a drain will run."""
    values = {"account_id": account_id, "payload": encode_entries(entries),
              "event_count": sum(len(e.events) for e in entries), "received_at": now, "job_id": job_id}
    generation = store.stage_in_current_generation(conn, values) if conn.dialect.name == "postgresql" else None
    if generation is None:
        generation = store.current_generation(conn, for_staging=True)
        store.stage(conn, {**values, "generation": generation})
    key = (str(conn.engine.url), generation)
    with _enqueued_lock:
        known = key in _enqueued
    if not known:
        work.enqueue(conn, kind=INGEST_KIND, payload={"generation": generation}, now=now,
                     dedupe_key=f"{INGEST_KIND}:{generation}", max_attempts=50)
        after_commit(conn, lambda: _remember(key))


def _remember(generation: tuple[str, int]) -> None:
    with _enqueued_lock:
        if len(_enqueued) > 1000:
            _enqueued.clear()
        _enqueued.add(generation)


def check_profile_ids(conn: Connection, account_id: str, entries: Sequence[IntakeEntry]) -> None:
    """A profile given by id must exist in the account (404 otherwise)."""
    wanted = {e.profile_id for e in entries if e.profile_id}
    if not wanted:
        return
    missing = sorted(wanted - profiles.get_profile_ids_existing(conn, account_id, wanted))
    if missing:
        raise errors.not_found(f"A profile with id '{missing[0]}' does not exist.")


def create_bulk_job(conn: Connection, *, account_id: str, job_id: str, total: int, now: datetime) -> None:
    store.insert_bulk_job(conn, {"id": job_id, "account_id": account_id, "status": "queued", "total_count": total,
                                 "completed_count": 0, "failed_count": 0, "created": now})


# --- intake log (embedded SQLite servers) ---------------------------------------------------------


class LoggedIntake(msgspec.Struct, array_like=True, frozen=True):
    """One intake log record: what a staging row holds for one accepted request."""

    account_id: str
    event_count: int
    entries: list[IntakeEntry]
    job_id: str | None = None  # a bulk request's job, recorded by the drain with its outcome
    received: int = 0  # unix microseconds


_logged_encoder = msgspec.msgpack.Encoder()
_logged_decoder = msgspec.msgpack.Decoder(LoggedIntake)
# This process's intake log writer per SQLite database file (no file, no log: the None entry).
_log_writers: dict[str | None, intake_log.IntakeLogWriter | None] = {None: None}


def log_directory(db: Any) -> Path | None:
    """Where `db`'s intake log lives; None when there is none (PostgreSQL, in-memory SQLite): API
    processes may then run on other machines, and only the database is shared."""
    return intake_log.log_directory(db.sqlite_path) if db.sqlite_path else None


def log_accepted(db: Any, account_id: str, entries: Sequence[IntakeEntry], *, received: datetime,
                 job_id: str | None = None) -> bool:
    """Append accepted entries to this process's intake log; False if `db` has no log or the append
    failed (the caller stages them in the database instead)."""
    try:
        writer = _log_writers[db.sqlite_path]
    except KeyError:
        with _writers_lock:
            directory = intake_log.log_directory(db.sqlite_path)
            writer = _log_writers.setdefault(db.sqlite_path, intake_log.IntakeLogWriter(directory))
    if writer is None:
        return False
    record = LoggedIntake(account_id, sum(len(e.events) for e in entries), list(entries), job_id,
                          int(received.timestamp() * 1_000_000))
    try:
        writer.append(_logged_encoder.encode(record))
    except OSError:
        return False
    return True


def decode_logged(payload: bytes) -> LoggedIntake:
    return _logged_decoder.decode(payload)


# --- group commit ----------------------------------------------------------------------------------


@dataclass
class _Pending:
    account_id: str
    entries: Sequence[IntakeEntry]
    received: datetime
    done: asyncio.Future[None]


class StagingWriter:
    """Group commit for single accepted events: requests hand their entries to one writer thread,
    which stages everything that queued up meanwhile in one transaction (one staging row per
    account) and then completes each request's future. A request is answered only after its
    transaction committed, so 202 still means durably stored; the per-request cost of BEGIN/COMMIT
    (and of SQLite's single write lock) is shared by the whole batch."""

    MAX_BATCH = 1000
    # Writers with a transaction in flight at once: while one batch waits for its commit (a round
    # trip and a WAL flush on PostgreSQL), the next batch is already being written.
    WRITERS = 3

    def __init__(self, db: Any) -> None:
        self.db = db
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    async def stage(self, account_id: str, entries: Sequence[IntakeEntry], received: datetime) -> None:
        """Wait (without blocking the event loop) until the entries are committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._cond:
            self._pending.append(_Pending(account_id, entries, received, done))
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            if len(self._threads) < self.WRITERS:
                thread = threading.Thread(target=self._run, name="menura-event-staging", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._cond.notify()
        await done

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch = self._pending[:self.MAX_BATCH]
                del self._pending[:self.MAX_BATCH]
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        by_account: dict[str, list[_Pending]] = {}
        for item in batch:
            by_account.setdefault(item.account_id, []).append(item)
        error: BaseException | None = None
        try:
            with self.db.write() as conn:
                for account_id, items in by_account.items():
                    stage(conn, account_id=account_id, entries=[e for item in items for e in item.entries],
                          now=max(item.received for item in items))
        except Exception as exc:  # every request of the batch learns it was not stored
            error = exc
        # One wake-up per event loop for the whole batch, not one per request.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for item in batch:
            by_loop.setdefault(item.done.get_loop(), []).append(item.done)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


_writers: dict[int, StagingWriter] = {}


def staging_writer(db: Any) -> StagingWriter:
    """The process's writer for one database."""
    with _writers_lock:
        writer = _writers.get(id(db))
        if writer is None or writer.db is not db:
            writer = _writers[id(db)] = StagingWriter(db)
        return writer
