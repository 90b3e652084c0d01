"""The ingest pipeline at the database level: staging, generations, batched expansion, failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

import menura.engine.event_ingest as ingest
import menura.store.schema  # noqa: F401  (registers every table on the metadata)
from menura.clock import SystemClock
from menura.domain import accounts, event_intake
from menura.domain import events as event_rules
from menura.jsonapi import errors
from menura.store import events as event_store
from menura.store.event_tables import event_ingest, events, metric_properties
from menura.worker import Worker
from tests.work_fixtures import BACKENDS, open_test_database

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def scratch(request, tmp_path):
    with open_test_database(request.param, tmp_path) as test_db:
        account_id = accounts.create_account(test_db.db, NOW, name="ingest").account_id
        yield test_db.db, account_id
    ingest.set_profile_resolver(None)


def entry(email: str, n: int, *, unique: str | None = None, index: int = 0) -> event_intake.IntakeEntry:
    event = event_intake.IntakeEvent(metric="Placed Order", service="api", properties={"n": n, "Brand": "b"},
                                     time=int(NOW.timestamp()) + n, value=float(n), currency="USD",
                                     unique_id=unique or str(n))
    return event_intake.IntakeEntry(index=index, profile_id=None, profile={"email": email}, events=[event])


def count(db, table) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_staged_events_are_expanded_exactly_once(scratch):
    db, account_id = scratch
    for n in range(30):
        with db.write() as conn:
            event_intake.stage(conn, account_id=account_id, entries=[entry(f"u{n % 7}@example.com", n)], now=NOW)
    # A duplicate unique_id for the same profile and metric is recorded once.
    with db.write() as conn:
        event_intake.stage(conn, account_id=account_id, entries=[entry("u0@example.com", 0)], now=NOW)
    worker = Worker(db, SystemClock())
    assert worker.run_once() >= 1
    assert count(db, events) == 30
    assert count(db, event_ingest) == 0
    assert count(db, metric_properties) == 2
    # More events later: a new generation gets its own drain.
    with db.write() as conn:
        event_intake.stage(conn, account_id=account_id, entries=[entry("late@example.com", 99)], now=NOW)
    assert worker.run_once() == 1
    assert count(db, events) == 31


def test_a_failed_batch_leaves_the_staging_rows_for_the_retry(scratch):
    db, account_id = scratch
    with db.write() as conn:
        event_intake.stage(conn, account_id=account_id, entries=[entry("a@example.com", 1)], now=NOW)
        generation = event_store.current_generation(conn, for_staging=False)

    def boom(conn, account_id, entry, now):
        raise RuntimeError("worker died")

    ingest.set_profile_resolver(boom)
    with pytest.raises(RuntimeError):
        ingest.drain_batch(db, generation, NOW)
    assert count(db, event_ingest) == 1 and count(db, events) == 0
    ingest.set_profile_resolver(None)
    assert ingest.drain_batch(db, generation, NOW) == 1
    assert count(db, event_ingest) == 0 and count(db, events) == 1


def test_bad_entries_are_reported_in_the_job_and_good_ones_recorded(scratch):
    db, account_id = scratch
    real = ingest.profile_resolver()

    def picky(conn, account_id, entry, now):
        if entry.profile["email"].startswith("bad"):
            raise errors.invalid("no such profile")
        return real(conn, account_id, entry, now)

    ingest.set_profile_resolver(picky)
    entries = [entry("good@example.com", 1, index=0), entry("bad@example.com", 2, index=1)]
    with db.write() as conn:
        event_intake.create_bulk_job(conn, account_id=account_id, job_id="job-1", total=2, now=NOW)
        event_intake.stage(conn, account_id=account_id, entries=entries, now=NOW, job_id="job-1")
    Worker(db, SystemClock()).run_once()
    with db.read() as conn:
        job = event_store.get_bulk_job(conn, account_id, "job-1")
    assert (job.status, job.completed_count, job.failed_count) == ("complete", 1, 1)
    assert job.errors == [{"index": 1, "detail": "no such profile"}]
    assert count(db, events) == 1


def test_record_event_calls_hooks_and_deduplicates(scratch):
    db, account_id = scratch
    seen = []
    event_rules.EVENT_HOOKS.append(lambda conn, a, p, m: seen.append((a, p, m)))
    try:
        with db.write() as conn:
            first = event_rules.record_event(conn, account_id=account_id, profile_id="P1", metric_name="Subscribed",
                                             properties={"list": "x"}, time=NOW, now=NOW, unique_id="u")
            again = event_rules.record_event(conn, account_id=account_id, profile_id="P1", metric_name="Subscribed",
                                             properties={"list": "y"}, time=NOW, now=NOW, unique_id="u")
            other = event_rules.record_event(conn, account_id=account_id, profile_id="P1", metric_name="Subscribed",
                                             properties={}, time=NOW, now=NOW)
    finally:
        event_rules.EVENT_HOOKS.pop()
    assert first == again != other
    assert len(seen) == 2 and seen[0][1] == "P1"


def bulk_entry(email: str, times: list[int], *, index: int = 0) -> event_intake.IntakeEntry:
    """One profile's events; the same time twice means the same default unique_id (a duplicate)."""
    evs = [event_intake.IntakeEvent(metric="Viewed Product", service="api", properties={"t": t}, time=t,
                                    value=None, currency=None, unique_id=str(t)) for t in times]
    return event_intake.IntakeEntry(index=index, profile_id=None, profile={"email": email}, events=evs)


def test_a_large_batch_of_new_and_known_profiles_is_recorded_once_each(scratch):
    """Enough new profiles for the bulk paths (COPY on PostgreSQL, the driver's cursor on SQLite):
    duplicates inside the batch and against recorded events are dropped, new profiles get their
    last event date and stored columns read back as through the profiles area."""
    db, account_id = scratch
    base = int(NOW.timestamp())
    with db.write() as conn:
        event_intake.stage(conn, account_id=account_id, entries=[bulk_entry("known@example.com", [base])], now=NOW)
    Worker(db, SystemClock()).run_once()
    entries = [bulk_entry(f"new{n}@example.com", [base + n, base + n, base + n + 5], index=n)
               for n in range(event_store.COPY_THRESHOLD + 10)]
    entries.append(bulk_entry("known@example.com", [base, base + 1], index=len(entries)))
    with db.write() as conn:
        event_intake.stage(conn, account_id=account_id, entries=entries, now=NOW)
    Worker(db, SystemClock()).run_once()
    new_profiles = event_store.COPY_THRESHOLD + 10
    assert count(db, events) == 1 + 2 * new_profiles + 1
    from menura.store.profile_tables import profiles

    with db.read() as conn:
        rows = {row.email: row for row in conn.execute(select(profiles))}
    assert len(rows) == new_profiles + 1
    sample = rows["new3@example.com"]
    assert sample.last_event_date == datetime.fromtimestamp(base + 3 + 5, UTC)
    assert (sample.properties, sample.location, sample.email_consent) == ({}, None, "NEVER_SUBSCRIBED")
    assert sample.created == sample.updated and sample.created.tzinfo is not None
    assert rows["known@example.com"].last_event_date == datetime.fromtimestamp(base + 1, UTC)
    with db.read() as conn:  # stored as SQLAlchemy's JSON type stores None: JSON null, not SQL NULL
        assert conn.execute(select(func.count()).select_from(profiles).where(profiles.c.location.is_(None))
                            ).scalar_one() == 0


def test_many_batches_are_drained_exactly_once(scratch):
    """Several batches of one generation (two at once on PostgreSQL) record every event once."""
    db, account_id = scratch
    base = int(NOW.timestamp())
    for r in range(12):
        entries = [bulk_entry(f"p{r}-{n}@example.com", [base + k for k in range(10)], index=n) for n in range(30)]
        with db.write() as conn:
            event_intake.stage(conn, account_id=account_id, entries=entries, now=NOW)
    assert Worker(db, SystemClock()).run_once() >= 1
    assert count(db, events) == 12 * 30 * 10
    assert count(db, event_ingest) == 0


def test_profiles_are_analyzed_after_a_burst_on_postgresql(scratch):
    db, account_id = scratch
    if db.dialect != "postgresql":
        pytest.skip("SQLite's planner needs no statistics for these lookups")
    base = int(NOW.timestamp())
    entries = [bulk_entry(f"burst{n}@example.com", [base], index=n) for n in range(1200)]
    with db.write() as conn:
        event_intake.stage(conn, account_id=account_id, entries=entries, now=NOW)
    Worker(db, SystemClock()).run_once()
    with db.read() as conn:
        estimate = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'profiles'::regclass").scalar()
    assert estimate >= 1000
