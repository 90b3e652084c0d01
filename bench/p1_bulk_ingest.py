"""P1: bulk event ingest through `POST /api/event-bulk-create-jobs`, 1,000 events per request
(100 profiles by email x 10 events, 5 properties, a value and a time each), until every event is
readable in the events table.

Our figure: events/s from the first request to the last event readable. The limit, measured in
the same run on the same database: a raw batched insert of the same rows into a table of the same
shape (same columns and indexes), 1,000 rows per transaction (executemany; on PostgreSQL also COPY).

    python -m bench.p1_bulk_ingest [--size EVENTS] [--database-url URL] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint, insert
from ulid import ULID

from bench.common import (
    count_events,
    database_label,
    make_account,
    menura_env,
    migrate,
    print_table,
    run_server,
    scratch_database,
    worker_process,
)

PER_REQUEST = 1000
EVENTS_PER_PROFILE = 10
REVISION = "2026-07-15"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def properties(n: int) -> dict[str, Any]:
    return {"Brand": f"Brand {n % 17}", "ProductID": n % 1000, "ProductName": f"Product {n % 250}",
            "Categories": ["Books", f"Shelf {n % 9}"], "Discounted": n % 3 == 0}


def request_body(request_no: int) -> dict[str, Any]:
    entries = []
    profiles = PER_REQUEST // EVENTS_PER_PROFILE
    for p in range(profiles):
        profile_no = request_no * profiles + p
        events = []
        for e in range(EVENTS_PER_PROFILE):
            n = profile_no * EVENTS_PER_PROFILE + e
            events.append({"type": "event", "attributes": {
                "properties": properties(n), "value": round(n % 500 + 0.99, 2),
                "time": (BASE_TIME + timedelta(minutes=n)).isoformat(),
                "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}}}})
        entries.append({"type": "event-bulk-create", "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": f"buyer{profile_no}@bench.example"}}},
            "events": {"data": events}}})
    return {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": entries}}}}


def run_ours(url: str, size: int, workers: int, embedded: bool) -> float:
    """Events/s from the first request to the last event readable, on a fresh account; either the
    API processes' embedded workers expand the events, or one `menura worker` process does."""
    _account, key = make_account(url)
    before = count_events(url)
    requests = size // PER_REQUEST
    # Encoded up front: the client's JSON encoding is not the server's work.
    bodies = [json.dumps(request_body(n), separators=(",", ":")).encode() for n in range(requests)]
    headers = {"Authorization": f"Klaviyo-API-Key {key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json"}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        env = {**menura_env(url, tmp), "MENURA_RUN_WORKER": "true" if embedded else "false"}
        server = stack.enter_context(run_server("bench.common:menura_factory", workers=workers, env=env,
                                                factory=True))
        if not embedded:
            stack.enter_context(worker_process(env))
        client = httpx.Client(base_url=server.url, headers=headers, timeout=120)

        def send(body: bytes) -> None:
            response = client.post("/api/event-bulk-create-jobs", content=body)
            if response.status_code != 202:
                raise RuntimeError(f"bulk create answered {response.status_code}: {response.text[:300]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, bodies))
        accepted = time.perf_counter() - started
        expected = requests * PER_REQUEST
        while count_events(url) - before < expected:
            if time.perf_counter() - started > 3600:
                raise RuntimeError("events were not all readable within an hour")
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        client.close()
    layout = "embedded workers" if embedded else "one worker process"
    print(f"  {layout}: accepted {expected} events in {accepted:.1f}s, all readable after {elapsed:.1f}s")
    return expected / elapsed


def raw_table(metadata: MetaData) -> Table:
    """A table shaped like `events` (columns, unique key, secondary indexes) under other names."""
    from menura.store.event_tables import events

    columns = [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in events.columns]
    return Table("bench_raw_events", metadata, *columns,
                 UniqueConstraint("profile_id", "metric_id", "unique_id", name="uq_bench_raw_events_unique"),
                 Index("ix_bench_raw_events_account_time", "account_id", "occurred_at", "id"),
                 Index("ix_bench_raw_events_metric_time", "metric_id", "occurred_at", "id"))


def raw_rows(size: int) -> list[dict[str, Any]]:
    received = datetime.now(UTC)
    rows = []
    for n in range(size):
        when = BASE_TIME + timedelta(minutes=n)
        rows.append({"id": str(ULID()), "account_id": "RAW001", "metric_id": "Mraw01",
                     "profile_id": f"P{n // EVENTS_PER_PROFILE:025d}", "occurred_at": when,
                     "properties": properties(n), "value": round(n % 500 + 0.99, 2), "value_currency": None,
                     "unique_id": str(int(when.timestamp())), "received_at": received})
    return rows


def run_raw(url: str, size: int) -> dict[str, float]:
    from menura.store.db import Database

    db = Database(url)
    metadata = MetaData()
    table = raw_table(metadata)
    rates: dict[str, float] = {}
    try:
        metadata.create_all(db.engine)
        rows = raw_rows(size)
        started = time.perf_counter()
        for start in range(0, size, PER_REQUEST):
            with db.write() as conn:
                conn.execute(insert(table), rows[start:start + PER_REQUEST])
        rates["executemany"] = size / (time.perf_counter() - started)
        if db.dialect == "postgresql":
            metadata.drop_all(db.engine)
            metadata.create_all(db.engine)
            rates["COPY"] = size / _copy(db, rows)
    finally:
        metadata.drop_all(db.engine)
        db.dispose()
    return rates


def _copy(db: Any, rows: list[dict[str, Any]]) -> float:
    names = list(rows[0])
    started = time.perf_counter()
    for start in range(0, len(rows), PER_REQUEST):
        with db.engine.raw_connection() as raw:
            cursor = raw.cursor()
            with cursor.copy(f"COPY bench_raw_events ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows[start:start + PER_REQUEST]:
                    copy.write_row([json.dumps(row[n]) if n == "properties" else row[n] for n in names])
            raw.commit()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=200_000, help="events to ingest (multiple of 1,000)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    size = max(PER_REQUEST, args.size // PER_REQUEST * PER_REQUEST)
    with scratch_database(args.database_url) as url:
        migrate(url)
        label = database_label(url)
        ours = {layout: run_ours(url, size, args.workers, layout == "embedded workers")
                for layout in ("+1 worker process", "embedded workers")}
        limits = run_raw(url, size)
    rows = [(f"P1 bulk ingest events/s ({label})", f"{size} events, {args.workers} API processes, {layout}",
             f"{rate_ours:.0f}", f"{rate:.0f} (raw {how})", f"{rate_ours / rate:.0%}")
            for layout, rate_ours in ours.items() for how, rate in limits.items()]
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
