"""Small shared facts (signing secret, virtual clock) kept in the database for every process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from menura.store.tables import server_state


def get_value(conn: Connection, key: str) -> Any | None:
    return conn.execute(select(server_state.c.value).where(server_state.c.key == key)).scalar_one_or_none()


def set_value(conn: Connection, key: str, value: Any) -> None:
    if conn.execute(update(server_state).where(server_state.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(server_state).values(key=key, value=value))


def get_or_create(conn: Connection, key: str, make: Any) -> Any:
    """Read a value, creating it with `make()` on first use (inside the caller's write transaction)."""
    value = get_value(conn, key)
    if value is None:
        value = make()
        set_value(conn, key, value)
    return value
