"""The migrations build exactly the schema the table modules declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from menura.store.db import Database
from menura.store.migrate import upgrade
from menura.store.schema import metadata


def test_migrated_schema_matches_the_tables(database_url, tmp_path):
    url = database_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
    db = Database(url)
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(context, metadata)
        # Only tables the migrations manage: a shared PostgreSQL test schema holds nothing else.
        assert diff == [], "\n".join(map(str, diff))
    finally:
        db.dispose()
