"""Engine creation and transactions, one code path for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

_json_encode = msgspec.json.Encoder().encode


def json_text(value: Any) -> str:
    """JSON columns' serializer: msgspec (several times faster than `json.dumps`, same data)."""
    return _json_encode(value).decode()


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` and `postgres://` URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    """Owns the engine; `write()` and `read()` give a connection inside one transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        # The file of an on-disk SQLite database (None for PostgreSQL and in-memory SQLite).
        self.sqlite_path: str | None = None
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                self.sqlite_path = str(Path(database).resolve())
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if database in ("", ":memory:"):
                kwargs["poolclass"] = NullPool
            else:
                # Enough pooled connections for the request thread pool (40 threads): an overflow
                # connection would be opened and configured again on every checkout.
                kwargs.update(pool_size=40, max_overflow=10)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, json_serializer=json_text, **kwargs)
        # Re-entrant so a write nested in the same thread fails on SQLite's lock, not here.
        self._write_lock: threading.RLock | contextlib.nullcontext[None] = (
            threading.RLock() if self.dialect == "sqlite" else contextlib.nullcontext())
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write. On SQLite it takes the write lock up front
        (BEGIN IMMEDIATE) so two writers never deadlock upgrading their locks, and writers of
        this process queue on a lock first: SQLite's own busy handler would make them sleep and
        poll (up to 100 ms a try) while another thread holds the database."""
        with self._write_lock, self.engine.connect().execution_options(menura_write=True) as conn:
            try:
                with conn.begin():
                    yield conn
            finally:
                callbacks = _after_commit.pop(conn, [])
            for callback in callbacks:  # reached only when the transaction committed
                callback()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


_after_commit: weakref.WeakKeyDictionary[Connection, list[Callable[[], None]]] = weakref.WeakKeyDictionary()


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run `callback` once the `Database.write()` transaction on `conn` has committed (never on
    rollback). SQLAlchemy's own "commit" event fires before the commit: too early to tell others."""
    callbacks = _after_commit.setdefault(conn, [])
    if callback not in callbacks:
        callbacks.append(callback)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling is switched off; SQLAlchemy's begin event emits BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # 32 MB of page cache (default 2 MB), allocated only as pages are read: with the default,
        # index inserts into a grown events table read most pages back from the OS page cache.
        cur.execute("PRAGMA cache_size=-32768")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("menura_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
