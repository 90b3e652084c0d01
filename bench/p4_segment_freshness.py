"""P4: segment freshness. A Menura server (embedded worker) with 50 live segments that all read the
same metric; each round posts one event for a new profile (`POST /api/events`, 202) and polls the
members of the segment it must enter until the profile shows up. Figure: accepted -> visible.

    python -m bench.p4_segment_freshness --size 100 [--database-url postgresql+psycopg://...]

There is no limit to compare with (GUIDE §4); the target is p99 under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from typing import Any

import httpx

from bench.common import (
    database_label,
    make_account,
    menura_env,
    migrate,
    print_table,
    run_server,
    scratch_database,
)

SEGMENTS = 50
REVISION = "2026-07-15"
TARGET_SECONDS = 1.0


def _event(email: str) -> dict[str, Any]:
    return {"data": {"type": "event", "attributes": {
        "properties": {"sku": "B-1"}, "metric": {"data": {"type": "metric", "attributes": {"name": "Viewed Product"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": email}}}}}}


def _segment(index: int, metric_id: str) -> dict[str, Any]:
    condition = {"type": "profile-metric", "metric_id": metric_id, "measurement": "count",
                 "measurement_filter": {"type": "numeric", "operator": "greater-than-or-equal", "value": index + 1},
                 "timeframe_filter": {"type": "date", "operator": "in-the-last", "quantity": 30, "unit": "day"}}
    return {"data": {"type": "segment", "attributes": {"name": f"viewed {index + 1}+",
                                                       "definition": {"condition_groups": [
                                                           {"conditions": [condition]}]}}}}


def _wait(check: Any, timeout: float = 30.0, pause: float = 0.05) -> Any:
    deadline = time.time() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.time() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(pause)


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100, help="events measured")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    with scratch_database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        migrate(url)
        _, key = make_account(url)
        headers = {"Authorization": f"Klaviyo-API-Key {key}", "revision": REVISION,
                   "Content-Type": "application/vnd.api+json"}
        with run_server("bench.common:menura_factory", env=menura_env(url, tmp), factory=True) as server, \
                httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            assert http.post("/api/events", json=_event("seed@bench.io")).status_code == 202
            metrics = _wait(lambda: http.get("/api/metrics").json()["data"])
            metric_id = next(m["id"] for m in metrics if m["attributes"]["name"] == "Viewed Product")
            segment_ids = []
            for index in range(SEGMENTS):
                made = http.post("/api/segments", json=_segment(index, metric_id))
                assert made.status_code == 201, made.text
                segment_ids.append(made.json()["data"]["id"])
            for segment_id in segment_ids:
                _wait(lambda sid=segment_id: not http.get(f"/api/segments/{sid}").json()["data"]["attributes"][
                    "is_processing"])
            target = segment_ids[0]
            latencies = []
            for _ in range(args.size):
                email = f"{uuid.uuid4().hex[:12]}@bench.io"
                accepted = http.post("/api/events", json=_event(email))
                assert accepted.status_code == 202, accepted.text
                started = time.perf_counter()
                params = {"filter": f"any(email,['{email}'])"}
                _wait(lambda p=params: http.get(f"/api/segments/{target}/relationships/profiles",
                                                params=p).json()["data"], pause=0.002)
                latencies.append(time.perf_counter() - started)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    label = database_label(url)
    return [(f"P4 segment freshness, event accepted -> member ({label})",
             f"{args.size} events, {SEGMENTS} live segments", f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
             f"target p99 {TARGET_SECONDS * 1000:.0f} ms", f"{p99 / TARGET_SECONDS:.2f}")]


if __name__ == "__main__":
    print_table(main())
