"""Keyset pagination: pages are cut at (sort value, id) boundaries, never by OFFSET,
so rows inserted while a client pages through a listing don't shift or repeat pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, tuple_
from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class Page:
    rows: list[Row[Any]]
    has_next: bool
    has_prev: bool


def fetch_page(
    conn: Connection,
    stmt: Select[Any],
    *,
    sort_column: ColumnElement[Any],
    id_column: ColumnElement[Any],
    descending: bool,
    size: int,
    boundary: Sequence[Any] | None = None,
    direction: str = "next",
) -> Page:
    """Rows after (`next`) or before (`prev`) `boundary` in the listing's order."""
    key = tuple_(sort_column, id_column)
    backwards = direction == "prev"
    # Walking backwards is walking forwards in the reversed order, then flipping the result.
    reverse = descending != backwards
    if boundary is not None:
        stmt = stmt.where(key < tuple_(*boundary) if reverse else key > tuple_(*boundary))
    if reverse:
        stmt = stmt.order_by(sort_column.desc(), id_column.desc())
    else:
        stmt = stmt.order_by(sort_column.asc(), id_column.asc())
    rows = list(conn.execute(stmt.limit(size + 1)).all())
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        return Page(rows, has_next=boundary is not None, has_prev=more)
    return Page(rows, has_next=more, has_prev=boundary is not None)
