"""P2: single event ingest, `POST /api/events` from 32 concurrent connections.

Our figure: requests/s (all answered 202, every event durably staged) and p99 latency. The limit,
measured in the same run on the same stack (uvicorn, same worker count, same load generator): a
bare ASGI endpoint that reads the same body and answers 202. Two layouts of the same code: the API
processes plus one `menura worker` process at lower CPU priority (production), and API processes
with their embedded workers (`menura serve`). Each also reports how long after the load every
accepted event was readable.

    python -m bench.p2_single_ingest [--size SECONDS] [--rounds 3] [--database-url URL] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from statistics import median
from typing import Any

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

CONCURRENCY = 32
REVISION = "2026-07-15"


async def bare_app(scope: dict, receive: object, send: object) -> None:
    """The limit: read the whole body, answer 202 with no body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # type: ignore[operator]
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
                return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]
        return
    more = True
    while more:
        message = await receive()  # type: ignore[operator]
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


SHOPPERS = 10_000


def body_template() -> str:
    """One event as a client would send it: `{n}` makes each request's unique_id differ; the profile
    is one of SHOPPERS shoppers (`{p}`), as on a shop where the same customers come back."""
    body = {"data": {"type": "event", "attributes": {
        "properties": {"Brand": "Kids Book", "ProductID": 1111, "ProductName": "Winnie the Pooh", "Price": 9.99,
                       "Categories": ["Fiction", "Children"]},
        "value": 9.99, "value_currency": "USD", "unique_id": "order-@N@",
        "metric": {"data": {"type": "metric", "attributes": {"name": "Viewed Product"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "shopper-@P@@example.com"}}}}}}
    return json.dumps(body, separators=(",", ":")).replace("@N@", "{n}").replace("@P@", "{p}")


def load(url: str, path: str, seconds: float, headers: dict[str, str]) -> dict[str, object]:
    args = [url, path, str(seconds), str(CONCURRENCY), json.dumps(headers), body_template(), str(SHOPPERS)]
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def wait_drained(database_url: str, expected: int, timeout: float = 600) -> float:
    """Seconds until every accepted event is readable in the events table."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout and count_events(database_url) < expected:
        time.sleep(0.2)
    return time.perf_counter() - started


def measure(url: str, workers: int, embedded: bool, seconds: float) -> tuple[dict[str, object], float]:
    """Load one server layout on a fresh account; (load result, seconds until all was readable)."""
    _account, key = make_account(url)
    auth = {"Content-Type": "application/json", "Authorization": f"Klaviyo-API-Key {key}", "revision": REVISION}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**menura_env(url, tmp), "MENURA_RUN_WORKER": "true" if embedded else "false"}
        with run_server("bench.common:menura_factory", workers=workers, env=env, factory=True) as server:
            before = count_events(url)
            if embedded:
                ours = load(server.url, "/api/events", seconds, auth)
                drain = wait_drained(url, before + int(ours["statuses"].get("202", 0)))  # type: ignore[union-attr]
            else:
                with worker_process(env, niceness=10):
                    ours = load(server.url, "/api/events", seconds, auth)
                    drain = wait_drained(url, before + int(ours["statuses"].get("202", 0)))  # type: ignore[union-attr]
    bad = {k: v for k, v in ours["statuses"].items() if k != "202"}  # type: ignore[union-attr]
    if bad:
        print(f"warning: non-202 answers: {bad}", file=sys.stderr)
    return ours, drain


def run(seconds: float, database_url: str | None, workers: int,
        rounds: int) -> list[tuple[str, str, str, str, str]]:
    """`rounds` alternating measurements of the bare endpoint and of each layout; the figures are
    medians (a 2-core machine's runs spread by a third)."""
    limits: list[dict[str, Any]] = []
    layouts = {"+1 worker process": False, "embedded workers": True}
    ours: dict[str, list[tuple[dict[str, Any], float]]] = {layout: [] for layout in layouts}
    with scratch_database(database_url) as url:
        migrate(url)
        label = database_label(url)
        for _ in range(rounds):
            with run_server("bench.p2_single_ingest:bare_app", workers=workers) as bare:
                limits.append(load(bare.url, "/api/events", seconds, {"Content-Type": "application/json"}))
            for layout, embedded in layouts.items():
                ours[layout].append(measure(url, workers, embedded, seconds))
    limit_rps, limit_p99 = median(r["rps"] for r in limits), median(r["p99_ms"] for r in limits)
    rows = []
    for layout, results in ours.items():
        rps, p99 = median(r["rps"] for r, _ in results), median(r["p99_ms"] for r, _ in results)
        size = f"{seconds:g}s x {rounds} (median), {CONCURRENCY} conns, {workers} API processes, {layout}"
        rows += [
            (f"P2 single ingest req/s ({label})", size, f"{rps:.0f}", f"{limit_rps:.0f} (bare ASGI)",
             f"{rps / limit_rps:.0%}"),
            (f"P2 single ingest p99 ms ({label})", size, f"{p99:.1f}", f"{limit_p99:.1f} (bare ASGI)",
             f"{p99 / max(limit_p99, 1e-9):.1f}x"),
            (f"P2 all readable after load ({label})", f"{layout}", f"{max(d for _, d in results):.1f}s (slowest round)",
             "-", "-"),
        ]
    print("rounds (ours/bare req/s): " + "; ".join(
        f"{layout}: " + ", ".join(f"{r['rps']:.0f}" for r, _ in results) for layout, results in ours.items())
        + "; bare: " + ", ".join(f"{r['rps']:.0f}" for r in limits))
    return rows


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=float, default=10.0, help="seconds of measured load")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = run(args.size, args.database_url, args.workers, args.rounds)
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
