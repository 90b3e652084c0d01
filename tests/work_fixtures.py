"""Test support for the work queue: throwaway databases and test job kinds.

Imported by the tests and, through MENURA_WORK_MODULES=tests.work_fixtures, by real worker
processes started from the integration tests, so it registers its handlers on import.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, text

from menura.store.db import Database
from menura.store.tables import metadata
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler

POSTGRES_URL = os.environ.get("MENURA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]

# Separate metadata: the app's tables must not grow test-only tables.
test_metadata = MetaData()

# No unique constraint on `unit` on purpose: a duplicated unit must show up as two rows.
units = Table(
    "work_test_units",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit", Integer, nullable=False),
    Column("item_id", Integer, nullable=False),
    Column("worker_id", String(128), nullable=False),
)

marks = Table(
    "work_test_marks",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, nullable=False),
    Column("worker_id", String(128), nullable=False),
)


# --- databases ---------------------------------------------------------------------------------


@dataclass
class ScratchDatabase:
    backend: str
    url: str
    db: Database


def _postgres_unreachable_reason() -> str | None:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except Exception as exc:
        return f"PostgreSQL unreachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()


@contextmanager
def _postgres_schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards; returns a URL whose connections use it."""
    reason = _postgres_unreachable_reason()
    if reason is not None:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    schema = f"menura_test_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    # libpq's `options` sets search_path per connection, also for worker subprocesses given the URL.
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def open_test_database(backend: str, tmp_path: Path) -> Iterator[ScratchDatabase]:
    """A Database with every app table (plus the test tables), on a fresh SQLite file or a fresh
    PostgreSQL schema."""
    if backend == "sqlite":
        with _with_tables(backend, f"sqlite:///{tmp_path / 'work.db'}") as test_db:
            yield test_db
    else:
        with _postgres_schema() as url, _with_tables(backend, url) as test_db:
            yield test_db


@contextmanager
def _with_tables(backend: str, url: str) -> Iterator[ScratchDatabase]:
    db = Database(url)
    metadata.create_all(db.engine)
    test_metadata.create_all(db.engine)
    try:
        yield ScratchDatabase(backend=backend, url=url, db=db)
    finally:
        db.dispose()


# --- test job kinds ------------------------------------------------------------------------------

UNITS_KIND = "test.units"
MARK_KIND = "test.mark"


@work_handler(UNITS_KIND)
def process_units(ctx: WorkContext, item: WorkItem) -> None:
    """A long job: units 0..total-1 in batches; each batch's rows and its checkpoint commit in one
    transaction, so a killed worker loses at most the uncommitted batch and nothing is doubled.
    Payload: {"total": N, "batch": B, "pause": seconds slept per batch}."""
    total, batch, pause = item.payload["total"], item.payload["batch"], item.payload.get("pause", 0.0)
    next_unit = (item.progress or {}).get("next", 0)
    while next_unit < total:
        # Sleep outside the transaction: on SQLite the write lock is held from BEGIN IMMEDIATE.
        time.sleep(pause)
        upto = min(next_unit + batch, total)
        rows = [{"unit": u, "item_id": item.id, "worker_id": ctx.worker_id} for u in range(next_unit, upto)]
        with ctx.db.write() as conn:
            conn.execute(insert(units), rows)
            if ctx.stopping and upto < total:
                ctx.release(conn, {"next": upto})
                return
            ctx.checkpoint(conn, {"next": upto})
        next_unit = upto


@work_handler(MARK_KIND)
def mark(ctx: WorkContext, item: WorkItem) -> None:
    """A small item: one effect row, committed together with the completion (exactly once)."""
    time.sleep(item.payload.get("pause", 0.0))
    with ctx.db.write() as conn:
        conn.execute(insert(marks).values(item_id=item.id, worker_id=ctx.worker_id))
        ctx.complete(conn)
