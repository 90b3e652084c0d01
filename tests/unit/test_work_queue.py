"""The durable work queue (menura.store.work) and the worker runtime (menura.worker), on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from menura.clock import VirtualClock
from menura.store import server_state, work
from menura.store.tables import work_items
from menura.worker import PURGE_KIND, LostClaim, WorkContext, Worker, load_handler_modules, work_handler
from tests import work_fixtures as wf

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    virtual = False

    def __init__(self, now: datetime = T0) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


@pytest.fixture(params=wf.BACKENDS)
def scratch(request, tmp_path):
    with wf.open_test_database(request.param, tmp_path) as scratch_db:
        yield scratch_db


@pytest.fixture
def db(scratch):
    return scratch.db


def enqueue(db, kind="k", now=T0, **kwargs) -> int:
    with db.write() as conn:
        return work.enqueue(conn, kind=kind, payload=kwargs.pop("payload", {"n": 1}), now=now, **kwargs)


def get(db, item_id):
    with db.read() as conn:
        return work.get(conn, item_id)


def count_items(db) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(work_items)).scalar_one()


# --- queue -------------------------------------------------------------------------------------


def test_enqueue_claim_complete(db):
    item_id = enqueue(db, payload={"hello": "world"})
    item = get(db, item_id)
    assert (item.status, item.attempts, item.payload, item.run_at) == ("queued", 0, {"hello": "world"}, T0)

    [claimed] = work.claim(db, worker_id="w1", now=T0, lease_seconds=30)
    assert claimed.id == item_id
    assert (claimed.status, claimed.claimed_by, claimed.attempts) == ("running", "w1", 1)
    assert claimed.lease_until == T0 + timedelta(seconds=30)
    assert work.claim(db, worker_id="w2", now=T0, lease_seconds=30) == []

    with db.write() as conn:
        assert not work.complete(conn, item_id, worker_id="w2", now=T0)
        assert work.complete(conn, item_id, worker_id="w1", now=T0 + timedelta(seconds=1))
        assert not work.complete(conn, item_id, worker_id="w1", now=T0)  # already done
    done = get(db, item_id)
    assert (done.status, done.finished, done.lease_until) == ("done", T0 + timedelta(seconds=1), None)


def test_claim_takes_oldest_first_and_respects_limit_and_kinds(db):
    late = enqueue(db, run_at=T0 - timedelta(minutes=1))
    early = enqueue(db, run_at=T0 - timedelta(minutes=5))
    other = enqueue(db, kind="other")
    claimed = work.claim(db, worker_id="w", now=T0, lease_seconds=30, limit=2, kinds=["k"])
    assert [item.id for item in claimed] == [early, late]
    assert work.claim(db, worker_id="w", now=T0, lease_seconds=30, kinds=[]) == []
    assert [i.id for i in work.claim(db, worker_id="w", now=T0, lease_seconds=30, limit=5)] == [other]


def test_future_items_wait_until_due(db):
    item_id = enqueue(db, run_at=T0 + timedelta(hours=1))
    assert work.claim(db, worker_id="w", now=T0, lease_seconds=30) == []
    assert work.claim(db, worker_id="w", now=T0 + timedelta(minutes=59), lease_seconds=30) == []
    [item] = work.claim(db, worker_id="w", now=T0 + timedelta(hours=1), lease_seconds=30)
    assert item.id == item_id


def test_dedupe_key_returns_existing_item(db):
    first = enqueue(db, dedupe_key="order-1")
    assert enqueue(db, dedupe_key="order-1", payload={"other": True}) == first
    assert enqueue(db, kind="k2", dedupe_key="order-1") != first  # keys are per kind
    assert enqueue(db) != enqueue(db)  # no key: never deduplicated
    assert get(db, first).payload == {"n": 1}
    assert count_items(db) == 4


def test_dedupe_under_concurrent_enqueues(db):
    # Every thread sees no row, then inserts while the others' transactions are still open.
    barrier = threading.Barrier(6)
    ids: list[int] = []

    def enqueue_same() -> None:
        barrier.wait()
        with db.write() as conn:
            ids.append(work.enqueue(conn, kind="k", payload={}, now=T0, dedupe_key="same"))
            time.sleep(0.05)

    threads = [threading.Thread(target=enqueue_same) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert count_items(db) == 1


def test_expired_lease_is_reclaimed_and_old_owner_is_fenced_out(db):
    item_id = enqueue(db)
    work.claim(db, worker_id="dead", now=T0, lease_seconds=10)
    assert work.claim(db, worker_id="w2", now=T0 + timedelta(seconds=10), lease_seconds=10) == []
    [again] = work.claim(db, worker_id="w2", now=T0 + timedelta(seconds=11), lease_seconds=10)
    assert (again.id, again.claimed_by, again.attempts) == (item_id, "w2", 2)
    later = T0 + timedelta(seconds=12)
    with db.write() as conn:
        assert not work.checkpoint(conn, item_id, worker_id="dead", now=later, progress={}, lease_seconds=10)
        assert not work.fail(conn, item_id, worker_id="dead", now=later, error="x")
        assert not work.complete(conn, item_id, worker_id="dead", now=later)
        assert work.complete(conn, item_id, worker_id="w2", now=later)


def test_lease_uses_its_own_clock(db):
    # Due-ness follows `now` (perhaps virtual); the lease follows `lease_now` (real time).
    enqueue(db)
    real = datetime(2020, 1, 1, tzinfo=UTC)
    [item] = work.claim(db, worker_id="w", now=T0, lease_seconds=10, lease_now=real)
    assert item.lease_until == real + timedelta(seconds=10)
    far_virtual_future = T0 + timedelta(days=3)
    assert work.claim(db, worker_id="w2", now=far_virtual_future, lease_seconds=10, lease_now=real) == []


def test_fail_backs_off_exponentially_then_gives_up(db):
    item_id = enqueue(db, max_attempts=3)
    now = T0
    for attempt, delay in ((1, 2), (2, 4)):
        [item] = work.claim(db, worker_id="w", now=now, lease_seconds=30)
        assert item.attempts == attempt
        with db.write() as conn:
            assert work.fail(conn, item_id, worker_id="w", now=now, error=f"boom {attempt}")
        retry = get(db, item_id)
        assert (retry.status, retry.run_at, retry.claimed_by) == ("queued", now + timedelta(seconds=delay), None)
        assert retry.last_error == f"boom {attempt}"
        assert work.claim(db, worker_id="w", now=now + timedelta(seconds=delay - 1), lease_seconds=30) == []
        now += timedelta(seconds=delay)
    work.claim(db, worker_id="w", now=now, lease_seconds=30)
    with db.write() as conn:
        assert work.fail(conn, item_id, worker_id="w", now=now, error="boom 3")
    final = get(db, item_id)
    assert (final.status, final.attempts, final.finished) == ("failed", 3, now)
    assert work.claim(db, worker_id="w", now=now + timedelta(days=1), lease_seconds=30) == []


def test_backoff_is_capped():
    assert work.backoff_delay(1) == timedelta(seconds=2)
    assert work.backoff_delay(3) == timedelta(seconds=8)
    assert work.backoff_delay(10_000) == timedelta(seconds=work.BACKOFF_MAX_SECONDS)


def test_item_whose_workers_keep_dying_is_failed(db):
    item_id = enqueue(db, max_attempts=2)
    work.claim(db, worker_id="w1", now=T0, lease_seconds=10)
    work.claim(db, worker_id="w2", now=T0 + timedelta(seconds=11), lease_seconds=10)
    assert work.claim(db, worker_id="w3", now=T0 + timedelta(seconds=22), lease_seconds=10) == []
    item = get(db, item_id)
    assert (item.status, item.attempts) == ("failed", 2)
    assert "lease expired" in item.last_error


def test_checkpoint_stores_progress_and_renews_lease(db):
    item_id = enqueue(db)
    work.claim(db, worker_id="w", now=T0, lease_seconds=10)
    with db.write() as conn:
        assert work.checkpoint(
            conn, item_id, worker_id="w", now=T0 + timedelta(seconds=8), progress={"next": 50}, lease_seconds=10
        )
    item = get(db, item_id)
    assert item.progress == {"next": 50}
    assert item.lease_until == T0 + timedelta(seconds=18)
    # The original lease end has passed, the renewed one has not.
    assert work.claim(db, worker_id="w2", now=T0 + timedelta(seconds=15), lease_seconds=10) == []
    [resumed] = work.claim(db, worker_id="w2", now=T0 + timedelta(seconds=19), lease_seconds=10)
    assert resumed.progress == {"next": 50}


def test_checkpoint_rolls_back_with_its_transaction(db):
    item_id = enqueue(db)
    work.claim(db, worker_id="w", now=T0, lease_seconds=10)
    with pytest.raises(RuntimeError), db.write() as conn:
        work.checkpoint(conn, item_id, worker_id="w", now=T0, progress={"next": 1}, lease_seconds=10)
        raise RuntimeError("the batch's effects failed")
    assert get(db, item_id).progress is None


def test_release_requeues_without_counting_the_attempt(db):
    item_id = enqueue(db)
    work.claim(db, worker_id="w", now=T0, lease_seconds=10)
    with db.write() as conn:
        assert work.release(conn, item_id, worker_id="w", now=T0 + timedelta(seconds=1), progress={"next": 7})
    item = get(db, item_id)
    assert (item.status, item.attempts, item.progress, item.claimed_by) == ("queued", 0, {"next": 7}, None)
    assert work.claim(db, worker_id="w2", now=T0 + timedelta(seconds=1), lease_seconds=10)


def test_queue_depth_and_next_due_at(db):
    with db.read() as conn:
        assert work.queue_depth(conn) == {"queued": 0, "running": 0}
        assert work.next_due_at(conn) is None
    enqueue(db, run_at=T0 + timedelta(minutes=5))
    enqueue(db, run_at=T0 + timedelta(minutes=1))
    done = enqueue(db, run_at=T0 - timedelta(minutes=1))
    work.claim(db, worker_id="w", now=T0, lease_seconds=30)
    with db.read() as conn:
        assert work.queue_depth(conn) == {"queued": 2, "running": 1}
        assert work.next_due_at(conn) == T0 + timedelta(seconds=30)  # the lease ends first
    with db.write() as conn:
        work.complete(conn, done, worker_id="w", now=T0)
    with db.read() as conn:
        assert work.queue_depth(conn) == {"queued": 2, "running": 0}
        assert work.next_due_at(conn) == T0 + timedelta(minutes=1)


def test_concurrent_claimers_never_share_an_item(db):
    total = 150
    with db.write() as conn:
        expected = {work.enqueue(conn, kind="k", payload={"i": i}, now=T0) for i in range(total)}
    claimed: dict[str, list[int]] = {}

    def drain(worker_id: str) -> None:
        mine = claimed.setdefault(worker_id, [])
        while batch := work.claim(db, worker_id=worker_id, now=T0, lease_seconds=300, limit=3):
            mine.extend(item.id for item in batch)

    threads = [threading.Thread(target=drain, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_claims = [item_id for ids in claimed.values() for item_id in ids]
    assert len(all_claims) == total
    assert set(all_claims) == expected


# --- worker runtime ------------------------------------------------------------------------------

calls: list[tuple[str, int]] = []


@work_handler("test.unit.ok")
def ok_handler(ctx: WorkContext, item) -> None:
    calls.append((ctx.worker_id, item.id))


@work_handler("test.unit.boom")
def boom_handler(ctx: WorkContext, item) -> None:
    raise ValueError("boom")


@work_handler("test.unit.effect")
def effect_handler(ctx: WorkContext, item) -> None:
    if item.payload.get("steal"):
        # Another worker takes the item over while this one is still working on it.
        work.claim(ctx.db, worker_id="thief", now=ctx.now(), lease_seconds=60, lease_now=ctx.now() + timedelta(hours=1))
    with ctx.db.write() as conn:
        server_state.set_value(conn, f"effect-{item.id}", True)
        ctx.complete(conn)


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


def effect_of(db, item_id):
    with db.read() as conn:
        return server_state.get_value(conn, f"effect-{item_id}")


def test_worker_runs_handler_and_completes(db):
    item_id = enqueue(db, kind="test.unit.ok")
    worker = Worker(db, FakeClock(), worker_id="w1")
    assert worker.run_once() == 1
    assert calls == [("w1", item_id)]
    assert get(db, item_id).status == "done"
    assert worker.run_once() == 0


def test_worker_retries_failing_handler_with_backoff(db):
    item_id = enqueue(db, kind="test.unit.boom")
    clock = FakeClock()
    worker = Worker(db, clock)
    assert worker.run_once() == 1
    item = get(db, item_id)
    assert (item.status, item.attempts, item.run_at) == ("queued", 1, T0 + timedelta(seconds=2))
    assert "ValueError: boom" in item.last_error
    assert worker.run_once() == 0
    clock.advance(seconds=2)
    assert worker.run_once() == 1
    assert get(db, item_id).attempts == 2


def test_effects_and_completion_commit_together(db):
    item_id = enqueue(db, kind="test.unit.effect")
    assert Worker(db, FakeClock()).run_once() == 1
    assert effect_of(db, item_id) is True
    assert get(db, item_id).status == "done"


def test_lost_claim_rolls_back_the_effects(db):
    item_id = enqueue(db, kind="test.unit.effect", payload={"steal": True})
    assert Worker(db, FakeClock()).run_once() == 1
    assert effect_of(db, item_id) is None  # the thief will produce it, once
    item = get(db, item_id)
    assert (item.status, item.claimed_by) == ("running", "thief")


def test_context_complete_raises_when_claim_is_lost(db):
    item_id = enqueue(db)
    [item] = work.claim(db, worker_id="w", now=T0, lease_seconds=10)
    ctx = WorkContext(
        db=db, clock=FakeClock(), worker_id="someone-else", item=item, lease_seconds=10, lease_clock=FakeClock()
    )
    with pytest.raises(LostClaim), db.write() as conn:
        ctx.complete(conn)
    assert get(db, item_id).status == "running"


def test_worker_only_claims_kinds_it_can_run(db):
    unknown = enqueue(db, kind="test.unit.nobody-handles-this")
    assert Worker(db, FakeClock()).run_once() == 0
    assert get(db, unknown).status == "queued"
    # Told explicitly to run a kind without a handler, it fails the item instead of looping on it.
    assert Worker(db, FakeClock(), kinds=["test.unit.nobody-handles-this"]).run_once() == 1
    assert "no handler" in get(db, unknown).last_error


def test_worker_follows_virtual_clock(db):
    clock = VirtualClock(db)
    clock.set(T0)
    item_id = enqueue(db, kind="test.unit.ok", run_at=T0 + timedelta(days=3))
    worker = Worker(db, clock, lease_seconds=30)
    assert worker.run_once() == 0
    clock.advance(timedelta(days=3))
    assert worker.run_once() == 1
    assert get(db, item_id).finished == T0 + timedelta(days=3)


def test_enqueue_wakes_an_idle_worker_thread(db):
    worker = Worker(db, FakeClock(), poll_seconds=30)
    thread = worker.start_thread()
    try:
        time.sleep(0.2)  # let it go idle, waiting for up to 30 s
        item_id = enqueue(db, kind="test.unit.ok")
        deadline = time.monotonic() + 5
        while get(db, item_id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert get(db, item_id).status == "done"
    finally:
        worker.stop()
    assert not thread.is_alive()


def test_purge_work_deletes_old_finished_items_in_batches(db):
    old = T0 - timedelta(days=40)
    finished_old = [enqueue(db, now=old) for _ in range(7)]
    for item_id in finished_old:
        work.claim(db, worker_id="w", now=old, lease_seconds=30)
        with db.write() as conn:
            work.complete(conn, item_id, worker_id="w", now=old)
    recent = enqueue(db, now=T0 - timedelta(days=1))
    work.claim(db, worker_id="w", now=T0, lease_seconds=30)
    with db.write() as conn:
        work.complete(conn, recent, worker_id="w", now=T0 - timedelta(days=1))
    pending_old = enqueue(db, now=old, run_at=T0 + timedelta(days=1))  # old but not finished
    purge = enqueue(db, kind=PURGE_KIND, payload={"older_than_days": 30, "batch_size": 3})

    assert Worker(db, FakeClock()).run_once() == 1
    assert all(get(db, item_id) is None for item_id in finished_old)
    assert get(db, recent).status == "done"
    assert get(db, pending_old).status == "queued"
    job = get(db, purge)
    assert job.status == "done"
    assert job.progress["deleted"] == 7


def test_load_handler_modules_imports_by_name():
    load_handler_modules(["", " tests.work_fixtures "])
    from menura.worker import registered_kinds

    assert {wf.UNITS_KIND, wf.MARK_KIND, PURGE_KIND} <= set(registered_kinds())
    with pytest.raises(ModuleNotFoundError):
        load_handler_modules(["menura.no_such_module"])


def test_embedded_worker_is_woken_by_the_services_signal(db):
    from types import SimpleNamespace

    from menura.settings import Settings
    from menura.worker import embedded_worker

    clock = FakeClock()
    services = SimpleNamespace(
        settings=Settings(worker_poll_seconds=30, work_lease_seconds=7, work_modules="tests.work_fixtures"),
        db=db,
        clock=clock,
        work_signal=threading.Event(),
    )
    worker = embedded_worker(services)
    assert worker.lease_seconds == 7
    item_id = enqueue(db, kind="test.unit.ok", run_at=T0 + timedelta(hours=1))
    worker.start_thread()
    try:
        time.sleep(0.2)  # idle, waiting for up to 30 s
        clock.advance(hours=1)  # as the clock endpoint does: move time, then signal
        services.work_signal.set()
        deadline = time.monotonic() + 5
        while get(db, item_id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert get(db, item_id).status == "done"
    finally:
        worker.stop()
