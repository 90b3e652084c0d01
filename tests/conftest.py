"""Shared fixtures: databases (SQLite and PostgreSQL), a real HTTP server per database, fresh
accounts per test, the official SDK and a raw HTTP client."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from menura.clock import SystemClock
from menura.domain import accounts
from menura.settings import Settings

PG_BASE = os.environ.get("MENURA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REVISION = "2026-07-15"


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


PG_OK = _pg_reachable()
_reported: set[str] = set()


def pytest_report_header(config: pytest.Config) -> str:
    return "PostgreSQL: " + ("reachable, tests run on SQLite and PostgreSQL" if PG_OK
                             else "UNREACHABLE at 127.0.0.1:5432 — PostgreSQL tests are skipped")


def _fresh_pg_schema() -> str:
    """A private schema per test session, so concurrent runs never see each other's rows."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


def _drop_pg_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    dsn = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "postgresql":
        if not PG_OK:
            pytest.skip("PostgreSQL unreachable at 127.0.0.1:5432")
        url = _fresh_pg_schema()
        yield url
        _drop_pg_schema(url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'menura.db'}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    settings: Settings
    services: object
    operator_token: str

    @property
    def db(self):
        return self.services.db  # type: ignore[attr-defined]


def start_server(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, object]:
    from menura.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return server, thread, app.state.services


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = Settings(database_url=database_url, port=free_port(), rate_limits="off",
                        data_dir=Path(tmp_path_factory.mktemp("data")), operator_token="op_test_token",
                        worker_poll_seconds=0.05)
    srv, thread, services = start_server(settings)
    yield RunningServer(f"http://127.0.0.1:{settings.port}", settings, services, "op_test_token")
    srv.should_exit = True
    thread.join(timeout=10)


@dataclass
class Account:
    id: str
    key: str


@pytest.fixture
def account(server: RunningServer) -> Account:
    made = accounts.create_account(server.db, SystemClock().now(), name=f"Shop {uuid.uuid4().hex[:6]}")
    return Account(made.account_id, made.private_api_key)


@pytest.fixture
def other_account(server: RunningServer) -> Account:
    made = accounts.create_account(server.db, SystemClock().now(), name="Other shop")
    return Account(made.account_id, made.private_api_key)


@pytest.fixture
def sdk(server: RunningServer, account: Account):
    from klaviyo_api import KlaviyoAPI

    return KlaviyoAPI(account.key, test_host=server.url, max_retries=0)


@pytest.fixture
def http(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Klaviyo-API-Key {account.key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


def sdk_for(server: RunningServer, key: str):
    from klaviyo_api import KlaviyoAPI

    return KlaviyoAPI(key, test_host=server.url, max_retries=0)
