"""SQL for the Profiles category's bulk jobs: job rows, their inputs, per-row errors and the
profiles each job touched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from menura.store import planner_stats
from menura.store.list_tables import (
    profile_bulk_job_errors,
    profile_bulk_job_inputs,
    profile_bulk_job_profiles,
    profile_bulk_jobs,
)

jobs = profile_bulk_jobs
errors_table = profile_bulk_job_errors
job_profiles = profile_bulk_job_profiles


def insert_job(conn: Connection, values: dict[str, Any], rows: list[Any]) -> None:
    conn.execute(insert(jobs).values(values))
    conn.execute(insert(profile_bulk_job_inputs).values(job_id=values["id"], rows=rows))


def set_work_item(conn: Connection, job_id: str, work_item_id: int) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(work_item_id=work_item_id))


def get_job(conn: Connection, account_id: str, kind: str, job_id: str) -> Row[Any] | None:
    query = select(jobs).where(jobs.c.account_id == account_id, jobs.c.kind == kind, jobs.c.id == job_id)
    return conn.execute(query).first()


def get_job_by_id(conn: Connection, job_id: str) -> Row[Any] | None:
    return conn.execute(select(jobs).where(jobs.c.id == job_id)).first()


def job_input(conn: Connection, job_id: str) -> list[Any]:
    rows = conn.execute(select(profile_bulk_job_inputs.c.rows).where(
        profile_bulk_job_inputs.c.job_id == job_id)).scalar_one_or_none()
    return list(rows or [])


def drop_input(conn: Connection, job_id: str) -> None:
    conn.execute(delete(profile_bulk_job_inputs).where(profile_bulk_job_inputs.c.job_id == job_id))


def jobs_select(account_id: str, kind: str) -> Select[Any]:
    return select(jobs).where(jobs.c.account_id == account_id, jobs.c.kind == kind)


def update_job(conn: Connection, job_id: str, **values: Any) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def add_counts(conn: Connection, job_id: str, *, completed: int = 0, failed: int = 0, skipped: int = 0) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        completed_count=jobs.c.completed_count + completed,
        failed_count=jobs.c.failed_count + failed,
        skipped_count=jobs.c.skipped_count + skipped,
    ))


def mark_started(conn: Connection, job_id: str, now: datetime) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "queued")
                 .values(status="processing", started_at=now))


def insert_errors(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(errors_table), list(rows))


def errors_select(job_id: str) -> Select[Any]:
    return select(errors_table).where(errors_table.c.job_id == job_id)


def _dialect_insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def add_job_profiles(conn: Connection, job_id: str, profile_ids: Sequence[str]) -> None:
    """Remember which profiles the job touched; a profile imported twice is listed once."""
    unique = list(dict.fromkeys(profile_ids))
    if not unique:
        return
    statement = _dialect_insert(conn)(job_profiles).on_conflict_do_nothing(
        index_elements=["job_id", "profile_id"])
    conn.execute(statement, [{"job_id": job_id, "profile_id": pid} for pid in unique])


def job_profiles_select(job_id: str) -> Select[Any]:
    return select(job_profiles.c.profile_id).where(job_profiles.c.job_id == job_id)


# --------------------------------------------------------------------------- bulk import fast path


def secondary_email_holders(conn: Connection, account_id: str, emails: Sequence[str]) -> set[str]:
    """The emails some profile of the account holds as a secondary address."""
    from menura.store.profile_tables import profile_secondary_emails as secondary

    found: set[str] = set()
    for start in range(0, len(emails), 900):
        query = select(secondary.c.email).where(secondary.c.account_id == account_id,
                                                secondary.c.email.in_(list(emails[start:start + 900])))
        found.update(conn.execute(query).scalars())
    return found


def insert_profiles(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """New profile rows in one executemany (rows built by menura.domain.profiles.new_profile_values)."""
    from menura.store.profile_tables import profiles

    if rows:
        conn.execute(insert(profiles), list(rows))
        planner_stats.note_rows_added(conn, "profiles", len(rows))


# --------------------------------------------------------------------------- segments (bulk suppression)


def segment_exists(conn: Connection, account_id: str, segment_id: str) -> bool:
    from menura.store.segment_tables import segments

    query = select(segments.c.id).where(segments.c.account_id == account_id, segments.c.id == segment_id)
    return conn.execute(query).first() is not None


def segment_member_count(conn: Connection, account_id: str, segment_id: str) -> int:
    from sqlalchemy import func

    from menura.store.segment_tables import segment_members

    query = select(func.count()).select_from(segment_members).where(
        segment_members.c.account_id == account_id, segment_members.c.segment_id == segment_id)
    return int(conn.execute(query).scalar_one())


def segment_member_ids_after(conn: Connection, account_id: str, segment_id: str, after: str | None,
                             limit: int) -> list[str]:
    """Current members of a segment in id order after `after`: walks a whole segment in batches."""
    from menura.store.segment_tables import segment_members

    query = select(segment_members.c.profile_id).where(segment_members.c.account_id == account_id,
                                                       segment_members.c.segment_id == segment_id)
    if after is not None:
        query = query.where(segment_members.c.profile_id > after)
    return list(conn.execute(query.order_by(segment_members.c.profile_id).limit(limit)).scalars())
