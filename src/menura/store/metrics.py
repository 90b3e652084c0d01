"""Queries for metrics, metric properties, custom metrics and mapped metrics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from menura.store.event_tables import custom_metrics, mapped_metrics, metric_properties, metrics


def _dialect_insert(conn: Connection, table: Any) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


# --- metrics -----------------------------------------------------------------------------------


def find_metric_ids(conn: Connection, account_id: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(name, service) -> metric id for those that exist."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = conn.execute(
        select(metrics.c.name, metrics.c.service, metrics.c.id).where(
            metrics.c.account_id == account_id, tuple_(metrics.c.name, metrics.c.service).in_(wanted))
    ).all()
    return {(row.name, row.service): row.id for row in rows}


def insert_metrics_ignoring_existing(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert metrics; a concurrent creator of the same (account, name, service) wins silently."""
    if rows:
        stmt = _dialect_insert(conn, metrics).on_conflict_do_nothing(
            index_elements=["account_id", "name", "service"])
        conn.execute(stmt, list(rows))


def get_metric(conn: Connection, account_id: str, metric_id: str) -> Row[Any] | None:
    return conn.execute(
        select(metrics).where(metrics.c.account_id == account_id, metrics.c.id == metric_id)).first()


def get_metrics(conn: Connection, account_id: str, metric_ids: Iterable[str]) -> list[Row[Any]]:
    ids = list(set(metric_ids))
    if not ids:
        return []
    return list(conn.execute(
        select(metrics).where(metrics.c.account_id == account_id, metrics.c.id.in_(ids))).all())


def metric_listing_select(account_id: str) -> Any:
    return select(metrics).where(metrics.c.account_id == account_id)


# --- metric properties ---------------------------------------------------------------------------


def existing_property_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    if not wanted:
        return set()
    return set(conn.execute(select(metric_properties.c.id).where(metric_properties.c.id.in_(wanted))).scalars())


def insert_properties_ignoring_existing(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = _dialect_insert(conn, metric_properties).on_conflict_do_nothing(index_elements=["id"])
        conn.execute(stmt, list(rows))


def get_property(conn: Connection, account_id: str, property_id: str) -> Row[Any] | None:
    return conn.execute(select(metric_properties).where(
        metric_properties.c.account_id == account_id, metric_properties.c.id == property_id)).first()


def properties_of_metric(conn: Connection, account_id: str, metric_id: str) -> list[Row[Any]]:
    return list(conn.execute(
        select(metric_properties)
        .where(metric_properties.c.account_id == account_id, metric_properties.c.metric_id == metric_id)
        .order_by(metric_properties.c.property)).all())


# --- custom metrics ------------------------------------------------------------------------------


def insert_custom_metric(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(custom_metrics).values(**values))


def update_custom_metric(conn: Connection, account_id: str, custom_metric_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(custom_metrics).where(custom_metrics.c.account_id == account_id,
                                              custom_metrics.c.id == custom_metric_id).values(**values))


def delete_custom_metric(conn: Connection, account_id: str, custom_metric_id: str) -> int:
    # A mapping that pointed at it is left unset, as if PATCHed to null.
    conn.execute(update(mapped_metrics).where(mapped_metrics.c.account_id == account_id,
                                              mapped_metrics.c.custom_metric_id == custom_metric_id)
                 .values(custom_metric_id=None))
    return conn.execute(delete(custom_metrics).where(custom_metrics.c.account_id == account_id,
                                                     custom_metrics.c.id == custom_metric_id)).rowcount


def get_custom_metric(conn: Connection, account_id: str, custom_metric_id: str) -> Row[Any] | None:
    return conn.execute(select(custom_metrics).where(custom_metrics.c.account_id == account_id,
                                                     custom_metrics.c.id == custom_metric_id)).first()


def custom_metric_named(conn: Connection, account_id: str, name: str) -> Row[Any] | None:
    return conn.execute(select(custom_metrics).where(custom_metrics.c.account_id == account_id,
                                                     custom_metrics.c.name == name)).first()


def list_custom_metrics(conn: Connection, account_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(custom_metrics).where(custom_metrics.c.account_id == account_id)
                             .order_by(custom_metrics.c.created, custom_metrics.c.id)).all())


def count_custom_metrics(conn: Connection, account_id: str) -> int:
    return len(conn.execute(select(custom_metrics.c.id).where(custom_metrics.c.account_id == account_id)).all())


# --- mapped metrics ------------------------------------------------------------------------------


def list_mappings(conn: Connection, account_id: str) -> dict[str, Row[Any]]:
    rows = conn.execute(select(mapped_metrics).where(mapped_metrics.c.account_id == account_id)).all()
    return {row.id: row for row in rows}


def save_mapping(conn: Connection, account_id: str, mapping_id: str, *, metric_id: str | None,
                 custom_metric_id: str | None, now: datetime) -> None:
    where = and_(mapped_metrics.c.account_id == account_id, mapped_metrics.c.id == mapping_id)
    values = {"metric_id": metric_id, "custom_metric_id": custom_metric_id, "updated": now}
    if conn.execute(update(mapped_metrics).where(where).values(**values)).rowcount == 0:
        conn.execute(insert(mapped_metrics).values(account_id=account_id, id=mapping_id, **values))
