"""Queries for web feeds and their cached content."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, insert, select, update

from menura.store.template_tables import web_feeds

# Listing and reading a feed never needs its cached content, which may be megabytes.
_META = [c for c in web_feeds.c if c.key != "content"]


def insert_feed(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(web_feeds).values(**values))


def feed_exists(conn: Connection, feed_id: str) -> bool:
    return conn.execute(select(web_feeds.c.id).where(web_feeds.c.id == feed_id)).first() is not None


def get_feed(conn: Connection, account_id: str, feed_id: str) -> Row[Any] | None:
    return conn.execute(select(*_META).where(web_feeds.c.account_id == account_id,
                                             web_feeds.c.id == feed_id)).first()


def get_feed_any_account(conn: Connection, feed_id: str) -> Row[Any] | None:
    return conn.execute(select(*_META).where(web_feeds.c.id == feed_id)).first()


def name_taken(conn: Connection, account_id: str, name: str, *, except_id: str | None = None) -> bool:
    stmt = select(web_feeds.c.id).where(web_feeds.c.account_id == account_id, web_feeds.c.name == name)
    if except_id is not None:
        stmt = stmt.where(web_feeds.c.id != except_id)
    return conn.execute(stmt).first() is not None


def update_feed(conn: Connection, account_id: str, feed_id: str, values: dict[str, Any]) -> int:
    return conn.execute(update(web_feeds).where(web_feeds.c.account_id == account_id, web_feeds.c.id == feed_id)
                        .values(**values)).rowcount


def delete_feed(conn: Connection, account_id: str, feed_id: str) -> bool:
    return conn.execute(delete(web_feeds).where(web_feeds.c.account_id == account_id,
                                                web_feeds.c.id == feed_id)).rowcount > 0


def feed_contents(conn: Connection, account_id: str, names: Iterable[str]) -> dict[str, Any]:
    """Cached content of the named feeds (those never fetched are absent)."""
    wanted = list(set(names))
    if not wanted:
        return {}
    rows = conn.execute(select(web_feeds.c.name, web_feeds.c.content).where(
        web_feeds.c.account_id == account_id, web_feeds.c.name.in_(wanted), web_feeds.c.content.is_not(None)))
    return {row.name: row.content for row in rows}


def feeds_select(account_id: str) -> Select[Any]:
    return select(*_META).where(web_feeds.c.account_id == account_id)
