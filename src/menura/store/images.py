"""Queries for image records (the bytes live in an ImageStorage)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, Select, insert, select, update

from menura.store.template_tables import images


def insert_image(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(insert(images).values(**values).returning(images.c.id)).scalar_one())


def get_image(conn: Connection, account_id: str, image_id: int) -> Row[Any] | None:
    return conn.execute(select(images).where(images.c.account_id == account_id, images.c.id == image_id)).first()


def names_like(conn: Connection, account_id: str, stem: str) -> set[str]:
    """Existing names that start with `stem` (candidates for a clash)."""
    escaped = stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(select(images.c.name).where(images.c.account_id == account_id,
                                                    images.c.name.like(escaped + "%", escape="\\")))
    return {row.name for row in rows}


def name_taken(conn: Connection, account_id: str, name: str, *, except_id: int | None = None) -> bool:
    stmt = select(images.c.id).where(images.c.account_id == account_id, images.c.name == name)
    if except_id is not None:
        stmt = stmt.where(images.c.id != except_id)
    return conn.execute(stmt).first() is not None


def update_image(conn: Connection, account_id: str, image_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(images).where(images.c.account_id == account_id, images.c.id == image_id).values(**values))


def find_by_storage_key(conn: Connection, account_id: str, storage_key: str) -> Row[Any] | None:
    return conn.execute(select(images).where(images.c.account_id == account_id,
                                             images.c.storage_key == storage_key)).first()


def images_select(account_id: str) -> Select[Any]:
    return select(images).where(images.c.account_id == account_id)
