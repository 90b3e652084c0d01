"""Claims due work items and runs their handlers.

Handlers register per kind with `@work_handler("kind")`. A handler gets a `WorkContext` and the
claimed `WorkItem`. For exactly-once effects it writes its effects and calls `ctx.complete(conn)`
(or, per batch of a long job, `ctx.checkpoint(conn, progress)`) in the same transaction: if the
claim was lost meanwhile (lease expired, another worker took over) that raises `LostClaim` and the
effects roll back. A handler that returns without completing is completed by the runtime; one that
raises is retried with exponential backoff until its max_attempts.

Embedded mode runs `Worker.start_thread()` inside the API process; production runs
`menura worker` (or `python -m menura.worker`) processes, several of them on PostgreSQL.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import signal
import socket
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from menura.clock import Clock, SystemClock, make_clock
from menura.store import work
from menura.store.db import Database
from menura.store.work import WorkItem

if TYPE_CHECKING:
    from menura.services import Services
    from menura.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[["WorkContext", WorkItem], None]

# Modules whose import registers the application's own handlers (engine, delivery, bulk jobs).
# The packages that define handlers add themselves here; MENURA_WORK_MODULES adds more.
HANDLER_MODULES: tuple[str, ...] = (
    "menura.engine.web_feed_refresh",
    "menura.engine.event_ingest",
    "menura.engine.profile_jobs",
    "menura.engine.data_privacy",
    "menura.delivery.handlers",
    "menura.engine.campaigns.dispatcher",
    "menura.engine.campaigns.estimation",
    "menura.engine.segments.live",
)

_handlers: dict[str, Handler] = {}


class LostClaim(RuntimeError):
    """The item is no longer claimed by this worker: its lease expired and another worker took it.
    Raised inside the handler's transaction so that transaction's effects roll back."""


# --- registry --------------------------------------------------------------------------------


def work_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of work items of `kind`."""

    def register(handler: Handler) -> Handler:
        existing = _handlers.get(kind)
        # Re-registering the same function (a module imported twice) is harmless; two different
        # handlers for one kind is a bug that would make behaviour depend on import order.
        if existing is not None and existing.__qualname__ != handler.__qualname__:
            raise ValueError(f"work kind {kind!r} already has a handler: {existing.__qualname__}")
        _handlers[kind] = handler
        return handler

    return register


# Called whenever a worker looks for work: for work that is found by looking rather than enqueued
# (the intake log). Each returns how much it did.
IdlePoller = Callable[[Database, Clock], int]
_idle_pollers: list[IdlePoller] = []


def idle_poller(poller: IdlePoller) -> IdlePoller:
    if poller not in _idle_pollers:
        _idle_pollers.append(poller)
    return poller


def registered_kinds() -> list[str]:
    return sorted(_handlers)


def get_handler(kind: str) -> Handler | None:
    return _handlers.get(kind)


def load_handler_modules(names: Iterable[str]) -> None:
    """Import modules by dotted name so their `@work_handler`s register. Blank names are ignored."""
    for name in names:
        name = name.strip()
        if name:
            importlib.import_module(name)


def split_module_list(text: str) -> list[str]:
    """Parse the comma-separated MENURA_WORK_MODULES setting."""
    return [part.strip() for part in text.split(",") if part.strip()]


# --- context given to handlers ---------------------------------------------------------------


@dataclass
class WorkContext:
    db: Database
    clock: Clock
    worker_id: str
    item: WorkItem
    lease_seconds: float
    lease_clock: Clock
    # Tells a long handler the worker is shutting down (checked between batches).
    should_stop: Callable[[], bool] = lambda: False
    completed: bool = False

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def stopping(self) -> bool:
        """True once the worker is shutting down: long jobs may `release` at a batch boundary."""
        return self.should_stop()

    def complete(self, conn: Connection) -> None:
        """Mark the item done in `conn`'s transaction (the one holding the effects)."""
        if not work.complete(conn, self.item.id, worker_id=self.worker_id, now=self.now()):
            raise LostClaim(f"work item {self.item.id} is no longer claimed by {self.worker_id}")
        self.completed = True

    def checkpoint(self, conn: Connection, progress: dict[str, Any]) -> None:
        """Persist progress and renew the lease in `conn`'s transaction (with the batch's effects)."""
        renewed = work.checkpoint(
            conn,
            self.item.id,
            worker_id=self.worker_id,
            now=self.now(),
            progress=progress,
            lease_seconds=self.lease_seconds,
            lease_now=self.lease_clock.now(),
        )
        if not renewed:
            raise LostClaim(f"work item {self.item.id} is no longer claimed by {self.worker_id}")

    def release(self, conn: Connection, progress: dict[str, Any] | None = None) -> None:
        """Give the item back to the queue (due now, attempt not counted), e.g. when `stopping`."""
        if not work.release(conn, self.item.id, worker_id=self.worker_id, now=self.now(), progress=progress):
            raise LostClaim(f"work item {self.item.id} is no longer claimed by {self.worker_id}")
        # Nothing left for the runtime to do: the item is no longer ours.
        self.completed = True


# --- the worker ------------------------------------------------------------------------------


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Claims due items one at a time and runs them.

    One item at a time on purpose: items claimed in a batch would have their leases ticking while
    they wait behind a slow one, and expire into another worker's hands. Run more workers (threads
    or processes) for parallelism.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
        poll_seconds: float = 0.5,
        kinds: Sequence[str] | None = None,
        lease_clock: Clock | None = None,
        wake_event: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.kinds = list(kinds) if kinds is not None else None
        # Leases measure real time even when due-ness follows a virtual clock: a frozen virtual
        # clock would never expire a dead worker's lease, an advanced one would expire live ones.
        self.lease_clock: Clock = lease_clock or (SystemClock() if clock.virtual else clock)
        # Shareable so code that cannot see the Worker (e.g. the clock endpoint) can wake it.
        self._wake = wake_event or threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._remove_listener: Callable[[], None] | None = None

    # -- control --

    def wake(self) -> None:
        """Look for due work now instead of at the end of the poll interval."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the loop to stop after the in-flight item and wait for the thread, if any."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def start_thread(self) -> threading.Thread:
        """Run the loop in a daemon thread (embedded mode); enqueues in this process wake it."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop,), name=f"menura-worker-{self.worker_id}", daemon=True
        )
        self._thread.start()
        return self._thread

    # -- loop --

    def run_forever(self, stop: threading.Event) -> None:
        """Process due work until `stop` (or `self.stop()`) is set; the in-flight item finishes."""
        self._remove_listener = work.add_enqueue_listener(self.wake)
        log.info("worker %s started (kinds: %s)", self.worker_id, ", ".join(self._claimable_kinds()))
        try:
            while not self._stopping(stop):
                # Clear before looking: a wake() arriving during run_once then skips the wait.
                self._wake.clear()
                processed = self._run_once_logged(stop)
                if processed == 0 and not self._stopping(stop):
                    self._wake.wait(self.poll_seconds)
        finally:
            if self._remove_listener is not None:
                self._remove_listener()
            log.info("worker %s stopped", self.worker_id)

    def run_once(self, limit: int = 100) -> int:
        """Claim and run due items, one at a time, until none is due or `limit` ran. Returns the
        number processed (completed, failed or lost)."""
        return self._run_batch(limit, self._stop)

    def _run_once_logged(self, stop: threading.Event) -> int:
        try:
            return self._run_batch(100, stop)
        except Exception:
            # The database may be briefly unreachable; claims in flight expire and get redone.
            log.exception("worker %s: error while claiming work", self.worker_id)
            return 0

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._stop.is_set()

    def _run_batch(self, limit: int, stop: threading.Event) -> int:
        processed = 0
        while processed < limit and not self._stopping(stop):
            item = self._claim_one()
            if item is None:
                break
            self._run_item(item, stop)
            processed += 1
        return processed + self._poll(stop)

    def _poll(self, stop: threading.Event) -> int:
        done = 0
        for poller in list(_idle_pollers):
            if self._stopping(stop):
                break
            try:
                done += poller(self.db, self.clock)
            except Exception:
                log.exception("worker %s: %s failed", self.worker_id, getattr(poller, "__name__", poller))
        return done

    def _claimable_kinds(self) -> list[str]:
        # Only claim what this process can run: another process may have handler modules we lack.
        # Evaluated per claim because modules may register handlers after the worker starts.
        return self.kinds if self.kinds is not None else registered_kinds()

    def _claim_one(self) -> WorkItem | None:
        items = work.claim(
            self.db,
            worker_id=self.worker_id,
            now=self.clock.now(),
            lease_seconds=self.lease_seconds,
            limit=1,
            kinds=self._claimable_kinds(),
            lease_now=self.lease_clock.now(),
        )
        return items[0] if items else None

    # -- one item --

    def _run_item(self, item: WorkItem, stop: threading.Event) -> None:
        handler = get_handler(item.kind)
        if handler is None:
            self._record_failure(item, f"no handler registered for work kind {item.kind!r}")
            return
        ctx = WorkContext(
            db=self.db,
            clock=self.clock,
            worker_id=self.worker_id,
            item=item,
            lease_seconds=self.lease_seconds,
            lease_clock=self.lease_clock,
            should_stop=lambda: self._stopping(stop),
        )
        try:
            handler(ctx, item)
        except LostClaim:
            log.warning("worker %s lost work item %s (%s): lease taken over", self.worker_id, item.id, item.kind)
            return
        except Exception:
            log.exception("work item %s (%s) failed on attempt %s", item.id, item.kind, item.attempts)
            self._record_failure(item, traceback.format_exc())
            return
        if not ctx.completed:
            self._record_completion(item)

    def _record_completion(self, item: WorkItem) -> None:
        with self.db.write() as conn:
            done = work.complete(conn, item.id, worker_id=self.worker_id, now=self.clock.now())
        if not done:
            log.warning("work item %s finished after its lease was taken over", item.id)

    def _record_failure(self, item: WorkItem, error: str) -> None:
        with self.db.write() as conn:
            work.fail(conn, item.id, worker_id=self.worker_id, now=self.clock.now(), error=error)


# --- built-in job: purge finished work ------------------------------------------------------------

PURGE_KIND = "maintenance.purge_work"
PURGE_BATCH = 1000


@work_handler(PURGE_KIND)
def purge_finished_work(ctx: WorkContext, item: WorkItem) -> None:
    """Delete done/failed work items that finished more than `older_than_days` ago, in batches,
    each batch committed together with its checkpoint. Payload: {"older_than_days": N,
    "batch_size": optional}."""
    progress = dict(item.progress or {})
    # The cutoff is fixed at the first run so a resumed job deletes exactly the same set.
    if "cutoff" not in progress:
        days = float(item.payload.get("older_than_days", 30))
        progress["cutoff"] = (ctx.now() - timedelta(days=days)).isoformat()
        progress["deleted"] = 0
    cutoff = datetime.fromisoformat(progress["cutoff"])
    batch_size = int(item.payload.get("batch_size", PURGE_BATCH))
    while True:
        with ctx.db.write() as conn:
            deleted = work.purge_finished(conn, finished_before=cutoff, limit=batch_size)
            progress["deleted"] += deleted
            if deleted < batch_size:
                ctx.checkpoint(conn, progress)
                ctx.complete(conn)
                log.info("purged %s finished work items older than %s", progress["deleted"], cutoff)
                return
            if ctx.stopping:
                ctx.release(conn, progress)
                return
            ctx.checkpoint(conn, progress)


# --- embedded worker and worker process ------------------------------------------------------------------------------


def _handler_modules(settings: Settings) -> list[str]:
    return [*HANDLER_MODULES, *split_module_list(settings.work_modules)]


def embedded_worker(services: Services) -> Worker:
    """The worker the API process runs in a thread (embedded mode); the caller starts and stops it.
    `services.work_signal` wakes it (set after enqueues and clock changes)."""
    settings = services.settings
    load_handler_modules(_handler_modules(settings))
    return Worker(
        services.db,
        services.clock,
        lease_seconds=settings.work_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
        wake_event=services.work_signal,
    )


def main(settings: Settings) -> None:
    """Run one worker process until SIGTERM/SIGINT; the in-flight item is finished first."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_handler_modules(_handler_modules(settings))
    db = Database(settings.resolved_database_url)
    worker = Worker(
        db,
        make_clock(settings.clock, db),
        lease_seconds=settings.work_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("worker %s: signal %s, stopping after the current item", worker.worker_id, signum)
        stop.set()
        worker.wake()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        worker.run_forever(stop)
    finally:
        db.dispose()


if __name__ == "__main__":
    # Run through the package module, not this `__main__` copy: handler modules import
    # `menura.worker`, and their registrations must land in the registry the loop reads.
    import menura.worker
    from menura.settings import get_settings

    menura.worker.main(get_settings())
