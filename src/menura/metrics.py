"""Prometheus metrics for the API and the workers.

With several worker processes the server sets ``PROMETHEUS_MULTIPROC_DIR`` (an empty,
writable directory) in the environment *before* the workers start: prometheus-client reads it
when it is first imported, and each process then writes its samples to files there, which
``render_metrics`` merges. Without the variable everything stays in this process's memory.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# 1 ms .. 10 s, roughly 1-2.5-5 steps per decade.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "menura_http_requests_total",
    "HTTP requests answered, by API operation, method and status code.",
    ["operation", "method", "status"],
)
LATENCY = Histogram(
    "menura_http_request_duration_seconds",
    "Time to answer an HTTP request, by API operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
# The queues are shared (they live in the database), so any process may measure them; the
# latest measurement by a live process is the current value.
QUEUE_DEPTH = Gauge(
    "menura_work_queue_depth",
    "Items waiting in a work queue, by kind of work.",
    ["kind"],
    multiprocess_mode="livemostrecent",
)


_measured_kinds: set[str] = set()


def set_queue_depth(depth: dict[str, int]) -> None:
    """Publish unfinished work per kind; kinds that drained since the last measurement read 0."""
    for kind in _measured_kinds - depth.keys():
        QUEUE_DEPTH.labels(kind=kind).set(0)
    for kind, count in depth.items():
        QUEUE_DEPTH.labels(kind=kind).set(count)
    _measured_kinds.update(depth)


# Requests are tallied here and handed to prometheus-client in bulk (at most every FLUSH_SECONDS,
# and before a scrape): a labelled counter and histogram update per request cost the hot ingest
# path more than the rest of its bookkeeping.
FLUSH_SECONDS = 0.25


class _Tally:
    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf


_tallies: dict[tuple[str, str, int], _Tally] = {}
_tallies_lock = threading.Lock()
_next_flush = 0.0
atexit.register(lambda: flush_requests())


def observe_request(operation: str, method: str, status: int, seconds: float) -> None:
    """Record one answered request. ``operation`` is the API operation id, never a raw path
    (label values must stay few)."""
    global _next_flush
    seconds = max(0.0, seconds)
    # Called on the event loop thread only (as is the scrape's flush), so the tally needs no lock.
    tally = _tallies.get((operation, method, status))
    if tally is None:
        tally = _tallies[(operation, method, status)] = _Tally()
    tally.count += 1
    tally.seconds += seconds
    tally.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
    now = time.monotonic()
    if now >= _next_flush:
        _next_flush = now + FLUSH_SECONDS
        flush_requests()


def flush_requests() -> None:
    """Hand the tallied requests to prometheus-client (a bucket's count as one increment)."""
    with _tallies_lock:
        pending = [(key, tally) for key, tally in _tallies.items() if tally.count]
        for key, _tally in pending:
            _tallies[key] = _Tally()
    for (operation, method, status), tally in pending:
        REQUESTS.labels(operation=operation, method=method.upper(), status=str(status)).inc(tally.count)
        histogram = LATENCY.labels(operation=operation)
        histogram._sum.inc(tally.seconds)  # observe() would add them one at a time
        for index, count in enumerate(tally.buckets):
            if count:
                histogram._buckets[index].inc(count)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text for a scrape and its Content-Type."""
    flush_requests()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Call from the parent when a worker process exits (multiprocess mode only), so the
    worker's live gauge values stop being reported."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
