"""PostgreSQL planner statistics for tables filled in bursts.

Autovacuum analyzes a table a minute or more after it grew, so a table filled from empty by a bulk
ingest or import keeps the planner's empty-table guesses meanwhile: a 100-email profile lookup
then scanned every profile of the account through another `(account_id, ...)` index instead of
probing `(account_id, email)` — 30 ms a batch at 20,000 profiles, more than the rest of the batch.
Writers that add many rows report them here; once one process has added more than half of the
table's estimated size since it last looked, the table is analyzed right after the commit.
SQLite's planner needs no statistics to prefer an equality index, so SQLite is left alone.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection, Engine, text

from menura.store.db import after_commit

log = logging.getLogger(__name__)

# Rows added before the first look; below that a scan costs little whatever the plan.
MIN_ROWS = 1000
GROWTH = 0.5

_added: dict[tuple[str, str], int] = {}
_estimates: dict[tuple[str, str], float] = {}
_lock = threading.Lock()
_ESTIMATE = text("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass(:t)")


def note_rows_added(conn: Connection, table: str, count: int) -> None:
    """`count` rows were inserted into `table` in the current `Database.write()` transaction."""
    if count <= 0 or conn.dialect.name != "postgresql":
        return
    key = (str(conn.engine.url), table)
    with _lock:
        added = _added[key] = _added.get(key, 0) + count
        estimate = _estimates.get(key)
    if estimate is None:
        estimate = float(conn.execute(_ESTIMATE, {"t": table}).scalar() or 0)
        with _lock:
            _estimates[key] = estimate
    if added < max(MIN_ROWS, estimate * GROWTH):
        return
    with _lock:
        _added[key] = 0
        _estimates[key] = estimate + added
    engine = conn.engine
    after_commit(conn, lambda: analyze(engine, table))


def analyze(engine: Engine, table: str) -> None:
    """ANALYZE outside any transaction; a table another session is analyzing is skipped. Never
    raises: the rows it is about are committed already."""
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {table}")
    except Exception:  # statistics are an optimization; the next growth tries again
        log.warning("could not analyze %s", table, exc_info=True)
