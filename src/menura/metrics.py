"""Prometheus metrics for the API and the workers.

With several worker processes the server sets ``PROMETHEUS_MULTIPROC_DIR`` (an empty,
writable directory) in the environment *before* the workers start: prometheus-client reads it
when it is first imported, and each process then writes its samples to files there, which
``render_metrics`` merges. Without the variable everything stays in this process's memory.
"""

from __future__ import annotations

import os
from typing import Any

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


# Labelled children, looked up once: `labels()` costs more than the observation itself.
_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(operation: str, method: str, status: int, seconds: float) -> None:
    """Record one answered request. ``operation`` is the API operation id, never a raw path
    (label values must stay few)."""
    series = _request_series.get((operation, method, status))
    if series is None:
        series = _request_series[(operation, method, status)] = (
            REQUESTS.labels(operation=operation, method=method.upper(), status=str(status)),
            LATENCY.labels(operation=operation))
    series[0].inc()
    series[1].observe(max(0.0, seconds))


def render_metrics() -> tuple[bytes, str]:
    """The exposition text for a scrape and its Content-Type."""
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
