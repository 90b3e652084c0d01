"""Bulk profile import: `POST /api/profile-bulk-import-jobs` with 10,000 profiles per request (Klaviyo's
limit), every job polled until complete.

Our figure: profiles/s from the first request to the last job complete (every profile readable,
every list membership written). The limit, measured in the same run against the same database: the
same rows upserted straight into the profiles table (`INSERT ... ON CONFLICT (account_id, email)
DO UPDATE`, 1,000 rows per statement batch), with no HTTP, validation or identity resolution.

    python -m bench.profile_import [--size N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import httpx

from bench.common import database_label, make_account, menura_env, migrate, print_table, run_server, scratch_database

PER_REQUEST = 10_000
REVISION = "2026-07-15"


def profile(n: int, tag: str) -> dict[str, Any]:
    return {"type": "profile", "attributes": {
        "email": f"{tag}-{n}@example.com", "first_name": f"First{n}", "last_name": f"Last{n}",
        "location": {"city": "Boston", "country": "US"},
        "properties": {"plan": "gold" if n % 3 else "silver", "visits": n % 17, "newsletter": n % 2 == 0}}}


def import_through_api(url: str, key: str, size: int) -> float:
    """Seconds from the first request to every job complete."""
    headers = {"Authorization": f"Klaviyo-API-Key {key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        list_id = client.post("/api/lists", json={"data": {"type": "list", "attributes": {
            "name": "Imported", "opt_in_process": "single_opt_in"}}}).json()["data"]["id"]
        started = time.perf_counter()
        jobs = []
        for start in range(0, size, PER_REQUEST):
            rows = [profile(n, "api") for n in range(start, min(start + PER_REQUEST, size))]
            body = {"data": {"type": "profile-bulk-import-job",
                             "attributes": {"profiles": {"data": rows}},
                             "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}}}}
            response = client.post("/api/profile-bulk-import-jobs", json=body)
            response.raise_for_status()
            jobs.append(response.json()["data"]["id"])
        pending = list(jobs)
        while pending:
            job = client.get(f"/api/profile-bulk-import-jobs/{pending[0]}").json()["data"]["attributes"]
            if job["status"] == "complete":
                if job["failed_count"]:
                    raise RuntimeError(f"job {pending[0]} reported {job['failed_count']} failed rows")
                pending.pop(0)
            else:
                time.sleep(0.05)
        return time.perf_counter() - started


def raw_upsert(database_url: str, size: int) -> float:
    """The limit: the same rows, upserted directly (fresh account, so inserts as in our run)."""
    from datetime import UTC, datetime

    from sqlalchemy.dialects import postgresql, sqlite

    from menura import ids
    from menura.store.db import Database
    from menura.store.profile_tables import profiles

    account_id, _ = make_account(database_url)
    db = Database(database_url)
    dialect = postgresql if db.dialect == "postgresql" else sqlite
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, size, 1000):
        rows = []
        for n in range(start, min(start + 1000, size)):
            attrs = profile(n, "raw")["attributes"]
            rows.append({"id": ids.ulid(), "account_id": account_id, "email": attrs["email"],
                         "first_name": attrs["first_name"], "last_name": attrs["last_name"],
                         "location": attrs["location"], "properties": attrs["properties"],
                         "created": now, "updated": now})
        statement = dialect.insert(profiles)
        statement = statement.on_conflict_do_update(
            index_elements=["account_id", "email"],
            set_={"first_name": statement.excluded.first_name, "last_name": statement.excluded.last_name,
                  "location": statement.excluded.location, "properties": statement.excluded.properties,
                  "updated": statement.excluded.updated})
        with db.write() as conn:
            conn.execute(statement, rows)
    elapsed = time.perf_counter() - started
    db.dispose()
    return elapsed


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="profiles to import (default 100,000)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args(argv)
    with scratch_database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        migrate(url)
        _, key = make_account(url)
        with run_server("menura.app:factory", factory=True, env=menura_env(url, tmp)) as server:
            ours = args.size / import_through_api(server.url, key, args.size)
        limit = args.size / raw_upsert(url, args.size)
    rows = [(f"profile bulk import ({database_label(url)})", f"{args.size:,} profiles",
             f"{ours:,.0f} profiles/s", f"{limit:,.0f} rows/s (raw ON CONFLICT upsert)", f"{ours / limit:.0%}")]
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
