"""A bulk import that fails mid-job resumes at its last committed batch: every row is applied exactly
once, on SQLite and PostgreSQL (the worker runtime driven directly, with a controlled clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

import menura.store.schema  # noqa: F401  (every table in the metadata the scratch database creates)
from menura.domain import accounts
from menura.domain import lists as list_rules
from menura.domain import profile_jobs as job_rules
from menura.engine import profile_jobs as engine
from menura.store import profile_jobs as job_store
from menura.store.list_tables import list_members, profile_bulk_job_errors, profile_bulk_job_profiles
from menura.store.profile_tables import profiles
from menura.worker import Worker
from tests.engine_fixtures import ControlledClock, scratch_db

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
db = scratch_db  # the fixture, on each backend


def count(db, table, *where) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_import_resumes_after_a_failed_batch_without_doing_a_row_twice(db, monkeypatch):
    account_id = accounts.create_account(db, T0, name="Resume").account_id
    list_row = list_rules.create_list(db, account_id, T0, name="All", opt_in_process="single_opt_in")
    rows = [{"attributes": {"email": f"p{i}@example.com", "properties": {"n": i}}, "id": None, "meta": None}
            for i in range(45)]
    rows[7]["attributes"]["email"] = "broken"
    job = job_rules.create_import_job(db, account_id, T0, rows=rows, list_ids=[list_row.id])
    monkeypatch.setattr(engine, "IMPORT_BATCH", 10)

    # The third batch's transaction fails after its rows were written: all of it must roll back.
    calls = {"n": 0}
    real_add_counts = job_store.add_counts

    def flaky_add_counts(conn, job_id, **counts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        real_add_counts(conn, job_id, **counts)

    monkeypatch.setattr(job_store, "add_counts", flaky_add_counts)
    clock = ControlledClock(T0)
    worker = Worker(db, clock, kinds=[job_rules.IMPORT_KIND], lease_seconds=30)
    assert worker.run_once() == 1
    with db.read() as conn:
        halfway = job_store.get_job_by_id(conn, job.id)
    assert (halfway.status, halfway.completed_count, halfway.failed_count) == ("processing", 19, 1)
    assert count(db, profiles, profiles.c.account_id == account_id) == 19

    clock.current += timedelta(seconds=10)  # past the retry backoff
    assert worker.run_once() == 1
    with db.read() as conn:
        done = job_store.get_job_by_id(conn, job.id)
        leftover_input = job_store.job_input(conn, job.id)
    assert (done.status, done.total_count, done.completed_count, done.failed_count) == ("complete", 45, 44, 1)
    assert done.completed_at is not None and leftover_input == []
    assert count(db, profiles, profiles.c.account_id == account_id) == 44
    assert count(db, profile_bulk_job_profiles, profile_bulk_job_profiles.c.job_id == job.id) == 44
    assert count(db, profile_bulk_job_errors, profile_bulk_job_errors.c.job_id == job.id) == 1
    assert count(db, list_members, list_members.c.list_id == list_row.id) == 44
