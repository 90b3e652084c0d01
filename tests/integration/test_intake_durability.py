"""An accepted (202) event survives its server being killed right after answering: single and bulk
requests to `menura serve` (two processes, no worker), SIGKILL to every process, then a worker
started afterwards records every accepted event exactly once. On SQLite the events wait in the
intake log, on PostgreSQL in staging rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

import menura.engine.event_ingest  # noqa: F401  (registers the ingest drains)
from menura.clock import SystemClock
from menura.store.db import Database
from menura.store.event_tables import events
from menura.worker import Worker
from tests.conftest import REVISION, free_port
from tests.integration.test_cli import MENURA, run, wait_until_up
from tests.integration.worker_process import wait_for

SINGLE = 300
BULK_REQUESTS, BULK_PROFILES, BULK_EVENTS = 3, 20, 10


def single_body(n: int) -> dict:
    return {"data": {"type": "event", "attributes": {
        "properties": {"n": n}, "unique_id": f"single-{n}",
        "metric": {"data": {"type": "metric", "attributes": {"name": "Viewed Product"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": f"shopper{n % 25}@example.com"}}}}}}


def bulk_body(r: int) -> dict:
    entries = [{"type": "event-bulk-create", "attributes": {
        "profile": {"data": {"type": "profile", "attributes": {"email": f"buyer{r}-{p}@example.com"}}},
        "events": {"data": [{"type": "event", "attributes": {
            "properties": {"e": e}, "unique_id": f"bulk-{r}-{p}-{e}",
            "time": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
            "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}}}}
            for e in range(BULK_EVENTS)]}}} for p in range(BULK_PROFILES)]
    return {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": entries}}}}


def test_accepted_events_survive_a_killed_server(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "MENURA_DATABASE_URL": database_url, "MENURA_DATA_DIR": str(tmp_path),
           "MENURA_RUN_WORKER": "false"}
    made = json.loads(run(["accounts", "create", "--name", "Durable", "--json"], env))
    headers = {"Authorization": f"Klaviyo-API-Key {made['private_api_key']}", "revision": REVISION,
               "Content-Type": "application/json"}
    db = Database(database_url)
    with db.read() as conn:
        before = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    port = free_port()
    server = subprocess.Popen([*MENURA, "serve", "--port", str(port), "--workers", "2", "--no-worker",
                               "--rate-limits", "off"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server)
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client, ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda n: client.post("/api/events", json=single_body(n)).status_code,
                                     range(SINGLE)))
            statuses += list(pool.map(
                lambda r: client.post("/api/event-bulk-create-jobs", json=bulk_body(r)).status_code,
                range(BULK_REQUESTS)))
        assert statuses == [202] * (SINGLE + BULK_REQUESTS)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and both of its processes, no clean-up
        server.wait(timeout=30)
    expected = before + SINGLE + BULK_REQUESTS * BULK_PROFILES * BULK_EVENTS

    worker = Worker(db, SystemClock())

    def recorded() -> int:
        worker.run_once()
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    try:
        wait_for(lambda: recorded() >= expected, timeout=60)
        worker.run_once()
        assert recorded() == expected  # nothing recorded twice
    finally:
        db.dispose()
