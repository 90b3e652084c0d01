"""Queries of the delivery area: outbound messages, attempts, bounces, inbound messages, tracking settings."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from menura.store.delivery_tables import (
    bounce_records,
    delivery_attempts,
    inbound_messages,
    outbound_messages,
    tracking_settings,
)

_CHUNK = 500
# Columns listed without the bodies, which can be large.
_SUMMARY = [c for c in outbound_messages.c if c.name not in ("html_z", "raw_z")]


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


# --- outbound messages ---------------------------------------------------------------------------


def messages_by_ids(conn: Connection, ids: Collection[str], *, bodies: bool = False) -> dict[str, Row[Any]]:
    columns = list(outbound_messages.c) if bodies else _SUMMARY
    found: dict[str, Row[Any]] = {}
    for chunk in _chunks(list(ids)):
        for row in conn.execute(select(*columns).where(outbound_messages.c.id.in_(chunk))):
            found[row.id] = row
    return found


def get_message(conn: Connection, message_id: str, *, bodies: bool = True) -> Row[Any] | None:
    columns = list(outbound_messages.c) if bodies else _SUMMARY
    return conn.execute(select(*columns).where(outbound_messages.c.id == message_id)).first()


def get_message_for_update(conn: Connection, message_id: str) -> Row[Any] | None:
    query = select(outbound_messages).where(outbound_messages.c.id == message_id).with_for_update()
    return conn.execute(query).first()


def find_by_header_message_id(conn: Connection, header_message_id: str) -> Row[Any] | None:
    query = select(*_SUMMARY).where(outbound_messages.c.message_id == header_message_id).limit(1)
    return conn.execute(query).first()


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert new message rows; rows whose id already exists are left alone. Returns the inserted ids."""
    if not rows:
        return set()
    # An executemany (SQLAlchemy batches it into multi-row statements), compiled once and cached: a
    # statement built with .values(rows) would be compiled anew for every batch.
    statement = (_insert(conn)(outbound_messages).on_conflict_do_nothing(index_elements=["id"])
                 .returning(outbound_messages.c.id))
    return set(conn.execute(statement, [dict(row) for row in rows]).scalars())


def update_message(conn: Connection, message_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(outbound_messages).where(outbound_messages.c.id == message_id).values(**values))


def update_messages(conn: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
    """Apply per-row updates, each a dict with "id" and the same other keys (one executemany)."""
    if not updates:
        return
    keys = [k for k in updates[0] if k != "id"]
    statement = (update(outbound_messages).where(outbound_messages.c.id == bindparam("_id"))
                 .values({k: bindparam(f"_v_{k}") for k in keys}))
    conn.execute(statement, [{"_id": u["id"], **{f"_v_{k}": u[k] for k in keys}} for u in updates])


def add_attempts(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(delivery_attempts.insert(), list(rows))


def attempts_for(conn: Connection, message_id: str) -> list[Row[Any]]:
    query = (select(delivery_attempts).where(delivery_attempts.c.outbound_id == message_id)
             .order_by(delivery_attempts.c.id))
    return list(conn.execute(query))


def list_messages(conn: Connection, *, account_id: str | None = None, channel: str | None = None,
                  limit: int = 50) -> list[Row[Any]]:
    """Newest first, for the outbox page and CLI."""
    query = select(*_SUMMARY)
    if account_id is not None:
        query = query.where(outbound_messages.c.account_id == account_id)
    if channel is not None:
        query = query.where(outbound_messages.c.channel == channel)
    query = query.order_by(outbound_messages.c.created.desc(), outbound_messages.c.id.desc()).limit(limit)
    return list(conn.execute(query))


def count_by_status(conn: Connection, account_id: str) -> dict[str, int]:
    query = (select(outbound_messages.c.status, func.count()).where(outbound_messages.c.account_id == account_id)
             .group_by(outbound_messages.c.status))
    return {status: int(n) for status, n in conn.execute(query)}


# --- bounces --------------------------------------------------------------------------------------


def insert_bounce(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Record a bounce or complaint; False when this message already has one of this kind."""
    statement = (_insert(conn)(bounce_records).values(**values)
                 .on_conflict_do_nothing(index_elements=["outbound_id", "kind"]).returning(bounce_records.c.id))
    return conn.execute(statement).first() is not None


def soft_bounces_since_last_delivery(conn: Connection, account_id: str, profile_id: str) -> int:
    """Consecutive soft bounces: those after the profile's most recent delivered email."""
    last_delivered = (select(func.max(outbound_messages.c.sent_at))
                      .where(outbound_messages.c.profile_id == profile_id, outbound_messages.c.channel == "email",
                             outbound_messages.c.status == "sent")
                      .scalar_subquery())
    query = select(func.count()).select_from(bounce_records).where(
        bounce_records.c.account_id == account_id, bounce_records.c.profile_id == profile_id,
        bounce_records.c.kind == "soft",
        (last_delivered.is_(None)) | (bounce_records.c.created > last_delivered))
    return int(conn.execute(query).scalar_one())


def bounces_for(conn: Connection, message_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(bounce_records).where(bounce_records.c.outbound_id == message_id)))


# --- inbound messages ---------------------------------------------------------------------------------


def insert_inbound(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Record an inbound message; False when the provider already delivered this one (same id)."""
    if values.get("provider_id") is None:
        conn.execute(inbound_messages.insert().values(**values))
        return True
    statement = (_insert(conn)(inbound_messages).values(**values)
                 .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
                 .returning(inbound_messages.c.id))
    return conn.execute(statement).first() is not None


def inbound_for(conn: Connection, account_id: str, limit: int = 50) -> list[Row[Any]]:
    query = (select(inbound_messages).where(inbound_messages.c.account_id == account_id)
             .order_by(inbound_messages.c.received.desc(), inbound_messages.c.id.desc()).limit(limit))
    return list(conn.execute(query))


# --- tracking settings -----------------------------------------------------------------------------


def get_tracking_settings(conn: Connection, account_id: str) -> Row[Any] | None:
    return conn.execute(select(tracking_settings).where(tracking_settings.c.account_id == account_id)).first()


def upsert_tracking_settings(conn: Connection, account_id: str, auto_add: bool, parameters: dict[str, Any],
                             now: datetime) -> None:
    values = {"account_id": account_id, "auto_add_parameters": auto_add, "parameters": parameters, "updated": now}
    statement = _insert(conn)(tracking_settings).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id"],
        set_={"auto_add_parameters": auto_add, "parameters": parameters, "updated": now})
    conn.execute(statement)

