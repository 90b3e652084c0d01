"""Queries for accounts and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from menura.store.tables import accounts, api_keys, metadata


def insert_account(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(accounts).values(**values))


def get_account(conn: Connection, account_id: str) -> Row[Any] | None:
    return conn.execute(select(accounts).where(accounts.c.id == account_id)).first()


def list_accounts(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(accounts).order_by(accounts.c.created)).all())


def account_exists(conn: Connection, account_id: str) -> bool:
    return conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is not None


def insert_key(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(api_keys).values(**values))


def find_key_by_hash(conn: Connection, key_hash: str) -> Row[Any] | None:
    return conn.execute(
        select(api_keys.c.id, api_keys.c.account_id, api_keys.c.scopes, api_keys.c.revoked_at)
        .where(api_keys.c.key_hash == key_hash)
    ).first()


def list_keys(conn: Connection, account_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(api_keys).where(api_keys.c.account_id == account_id)
                             .order_by(api_keys.c.created)).all())


def revoke_key(conn: Connection, *, key_id: str | None, key_hash: str | None, when: datetime) -> int:
    stmt = update(api_keys).where(api_keys.c.revoked_at.is_(None))
    stmt = stmt.where(api_keys.c.id == key_id) if key_id else stmt.where(api_keys.c.key_hash == key_hash)
    return conn.execute(stmt.values(revoked_at=when)).rowcount


def delete_account_data(conn: Connection, account_id: str) -> None:
    """Remove every row the account owns except the account itself and its keys."""
    keep = {"accounts", "api_keys"}
    for table in reversed(metadata.sorted_tables):
        if table.name in keep or "account_id" not in table.c:
            continue
        conn.execute(delete(table).where(table.c.account_id == account_id))
