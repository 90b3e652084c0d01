"""Queries for templates and universal content."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, select, update

from menura.store.template_tables import templates, universal_content


def insert_template(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(templates).values(**values))


def template_exists(conn: Connection, template_id: str) -> bool:
    return conn.execute(select(templates.c.id).where(templates.c.id == template_id)).first() is not None


def get_template(conn: Connection, account_id: str, template_id: str, *, for_update: bool = False) -> Row[Any] | None:
    stmt = select(templates).where(templates.c.account_id == account_id, templates.c.id == template_id)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def count_templates(conn: Connection, account_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(templates)
                            .where(templates.c.account_id == account_id)).scalar_one())


def update_template(conn: Connection, account_id: str, template_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(templates).where(templates.c.account_id == account_id, templates.c.id == template_id)
                 .values(**values))


def delete_template(conn: Connection, account_id: str, template_id: str) -> bool:
    result = conn.execute(delete(templates).where(templates.c.account_id == account_id,
                                                  templates.c.id == template_id))
    return result.rowcount > 0


def templates_select(account_id: str) -> Select[Any]:
    return select(templates).where(templates.c.account_id == account_id)


# --------------------------------------------------------------------------- universal content

def insert_universal(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(universal_content).values(**values))


def get_universal(conn: Connection, account_id: str, content_id: str) -> Row[Any] | None:
    return conn.execute(select(universal_content).where(universal_content.c.account_id == account_id,
                                                        universal_content.c.id == content_id)).first()


def get_universal_many(conn: Connection, account_id: str, content_ids: Iterable[str]) -> list[Row[Any]]:
    wanted = list(set(content_ids))
    if not wanted:
        return []
    return list(conn.execute(select(universal_content).where(universal_content.c.account_id == account_id,
                                                             universal_content.c.id.in_(wanted))).all())


def update_universal(conn: Connection, account_id: str, content_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(universal_content)
                 .where(universal_content.c.account_id == account_id, universal_content.c.id == content_id)
                 .values(**values))


def delete_universal(conn: Connection, account_id: str, content_id: str) -> bool:
    result = conn.execute(delete(universal_content).where(universal_content.c.account_id == account_id,
                                                          universal_content.c.id == content_id))
    return result.rowcount > 0


def universal_select(account_id: str) -> Select[Any]:
    return select(universal_content).where(universal_content.c.account_id == account_id)
