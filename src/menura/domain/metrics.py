"""Metrics: found or created by (name, integration), properties discovered from event properties,
custom metrics (conditions over other metrics' events) and Klaviyo's fixed mapped metrics."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from menura import ids
from menura.store import metrics as store
from menura.store.db import after_commit

NAME_MAX = 127  # "Name of the event. Must be less than 128 characters."
SAMPLE_VALUES = 10

# Integrations by key: (display name, category). Unknown service keys are shown as their own name.
INTEGRATIONS: dict[str, tuple[str, str]] = {
    "api": ("API", "API"),
    "klaviyo": ("Klaviyo", "Internal"),
}
API_SERVICE = "api"
INTERNAL_SERVICE = "klaviyo"

MAPPING_IDS = ("added_to_cart", "cancelled_sales", "ordered_product", "refunded_sales", "revenue",
               "started_checkout", "viewed_product")


# --- integrations --------------------------------------------------------------------------------


def integration_of(service: str) -> tuple[str, str]:
    return INTEGRATIONS.get(service, (service, "Custom"))


def integration_id(service: str) -> str:
    """A stable short id per integration key (Klaviyo shows one per integration)."""
    digest = hashlib.sha1(f"integration:{service}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:6])


def integration_object(row: Any) -> dict[str, Any]:
    return {"object": "integration", "id": integration_id(row.service), "key": row.service,
            "name": row.integration_name, "category": row.integration_category}


def metric_attributes(row: Any) -> dict[str, Any]:
    return {"name": row.name, "created": _iso(row.created), "updated": _iso(row.updated),
            "integration": integration_object(row)}


def _iso(when: datetime) -> str:
    return when.isoformat()


# --- find or create ------------------------------------------------------------------------------

# (database, account, name, service) -> metric id, and known (database, property id): filled only
# after the transaction that saw them commits.
_metric_cache: dict[tuple[str, str, str, str], str] = {}
_known_properties: set[tuple[str, str]] = set()
_cache_lock = threading.Lock()
_CACHE_MAX = 200_000


def _db(conn: Connection) -> str:
    return str(conn.engine.url)


def _remember_after_commit(conn: Connection, metrics: Mapping[tuple[str, str, str, str], str],
                           properties: Iterable[tuple[str, str]]) -> None:
    metric_items, property_ids = dict(metrics), list(properties)
    if not metric_items and not property_ids:
        return

    def remember() -> None:
        with _cache_lock:
            if len(_metric_cache) > _CACHE_MAX:
                _metric_cache.clear()
            if len(_known_properties) > _CACHE_MAX:
                _known_properties.clear()
            _metric_cache.update(metric_items)
            _known_properties.update(property_ids)

    after_commit(conn, remember)  # a rolled-back transaction must not leave ids in the cache


def clear_caches() -> None:
    with _cache_lock:
        _metric_cache.clear()
        _known_properties.clear()


def ensure_metrics(conn: Connection, account_id: str, keys: Iterable[tuple[str, str]], now: datetime) -> dict[
        tuple[str, str], str]:
    """(name, service) -> metric id, creating the metrics that don't exist yet."""
    wanted = set(keys)
    found: dict[tuple[str, str], str] = {}
    db = _db(conn)
    with _cache_lock:
        for name, service in wanted:
            cached = _metric_cache.get((db, account_id, name, service))
            if cached is not None:
                found[(name, service)] = cached
    missing = wanted - found.keys()
    if not missing:
        return found
    existing = store.find_metric_ids(conn, account_id, missing)
    to_create = missing - existing.keys()
    if to_create:
        rows = []
        for name, service in sorted(to_create):
            integration_name, category = integration_of(service)
            rows.append({"id": ids.short_id(6), "account_id": account_id, "name": name, "service": service,
                         "integration_name": integration_name, "integration_category": category,
                         "created": now, "updated": now})
        store.insert_metrics_ignoring_existing(conn, rows)
        existing.update(store.find_metric_ids(conn, account_id, to_create))
    found.update(existing)
    _remember_after_commit(conn, {(db, account_id, n, s): mid for (n, s), mid in existing.items()}, ())
    return found


def ensure_metric(conn: Connection, account_id: str, name: str, service: str, now: datetime) -> str:
    return ensure_metrics(conn, account_id, [(name, service)], now)[(name, service)]


# --- metric properties -----------------------------------------------------------------------------

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def property_id(metric_id: str, name: str) -> str:
    return hashlib.md5(f"{metric_id}\x00{name}".encode()).hexdigest()


def inferred_type(value: Any) -> str | None:
    """Klaviyo's data types (String, Number, Boolean, Date, List); None for objects, which
    Klaviyo does not offer for segmentation."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, list):
        return "List"
    if isinstance(value, str):
        return "Date" if _DATE_RE.match(value) else "String"
    return None


def _sample(value: Any) -> Any:
    if isinstance(value, str):
        return value[:256]
    if isinstance(value, list):
        return None
    return value


def discover_properties(conn: Connection, account_id: str,
                        observed: Iterable[tuple[str, Mapping[str, Any]]], now: datetime) -> None:
    """Record the top-level, non-object properties seen on events of each metric."""
    candidates: dict[str, dict[str, Any]] = {}
    db = _db(conn)
    ids: dict[tuple[str, str], str | None] = {}  # (metric, name) -> property id; None when known
    # (metric, names...) of events whose every property is known: the next event of that shape
    # (most of a batch) is skipped without a look at its properties.
    settled: set[tuple[str, ...]] = set()
    with _cache_lock:
        known = _known_properties
        for metric_id, properties in observed:
            shape = (metric_id, *properties)
            if shape in settled:
                continue
            all_known = True
            for name, value in properties.items():
                pair = (metric_id, name)
                if pair in ids:
                    pid = ids[pair]
                    if pid is None:
                        continue
                else:
                    pid = property_id(metric_id, name)
                    if name.startswith("$") or (db, pid) in known:
                        ids[pair] = None
                        continue
                    ids[pair] = pid
                all_known = False
                entry = candidates.get(pid)
                if entry is None:
                    kind = inferred_type(value)
                    if kind is None or len(name) > 255:
                        continue
                    entry = candidates[pid] = {"id": pid, "account_id": account_id, "metric_id": metric_id,
                                               "property": name, "inferred_type": kind, "sample_values": [],
                                               "created": now}
                samples = entry["sample_values"]
                sample = _sample(value)
                if sample is not None and len(samples) < SAMPLE_VALUES and sample not in samples:
                    samples.append(sample)
            if all_known:
                settled.add(shape)
    if not candidates:
        return
    existing = store.existing_property_ids(conn, candidates)
    new_rows = [row for pid, row in candidates.items() if pid not in existing]
    store.insert_properties_ignoring_existing(conn, new_rows)
    _remember_after_commit(conn, {}, [(db, pid) for pid in candidates])


def property_attributes(row: Any, *, with_samples: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {"label": row.property, "property": row.property, "inferred_type": row.inferred_type}
    if with_samples:
        attrs["sample_values"] = [_shown_sample(v) for v in row.sample_values or []]
    return attrs


def _shown_sample(value: Any) -> Any:
    # The spec allows integer | number | string | boolean as oneOf, which no integral number can
    # satisfy (it is both an integer and a number): numbers are shown as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


# --- flow triggers -------------------------------------------------------------------------------


class FlowTriggerSource(Protocol):
    """Provided by the flows area: which flows a metric triggers, and those flows' attributes."""

    def flow_ids(self, conn: Connection, account_id: str, metric_ids: Sequence[str]) -> dict[str, list[str]]: ...

    def flow_attributes(self, conn: Connection, account_id: str,
                        flow_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...


# Flows register a source here; until then no metric triggers any flow.
FLOW_TRIGGER_SOURCES: list[FlowTriggerSource] = []


def flow_ids_for(conn: Connection, account_id: str, metric_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {mid: [] for mid in metric_ids}
    for source in FLOW_TRIGGER_SOURCES:
        for mid, flows in source.flow_ids(conn, account_id, metric_ids).items():
            out.setdefault(mid, []).extend(flows)
    return out


def flow_attributes_for(conn: Connection, account_id: str, flow_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for source in FLOW_TRIGGER_SOURCES:
        out.update(source.flow_attributes(conn, account_id, flow_ids))
    return out

