"""The ingest worker: expands staged (accepted) events in batches, exactly once.

Each batch — a few staging rows, up to BATCH_EVENTS events — is one transaction: profiles found
or created and updated, metrics found or created, events inserted with unique_id
de-duplication, properties discovered, bulk jobs' outcomes recorded, the staging rows deleted and
the work item's progress checkpointed. A worker killed mid-batch leaves the staging rows in place
for the retry; nothing is doubled.

An entry whose profile cannot be resolved (bad identifiers, a profile id that does not exist) is
reported in its bulk job and skipped; the batch's other entries are recorded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from menura.clock import Clock
from menura.domain import event_intake, profiles
from menura.domain import events as event_rules
from menura.domain.event_intake import IntakeEntry
from menura.jsonapi.errors import ApiError
from menura.settings import get_settings
from menura.store import events as store
from menura.store import intake_log, server_state
from menura.store import profiles as profile_store
from menura.store.work import WorkItem
from menura.worker import WorkContext, idle_poller, work_handler

log = logging.getLogger(__name__)

BATCH_EVENTS = 1000

# (conn, account_id, entry, now) -> profile id; raises ApiError (or LookupError) for a bad entry.
ProfileResolver = Callable[[Connection, str, IntakeEntry, datetime], str]


@dataclass
class JobOutcome:
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


# Batches expanded at once on PostgreSQL, where they are taken with SKIP LOCKED: one batch's Python
# work overlaps another's statements (a single drain waited on the database ~45% of its time).
# SQLite has one writer, so there the drain is one batch at a time.
PARALLEL_BATCHES = 2


@work_handler(event_intake.INGEST_KIND)
def drain(ctx: WorkContext, item: WorkItem) -> None:
    generation = int(item.payload["generation"])
    progress = dict(item.progress or {})
    progress.setdefault("events", 0)
    if not progress.get("closed"):
        with ctx.db.write() as conn:
            store.close_generation(conn, generation)
            progress["closed"] = True
            ctx.checkpoint(conn, progress)
    counting = threading.Lock()

    def expand_batches(checkpoints: bool) -> None:
        on_commit = (lambda conn: ctx.checkpoint(conn, progress)) if checkpoints else None
        while not ctx.stopping:
            processed = drain_batch(ctx.db, generation, ctx.now(), on_commit=on_commit)
            if processed == 0:
                return
            with counting:
                progress["events"] += processed

    lanes = PARALLEL_BATCHES if ctx.db.dialect == "postgresql" else 1
    with ThreadPoolExecutor(lanes - 1) if lanes > 1 else contextlib.nullcontext() as pool:
        others = [pool.submit(expand_batches, False) for _ in range(lanes - 1)] if pool else []
        expand_batches(True)  # this lane renews the lease
        for other in others:
            other.result()
    with ctx.db.write() as conn:
        if ctx.stopping:
            ctx.release(conn, progress)
        else:
            ctx.complete(conn)


def drain_batch(db: Any, generation: int, now: datetime,
                on_commit: Callable[[Connection], None] | None = None) -> int:
    """Expand one batch of staged rows of generations <= `generation`; returns the events seen."""
    def expand_staged(conn: Connection, careful: bool) -> int:
        rows = store.take_staged(conn, up_to_generation=generation, max_events=BATCH_EVENTS)
        if not rows:
            return 0
        count = _expand(conn, [(row, event_intake.decode_entries(row.payload)) for row in rows], now,
                        careful=careful)
        store.delete_staged(conn, [row.id for row in rows])
        if on_commit is not None:
            on_commit(conn)
        return count

    return _in_transaction(db, expand_staged)


def _in_transaction(db: Any, expand: Callable[[Connection, bool], int]) -> int:
    try:
        with db.write() as conn:
            return expand(conn, False)
    except DBAPIError:
        # A statement failed mid-batch (e.g. a profile identifier conflict raced with another
        # writer): redo the batch with a savepoint per entry, so only the culprit is rejected.
        log.warning("ingest batch failed, retrying entry by entry", exc_info=True)
        with db.write() as conn:
            return expand(conn, True)


def _expand(conn: Connection, staged: Sequence[tuple[Any, list[IntakeEntry]]], now: datetime, *,
            careful: bool) -> int:
    """Record the entries of staged rows (`account_id`, `job_id`); finish their bulk jobs."""
    by_account: dict[str, list[tuple[Any, IntakeEntry]]] = defaultdict(list)
    for row, entries in staged:
        for entry in entries:
            by_account[row.account_id].append((row, entry))
    outcomes: dict[str, JobOutcome] = defaultdict(JobOutcome)
    total = 0
    for account_id, items in by_account.items():
        total += _record_account(conn, account_id, items, now, outcomes, careful=careful)
    for row, _entries in staged:
        if row.job_id is not None:
            outcome = outcomes[row.job_id]
            store.finish_bulk_job(conn, row.job_id, completed=outcome.completed, failed=outcome.failed,
                                  errors=outcome.errors, now=now)
    return max(total, 1)


# --- intake log (embedded SQLite servers) ------------------------------------------------------------


@dataclass(slots=True)  # not frozen: one is made per record, and a frozen __init__ costs more
class _LoggedRow:
    """An intake log record in the shape of a staging row."""

    account_id: str
    job_id: str | None
    event_count: int
    received: datetime


@idle_poller
def drain_intake_log(db: Any, clock: Clock) -> int:
    """Expand everything appended to the intake log so far; returns the events seen."""
    directory = event_intake.log_directory(db)
    if directory is None or not directory.exists():
        return 0
    total = 0
    while (count := _in_transaction(db, lambda conn, careful: _expand_logged(conn, directory, clock.now(), careful))):
        total += count
    _remove_drained_segments(db, directory)
    return total


def _expand_logged(conn: Connection, directory: Path, now: datetime, careful: bool) -> int:
    """One batch of records (about BATCH_EVENTS events) from the segments, oldest first, and the
    new offsets, in one transaction: a record is expanded exactly once."""
    offsets = store.intake_log_offsets_for_update(conn)
    rows: list[tuple[_LoggedRow, list[IntakeEntry]]] = []
    moved: dict[str, int] = {}
    events = 0
    for segment in intake_log.segments(directory):
        start = offsets.get(segment, 0)
        if events >= BATCH_EVENTS or intake_log.size_of(directory, segment) <= start:
            continue
        records, _cut = intake_log.read_records(directory, segment, start)
        for record in records:
            if events >= BATCH_EVENTS:  # full: the next record waits for the next batch, undecoded
                break
            logged = event_intake.decode_logged(record.payload)
            if rows and events + logged.event_count > BATCH_EVENTS:
                break
            rows.append((_LoggedRow(logged.account_id, logged.job_id, logged.event_count,
                                    datetime.fromtimestamp(logged.received / 1_000_000, UTC)), logged.entries))
            events += logged.event_count
            moved[segment] = record.end
    if not rows:
        return 0
    for row, _entries in rows:
        if row.job_id is not None:  # the job row a database-staged bulk request gets when accepted
            event_intake.create_bulk_job(conn, account_id=row.account_id, job_id=row.job_id,
                                         total=row.event_count, now=row.received)
    count = _expand(conn, rows, now, careful=careful)
    for segment, offset in moved.items():
        store.set_intake_log_offset(conn, segment, offset)
    return count


def _remove_drained_segments(db: Any, directory: Path) -> None:
    """Delete sealed segments with nothing left to read (a record cut short by a crash was never
    acknowledged), then their offsets."""
    with db.read() as conn:
        offsets = store.intake_log_offsets_for_update(conn)
    present = intake_log.segments(directory)
    gone = [segment for segment in offsets if segment not in present]
    for segment in present:
        start = offsets.get(segment, 0)
        with intake_log.sealed(directory, segment) as is_sealed:
            # Looked at only once sealed: until then its writer may still add records.
            if not is_sealed:
                continue
            size = intake_log.size_of(directory, segment)
            if size > start and intake_log.read_records(directory, segment, start)[0]:
                continue  # records still to expand (written after this drain looked)
            if size > start:
                log.warning("intake log %s: dropped %d bytes of a record cut short by a crash", segment, size - start)
            intake_log.remove(directory, segment)
            gone.append(segment)
    if gone:
        with db.write() as conn:
            store.forget_intake_log_segments(conn, gone)
    intake_log.remove_stale_temporaries(directory)


def _record_account(conn: Connection, account_id: str, items: Sequence[tuple[Any, IntakeEntry]], now: datetime,
                    outcomes: dict[str, JobOutcome], *, careful: bool) -> int:
    created: set[str] = set()
    resolved = _resolve_profiles(conn, account_id, [entry for _row, entry in items], now, careful=careful,
                                 created=created)
    batch: list[event_rules.NewEvent] = []
    count = 0
    for row, entry in items:
        count += len(entry.events)
        outcome = outcomes[row.job_id] if row.job_id is not None else None
        profile_id = resolved.get(_profile_key(entry))
        if not isinstance(profile_id, str):
            _reject(outcome, entry, profile_id or LookupError("profile not resolved"), row.job_id)
            continue
        for ev in entry.events:
            batch.append(event_rules.NewEvent(
                profile_id=profile_id, metric_name=ev.metric, properties=ev.properties,
                time=datetime.fromtimestamp(ev.time, UTC), value=ev.value, value_currency=ev.currency,
                unique_id=ev.unique_id, service=ev.service, backfill=ev.backfill))
        if outcome is not None:
            outcome.completed += len(entry.events)
    event_rules.record_events(conn, account_id, batch, now, new_profiles=created)
    return count


def _profile_key(entry: IntakeEntry) -> bytes:
    return msgspec.msgpack.encode((entry.profile_id, entry.profile, entry.meta, entry.client))


def _resolve_profiles(conn: Connection, account_id: str, entries: Sequence[IntakeEntry], now: datetime, *,
                      careful: bool, created: set[str]) -> dict[bytes, str | Exception]:
    """Profile id (or the error that rejects it) per distinct profile payload of the batch.

    The common shape, one identifier and nothing else ("this email did that"), is looked up for the
    whole batch in one query per identifier kind; a profile found that way has nothing to update.
    Everything else, and every profile not found, goes through the profiles area's resolve_profile.
    Profiles created by the one insert are added to `created`.
    """
    out: dict[bytes, str | Exception] = {}
    pending: dict[bytes, tuple[IntakeEntry, Any]] = {}
    by_identifier: dict[str, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
    custom = _resolver is not None
    for entry in entries:
        key = _profile_key(entry)
        if key in out or key in pending:
            continue
        if custom:
            pending[key] = (entry, None)
            continue
        try:
            data = _profile_input(key, entry)
        except ApiError as exc:
            out[key] = exc
            continue
        pending[key] = (entry, data)
        single = _single_identifier(data)
        if single is not None:
            by_identifier[single[0]][single[1]].append(key)
    if by_identifier:
        created.update(_resolve_by_identifier(conn, account_id, by_identifier, pending, out, now))
    resolve = profile_resolver()
    for key, (entry, data) in pending.items():
        try:
            if careful:
                with conn.begin_nested():
                    out[key] = _resolve_one(conn, account_id, entry, data, now, resolve)
            else:
                out[key] = _resolve_one(conn, account_id, entry, data, now, resolve)
        except (ApiError, LookupError) as exc:
            out[key] = exc
        except DBAPIError as exc:
            if not careful:
                raise
            out[key] = exc
    return out


# Validated inputs by payload: validation (email and phone parsing) is a pure function of the payload
# and the same customers come back batch after batch.
_inputs: OrderedDict[bytes, Any] = OrderedDict()
_INPUTS_MAX = 50_000


def _profile_input(key: bytes, entry: IntakeEntry) -> Any:
    key = key + (b"\x01" if entry.normalized else b"\x00")  # the two kinds are built differently
    data = _inputs.get(key)
    if data is None:
        if entry.normalized:  # one identifier, validated and normalized when the request was accepted
            ((name, value),) = entry.profile.items()
            data = profiles.ProfileInput(**{name: value}, given=frozenset({name}))
        else:
            data = profiles.profile_input_from_attributes(dict(entry.profile), meta=entry.meta,
                                                          profile_id=entry.profile_id)
        _inputs[key] = data
        if len(_inputs) > _INPUTS_MAX:
            _inputs.popitem(last=False)
    return data


def _resolve_by_identifier(conn: Connection, account_id: str, by_identifier: dict[str, dict[str, list[bytes]]],
                           pending: dict[bytes, tuple[IntakeEntry, Any]], out: dict[bytes, str | Exception],
                           now: datetime) -> set[str]:
    """Single-identifier profiles, a query per identifier kind: found by the identifier (or, for an
    email, as a profile's additional address), else created together in one insert (their ids are
    returned). What a concurrent writer created first is left to resolve_profile."""
    created: set[str] = set()

    def settle(values: dict[str, list[bytes]], found: dict[str, str]) -> None:
        for value, pid in found.items():
            for key in values.pop(value, []):
                out[key] = pid
                pending.pop(key, None)

    for name, values in by_identifier.items():
        settle(values, profile_store.find_ids_by(conn, account_id, name, list(values)))
        if name == "email" and values:
            settle(values, store.find_ids_by_secondary_email(conn, account_id, list(values)))
        if not values:
            continue
        rows = {value: _new_profile_row(account_id, *pending[keys[0]], now) for value, keys in values.items()}
        inserted = store.insert_new_profiles(conn, list(rows.values()))
        created |= inserted
        settle(values, {value: row["id"] for value, row in rows.items() if row["id"] in inserted})
    return created


def _new_profile_row(account_id: str, entry: IntakeEntry, data: Any, now: datetime) -> dict[str, Any]:
    """A new profile's row with its last event date already set from the entry's events (all of
    which will be recorded: a new profile has none to de-duplicate against); recording them then
    has no date to move, where an update of a just-inserted row would rewrite it and its indexes."""
    row = profiles.new_profile_values(account_id, data, now)
    times = [ev.time for ev in entry.events]
    row["last_event_date"] = datetime.fromtimestamp(max(times), UTC) if times else None
    return row


def _single_identifier(data: Any) -> tuple[str, str] | None:
    """(identifier, value) when the input is exactly one identifier and nothing else."""
    if data.id is not None or data.patch is not None or data.add_emails or data.remove_emails:
        return None
    if len(data.given) != 1:
        return None
    (name,) = data.given
    value = getattr(data, name, None) if name in profiles.IDENTIFIER_FIELDS else None
    return (name, value) if isinstance(value, str) else None


def _resolve_one(conn: Connection, account_id: str, entry: IntakeEntry, data: Any, now: datetime,
                 resolve: ProfileResolver) -> str:
    if data is None or _resolver is not None:
        return resolve(conn, account_id, entry, now)
    profile_id, _created = profiles.resolve_profile(
        conn, account_id=account_id, data=data, now=now, update=True, secret=_server_secret(conn),
        update_identifiers=not entry.client)
    return str(profile_id)


def _reject(outcome: JobOutcome | None, entry: IntakeEntry, exc: Exception, job_id: str | None) -> None:
    detail = exc.detail if isinstance(exc, ApiError) else str(exc)
    if outcome is None:
        log.warning("dropped an accepted event: its profile could not be resolved: %s", detail)
        return
    outcome.failed += len(entry.events)
    if len(outcome.errors) < 1000:
        outcome.errors.append({"index": entry.index, "detail": detail})


# --- profiles --------------------------------------------------------------------------------------

_resolver: ProfileResolver | None = None


def set_profile_resolver(resolver: ProfileResolver | None) -> None:
    """Tests and other areas may replace how an entry's profile is found or created."""
    global _resolver
    _resolver = resolver


def profile_resolver() -> ProfileResolver:
    if _resolver is not None:
        return _resolver
    return _resolve_with_profiles_area


def _resolve_with_profiles_area(conn: Connection, account_id: str, entry: IntakeEntry, now: datetime) -> str:
    data = profiles.profile_input_from_attributes(dict(entry.profile), meta=entry.meta, profile_id=entry.profile_id)
    profile_id, _created = profiles.resolve_profile(
        conn, account_id=account_id, data=data, now=now, update=True, secret=_server_secret(conn),
        update_identifiers=not entry.client)
    return profile_id


def _server_secret(conn: Connection) -> bytes | None:
    """The secret `_kx` exchange ids are signed with (settings first, else the stored one)."""
    configured = get_settings().secret_key
    if configured:
        return configured.encode()
    stored = server_state.get_value(conn, "secret_key")
    return str(stored).encode() if stored else None
