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

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from menura.domain import event_intake, profiles
from menura.domain import events as event_rules
from menura.domain.event_intake import IntakeEntry
from menura.jsonapi.errors import ApiError
from menura.settings import get_settings
from menura.store import events as store
from menura.store import server_state
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler

log = logging.getLogger(__name__)

BATCH_EVENTS = 2000

# (conn, account_id, entry, now) -> profile id; raises ApiError (or LookupError) for a bad entry.
ProfileResolver = Callable[[Connection, str, IntakeEntry, datetime], str]


@dataclass
class JobOutcome:
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


@work_handler(event_intake.INGEST_KIND)
def drain(ctx: WorkContext, item: WorkItem) -> None:
    generation = int(item.payload["generation"])
    progress = dict(item.progress or {})
    if not progress.get("closed"):
        with ctx.db.write() as conn:
            store.close_generation(conn, generation)
            progress["closed"] = True
            ctx.checkpoint(conn, progress)
    while True:
        processed = drain_batch(ctx.db, generation, ctx.now(), on_commit=lambda conn: ctx.checkpoint(conn, progress))
        if processed == 0:
            with ctx.db.write() as conn:
                ctx.complete(conn)
            return
        progress["events"] = progress.get("events", 0) + processed
        if ctx.stopping:
            with ctx.db.write() as conn:
                ctx.release(conn, progress)
            return


def drain_batch(db: Any, generation: int, now: datetime,
                on_commit: Callable[[Connection], None] | None = None) -> int:
    """Expand one batch of staged rows of generations <= `generation`; returns the events seen."""
    try:
        with db.write() as conn:
            count = _drain_in(conn, generation, now, careful=False)
            if count and on_commit is not None:
                on_commit(conn)
            return count
    except DBAPIError:
        # A statement failed mid-batch (e.g. a profile identifier conflict raced with another
        # writer): redo the batch with a savepoint per entry, so only the culprit is rejected.
        log.warning("ingest batch failed, retrying entry by entry", exc_info=True)
        with db.write() as conn:
            count = _drain_in(conn, generation, now, careful=True)
            if count and on_commit is not None:
                on_commit(conn)
            return count


def _drain_in(conn: Connection, generation: int, now: datetime, *, careful: bool) -> int:
    rows = store.take_staged(conn, up_to_generation=generation, max_events=BATCH_EVENTS)
    if not rows:
        return 0
    by_account: dict[str, list[tuple[Any, IntakeEntry]]] = defaultdict(list)
    for row in rows:
        for entry in event_intake.decode_entries(row.payload):
            by_account[row.account_id].append((row, entry))
    outcomes: dict[str, JobOutcome] = defaultdict(JobOutcome)
    total = 0
    for account_id, items in by_account.items():
        total += _record_account(conn, account_id, items, now, outcomes, careful=careful)
    for row in rows:
        if row.job_id is not None:
            outcome = outcomes[row.job_id]
            store.finish_bulk_job(conn, row.job_id, completed=outcome.completed, failed=outcome.failed,
                                  errors=outcome.errors, now=now)
    store.delete_staged(conn, [row.id for row in rows])
    return max(total, 1)


def _record_account(conn: Connection, account_id: str, items: Sequence[tuple[Any, IntakeEntry]], now: datetime,
                    outcomes: dict[str, JobOutcome], *, careful: bool) -> int:
    resolve = profile_resolver()
    batch: list[event_rules.NewEvent] = []
    resolved: dict[bytes, str] = {}
    count = 0
    for row, entry in items:
        count += len(entry.events)
        outcome = outcomes[row.job_id] if row.job_id is not None else None
        key = msgspec.msgpack.encode((entry.profile_id, entry.profile, entry.meta, entry.client))
        profile_id = resolved.get(key)
        if profile_id is None:
            try:
                if careful:
                    with conn.begin_nested():
                        profile_id = resolve(conn, account_id, entry, now)
                else:
                    profile_id = resolve(conn, account_id, entry, now)
            except (ApiError, LookupError, DBAPIError) as exc:
                if isinstance(exc, DBAPIError) and not careful:
                    raise
                _reject(outcome, entry, exc, row.job_id)
                continue
            resolved[key] = profile_id
        for ev in entry.events:
            batch.append(event_rules.NewEvent(
                profile_id=profile_id, metric_name=ev.metric, properties=ev.properties,
                time=datetime.fromtimestamp(ev.time, UTC), value=ev.value, value_currency=ev.currency,
                unique_id=ev.unique_id, service=ev.service, backfill=ev.backfill))
        if outcome is not None:
            outcome.completed += len(entry.events)
    event_rules.record_events(conn, account_id, batch, now)
    return count


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
