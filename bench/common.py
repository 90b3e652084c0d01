"""Shared pieces of the benchmark scripts: a scratch database, a Menura server in a subprocess,
an account with a key, and the result table every workload prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A fresh database: a temporary SQLite file, or a private schema in the given PostgreSQL."""
    if not url or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="menura-bench-") as tmp:
            yield url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    import psycopg

    base = url.split("?")[0]
    dsn = base.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def migrate(url: str) -> None:
    from menura.store.db import Database
    from menura.store.migrate import upgrade

    db = Database(url)
    upgrade(db)
    db.dispose()


def count_events(database_url: str) -> int:
    """Events readable in the database (every account)."""
    from sqlalchemy import func, select

    from menura.store.db import Database
    from menura.store.event_tables import events

    db = Database(database_url)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    finally:
        db.dispose()


def make_account(url: str) -> tuple[str, str]:
    """(account id, private key) of a fresh account."""
    from menura.clock import SystemClock
    from menura.domain import accounts
    from menura.store.db import Database

    db = Database(url)
    made = accounts.create_account(db, SystemClock().now(), name=f"Bench {uuid.uuid4().hex[:6]}")
    db.dispose()
    return made.account_id, made.private_api_key


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextmanager
def run_server(app: str, *, workers: int = 1, env: dict[str, str] | None = None,
               factory: bool = False) -> Iterator[Server]:
    """Serve `app` ("module:attr") with uvicorn in a subprocess until the block ends."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers",
            str(workers), "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    if factory:
        args.append("--factory")
    process = subprocess.Popen(args, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"server {app} did not start") from None
            time.sleep(0.1)
    server = Server(url, process)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def worker_process(env: dict[str, str], *, niceness: int = 0) -> Iterator[None]:
    """A `menura worker` process beside the server (the production layout), ready (its handlers
    loaded) when the block starts; with `niceness`, at lower CPU priority, so expanding accepted
    events yields the cores to answering requests."""
    command = [sys.executable, "-m", "menura.cli", "worker"]
    if niceness:
        command = ["nice", "-n", str(niceness), *command]
    with tempfile.NamedTemporaryFile(prefix="menura-bench-worker-", suffix=".log") as log:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)
        deadline = time.time() + 60
        while b" started" not in Path(log.name).read_bytes():
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the worker process did not start: " + Path(log.name).read_text()[-2000:])
            time.sleep(0.05)
        try:
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def menura_env(url: str, tmp: str) -> dict[str, str]:
    return {"MENURA_DATABASE_URL": url, "MENURA_RATE_LIMITS": "off", "MENURA_DATA_DIR": tmp,
            "MENURA_OPERATOR_TOKEN": "bench", "MENURA_WORKER_POLL_SECONDS": "0.05",
            **({"MENURA_RUN_WORKER": "false"} if os.environ.get("BENCH_NO_WORKER") else {})}


def database_label(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgres") else "SQLite"


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    header = ("workload", "size", "our figure", "limit (same run)", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def menura_factory() -> object:
    """`menura.app:factory`, except that a work-handler module another area has not written yet is
    skipped with a warning instead of stopping the benchmark's server."""
    import importlib.util

    from menura import worker

    present = []
    for name in worker.HANDLER_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            present.append(name)
        else:
            print(f"bench: work handler module {name} is missing; skipped", file=sys.stderr)
    worker.HANDLER_MODULES = tuple(present)
    from menura.app import factory

    return factory()
