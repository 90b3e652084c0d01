"""Durability proof with real worker processes: a worker killed with SIGKILL in the middle of a long
job loses at most its uncommitted batch, and the next worker finishes the job with every unit done
exactly once. Also: graceful SIGTERM hands the job back at a batch boundary, and two worker
processes sharing a queue run each item exactly once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from menura.store import work
from tests import work_fixtures as wf
from tests.engine_fixtures import scratch_database
from tests.integration.worker_process import WorkerProcesses, wait_for

LEASE_SECONDS = 2.0
UNITS_JOB = {"total": 2000, "batch": 50, "pause": 0.06}  # 40 batches, ~3 s on one worker
WORKER_SETTINGS = {"MENURA_WORK_MODULES": "tests.work_fixtures", "MENURA_WORK_LEASE_SECONDS": str(LEASE_SECONDS),
                   "MENURA_WORKER_POLL_SECONDS": "0.1", "MENURA_CLOCK": "system"}


scratch = scratch_database  # the fixture, on each backend


@pytest.fixture
def workers(scratch, tmp_path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(scratch.url, tmp_path, WORKER_SETTINGS)
    try:
        yield processes
    finally:
        # Before the fixture database goes away (PostgreSQL cannot drop a schema in use).
        processes.kill_all()
        print(processes.logs())


def enqueue(db, kind: str, payload: dict) -> int:
    with db.write() as conn:
        return work.enqueue(conn, kind=kind, payload=payload, now=datetime.now(UTC))


def item_status(db, item_id: int) -> work.WorkItem:
    with db.read() as conn:
        item = work.get(conn, item_id)
    assert item is not None
    return item


def unit_rows(db) -> list[tuple[int, str]]:
    with db.read() as conn:
        return [tuple(row) for row in conn.execute(select(wf.units.c.unit, wf.units.c.worker_id))]


def unit_count(db) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(wf.units)).scalar_one()


def assert_every_unit_exactly_once(db, total: int) -> dict[str, int]:
    rows = unit_rows(db)
    units = sorted(unit for unit, _ in rows)
    assert units == list(range(total)), "units missing or duplicated"
    per_worker: dict[str, int] = {}
    for _, worker_id in rows:
        per_worker[worker_id] = per_worker.get(worker_id, 0) + 1
    return per_worker


def test_killed_worker_job_resumes_without_duplicates_or_gaps(scratch, workers):
    db = scratch.db
    job = enqueue(db, wf.UNITS_KIND, UNITS_JOB)
    first = workers.start()
    wait_for(lambda: unit_count(db) >= 400, 20, workers.logs)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = unit_count(db)
    assert killed_at < UNITS_JOB["total"], "the job finished before the kill; make it slower"
    victim = item_status(db, job)
    assert victim.status == "running" and victim.progress == {"next": killed_at}

    second = workers.start()
    wait_for(lambda: item_status(db, job).status == "done", 20, workers.logs)

    per_worker = assert_every_unit_exactly_once(db, UNITS_JOB["total"])
    # Both workers did part of it, the killed one only whole committed batches.
    assert per_worker[victim.claimed_by] == killed_at
    assert killed_at % UNITS_JOB["batch"] == 0
    assert sum(per_worker.values()) == UNITS_JOB["total"] and len(per_worker) == 2
    assert item_status(db, job).attempts == 2

    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=10) == 0


def test_sigterm_hands_the_job_back_at_a_batch_boundary(scratch, workers):
    db = scratch.db
    job = enqueue(db, wf.UNITS_KIND, UNITS_JOB)
    first = workers.start()
    wait_for(lambda: unit_count(db) >= 400, 20, workers.logs)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    released = item_status(db, job)
    assert (released.status, released.claimed_by, released.attempts) == ("queued", None, 0)
    assert released.progress == {"next": unit_count(db)}

    workers.start()
    # No lease to wait out: the next worker resumes at once.
    wait_for(lambda: item_status(db, job).status == "done", 20, workers.logs)
    assert len(assert_every_unit_exactly_once(db, UNITS_JOB["total"])) == 2
    assert item_status(db, job).attempts == 1


def test_two_workers_share_a_queue_each_item_exactly_once(scratch, workers):
    db = scratch.db
    processes = [workers.start(), workers.start()]
    for process in processes:
        workers.wait_started(process)
    total = 300
    with db.write() as conn:
        now = datetime.now(UTC)
        ids = {work.enqueue(conn, kind=wf.MARK_KIND, payload={"pause": 0.005}, now=now) for _ in range(total)}

    def all_done() -> bool:
        with db.read() as conn:
            return work.queue_depth(conn) == {"queued": 0, "running": 0}

    wait_for(all_done, 30, workers.logs)
    with db.read() as conn:
        marks = list(conn.execute(select(wf.marks.c.item_id, wf.marks.c.worker_id)))
    assert sorted(item_id for item_id, _ in marks) == sorted(ids)
    workers_used = {worker_id for _, worker_id in marks}
    assert len(workers_used) == 2, f"expected both workers to take items, got {workers_used}"
    for process in processes:
        process.send_signal(signal.SIGTERM)
    assert [process.wait(timeout=10) for process in processes] == [0, 0]
