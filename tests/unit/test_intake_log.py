"""The intake log: records framed and read back, cut-short tails, sealed segments, and the drain
that expands each record exactly once (SQLite file databases only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

import menura.engine.event_ingest as ingest
import menura.store.schema  # noqa: F401  (registers every table on the metadata)
from menura.clock import SystemClock
from menura.domain import accounts, event_intake
from menura.store import events as event_store
from menura.store import intake_log
from menura.store.db import Database
from menura.store.event_tables import events, intake_log_offsets
from menura.store.migrate import upgrade

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    writer = intake_log.IntakeLogWriter(tmp_path)
    payloads = [f"record {n}".encode() * (n + 1) for n in range(50)]
    for payload in payloads:
        writer.append(payload)
    (segment,) = intake_log.segments(tmp_path)
    records, cut = intake_log.read_records(tmp_path, segment, 0)
    assert [r.payload for r in records] == payloads and not cut
    # Reading on from a record's end gives exactly the records after it.
    later, _ = intake_log.read_records(tmp_path, segment, records[9].end)
    assert [r.payload for r in later] == payloads[10:]
    # A chunk smaller than one record still yields that record whole.
    one, _ = intake_log.read_records(tmp_path, segment, records[48].end, max_bytes=8)
    assert [r.payload for r in one] == [payloads[49]]
    writer.close()


def test_a_cut_short_record_is_reported_not_returned(tmp_path: Path) -> None:
    writer = intake_log.IntakeLogWriter(tmp_path)
    writer.append(b"complete")
    writer.close()
    (segment,) = intake_log.segments(tmp_path)
    whole = intake_log.frame(b"never acknowledged")
    with open(tmp_path / segment, "ab") as handle:
        handle.write(whole[: len(whole) - 3])
    records, cut = intake_log.read_records(tmp_path, segment, 0)
    assert [r.payload for r in records] == [b"complete"] and cut
    # Same bytes with a wrong checksum: also not a record.
    with open(tmp_path / segment, "ab") as handle:
        handle.write(b"xyz")
    corrupt = bytearray((tmp_path / segment).read_bytes())
    corrupt[-1] ^= 0xFF
    (tmp_path / segment).write_bytes(bytes(corrupt))
    records, cut = intake_log.read_records(tmp_path, segment, 0)
    assert [r.payload for r in records] == [b"complete"] and cut


def test_a_segment_is_sealed_once_its_writer_lets_go(tmp_path: Path) -> None:
    writer = intake_log.IntakeLogWriter(tmp_path, segment_bytes=64)
    writer.append(b"a" * 40)
    (first,) = intake_log.segments(tmp_path)
    with intake_log.sealed(tmp_path, first) as is_sealed:
        assert not is_sealed
    writer.append(b"b" * 40)  # over the segment size: the next append rotates
    writer.append(b"c")
    first_now, second = intake_log.segments(tmp_path)
    assert first_now == first
    with intake_log.sealed(tmp_path, first) as is_sealed:
        assert is_sealed
    with intake_log.sealed(tmp_path, second) as is_sealed:
        assert not is_sealed
    writer.close()
    with intake_log.sealed(tmp_path, second) as is_sealed:
        assert is_sealed


# --- the drain ------------------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'menura.db'}")
    upgrade(db)
    account_id = accounts.create_account(db, NOW, name="intake").account_id
    yield db, account_id
    event_intake._log_writers.pop(db.sqlite_path, None)
    db.dispose()


def entry(email: str, n: int) -> event_intake.IntakeEntry:
    event = event_intake.IntakeEvent(metric="Viewed Product", service="api", properties={"n": n},
                                     time=int(NOW.timestamp()) + n, value=None, currency=None, unique_id=f"u{n}")
    return event_intake.IntakeEntry(index=0, profile_id=None, profile={"email": email}, events=[event])


def event_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_logged_events_are_expanded_exactly_once(database) -> None:
    db, account_id = database
    for n in range(2500):  # more than one drain batch
        assert event_intake.log_accepted(db, account_id, [entry(f"s{n % 40}@example.com", n)], received=NOW)
    assert ingest.drain_intake_log(db, SystemClock()) == 2500
    assert event_count(db) == 2500
    # Nothing is read twice; the live segment stays until its writer lets it go.
    assert ingest.drain_intake_log(db, SystemClock()) == 0
    directory = event_intake.log_directory(db)
    assert directory is not None and len(intake_log.segments(directory)) == 1
    event_intake.log_accepted(db, account_id, [entry("late@example.com", 9999)], received=NOW)
    event_intake._log_writers[db.sqlite_path].close()  # type: ignore[union-attr]
    assert ingest.drain_intake_log(db, SystemClock()) == 1
    assert event_count(db) == 2501
    assert intake_log.segments(directory) == []
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(intake_log_offsets)).scalar_one() == 0


def test_a_failed_batch_is_read_again(database) -> None:
    db, account_id = database
    event_intake.log_accepted(db, account_id, [entry("a@example.com", 1)], received=NOW)

    def boom(*_args: object) -> str:
        raise RuntimeError("database went away")

    ingest.set_profile_resolver(boom)
    try:
        with pytest.raises(RuntimeError):
            ingest.drain_intake_log(db, SystemClock())
    finally:
        ingest.set_profile_resolver(None)
    assert event_count(db) == 0
    assert ingest.drain_intake_log(db, SystemClock()) == 1 and event_count(db) == 1


def test_what_a_killed_process_appended_is_expanded(database, tmp_path: Path) -> None:
    """Records appended by a process that then dies with SIGKILL (no clean-up at all) are all
    there; a record it was cut off in the middle of is dropped with its sealed segment."""
    db, account_id = database
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import UTC, datetime
        from menura.domain import event_intake
        from menura.store import intake_log
        from menura.store.db import Database
        from tests.unit.test_intake_log import entry
        db = Database({str(db.url)!r})
        for n in range(300):
            assert event_intake.log_accepted(db, {account_id!r}, [entry(f"k{{n % 9}}@example.com", n)],
                                            received=datetime.now(UTC))
        directory = event_intake.log_directory(db)
        (segment,) = intake_log.segments(directory)
        with open(directory / segment, "ab") as handle:  # half a record, as a crash mid-write leaves
            handle.write(intake_log.frame(b"x" * 100)[:50])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert result.returncode == -signal.SIGKILL
    assert ingest.drain_intake_log(db, SystemClock()) == 300
    assert event_count(db) == 300
    directory = event_intake.log_directory(db)
    assert directory is not None and intake_log.segments(directory) == []


def test_a_logged_bulk_request_gets_its_job_with_the_outcome(database) -> None:
    db, account_id = database
    good = entry("good@example.com", 1)
    bad = event_intake.IntakeEntry(index=1, profile_id=None, profile={"email": "not an email"},
                                   events=[entry("x@example.com", 2).events[0]])
    assert event_intake.log_accepted(db, account_id, [good, bad], received=NOW, job_id="job-1")
    assert ingest.drain_intake_log(db, SystemClock()) == 2
    with db.read() as conn:
        job = event_store.get_bulk_job(conn, account_id, "job-1")
    assert job is not None and job.status == "complete" and job.created == NOW
    assert (job.total_count, job.completed_count, job.failed_count) == (2, 1, 1)
    assert job.errors[0]["index"] == 1
    assert event_count(db) == 1


def test_a_deletion_request_also_deletes_events_still_in_the_log(database) -> None:
    """The events were accepted before the request: the job expands them first, then deletes the
    profile with them (otherwise a later drain would bring the profile back)."""
    import menura.engine.data_privacy  # noqa: F401  (registers the deletion handler)
    from menura.domain import profiles as profile_rules
    from menura.store import work
    from menura.store.profile_tables import profiles
    from menura.worker import Worker

    db, account_id = database
    for n in range(3):
        assert event_intake.log_accepted(db, account_id, [entry("forget-me@example.com", n)], received=NOW)
    with db.write() as conn:
        work.enqueue(conn, kind=profile_rules.DELETE_PROFILES_KIND, payload={"email": "forget-me@example.com"},
                     now=NOW, account_id=account_id)
    Worker(db, SystemClock(), kinds=[profile_rules.DELETE_PROFILES_KIND]).run_once()
    assert ingest.drain_intake_log(db, SystemClock()) == 0
    assert event_count(db) == 0
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 0
