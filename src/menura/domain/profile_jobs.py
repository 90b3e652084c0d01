"""Profile bulk jobs: what a job request must satisfy, and how a job is accepted durably (its row,
its input and its work item in one transaction, before the 202).

Klaviyo's limits (operation descriptions of its API reference):
- bulk import: up to 10,000 profiles per request, 5 MB per request, 100 KB per profile;
- bulk suppress / unsuppress: up to 100 email addresses per request, or a list or segment whose
  current members are all suppressed (unsuppressing removes USER_SUPPRESSED suppressions only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, Row

from menura import ids
from menura.domain import identity
from menura.domain import lists as list_rules
from menura.jsonapi import errors
from menura.store import lists as list_store
from menura.store import profile_jobs as store
from menura.store import work
from menura.store.db import Database

IMPORT = "import"
SUPPRESS = "suppress"
UNSUPPRESS = "unsuppress"

# Work item kinds (handlers in menura.engine.profile_jobs).
IMPORT_KIND = "profiles.bulk_import"
SUPPRESS_KIND = "profiles.bulk_suppress"
UNSUPPRESS_KIND = "profiles.bulk_unsuppress"
KINDS = {IMPORT: IMPORT_KIND, SUPPRESS: SUPPRESS_KIND, UNSUPPRESS: UNSUPPRESS_KIND}

MAX_IMPORT_PROFILES = 10_000
MAX_PROFILE_BYTES = 100 * 1024
MAX_SUPPRESSION_EMAILS = 100
# How long a finished job stays readable, shown as `expires_at`.
JOB_RETENTION = timedelta(days=7)

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class SegmentSource:
    """How bulk suppression reads a segment; registered by the segments area."""

    exists: Callable[[Connection, str, str], bool]
    member_count: Callable[[Connection, str, str], int]
    # (conn, account id, segment id, after profile id or None, limit) -> member ids in id order
    member_ids_after: Callable[[Connection, str, str, str | None, int], list[str]]


# The segments area's stored memberships; replaceable (e.g. by a segments engine with its own view).
SEGMENT_SOURCE: SegmentSource | None = SegmentSource(exists=store.segment_exists,
                                                    member_count=store.segment_member_count,
                                                    member_ids_after=store.segment_member_ids_after)


def segment_not_found(segment_id: str) -> errors.ApiError:
    err = errors.not_found(f"A segment with id '{segment_id}' does not exist.")
    err.pointer = "/data/relationships/segment/data/id"
    return err


# --------------------------------------------------------------------------- bulk import


def check_import_rows(rows: Sequence[dict[str, Any]]) -> None:
    """The request-level limits; a row's own content is checked when the job runs, so one bad
    row is reported in the job's import errors instead of rejecting the others."""
    pointer = "/data/attributes/profiles/data"
    if not rows:
        raise errors.invalid("At least one profile is required.", pointer=pointer)
    if len(rows) > MAX_IMPORT_PROFILES:
        raise errors.invalid(f"At most {MAX_IMPORT_PROFILES} profiles can be imported per request; "
                             f"{len(rows)} were sent.", pointer=pointer)
    for index, row in enumerate(rows):
        size = len(_ENCODER.encode(row))
        if size > MAX_PROFILE_BYTES:
            raise errors.invalid(f"A profile can be at most {MAX_PROFILE_BYTES // 1024} KB; this one is "
                                 f"{size // 1024} KB.", pointer=f"{pointer}/{index}")


def create_import_job(db: Database, account_id: str, now: datetime, *, rows: list[dict[str, Any]],
                      list_ids: Sequence[str]) -> Row[Any]:
    unique_lists = list(dict.fromkeys(list_ids))
    with db.write() as conn:
        existing = list_store.existing_list_ids(conn, account_id, unique_lists)
        for index, list_id in enumerate(list_ids):
            if list_id not in existing:
                raise list_rules.list_not_found(list_id, pointer=f"/data/relationships/lists/data/{index}/id")
        return _insert_job(conn, account_id, now, kind=IMPORT, rows=rows, total=len(rows), list_ids=unique_lists)


def _insert_job(conn: Connection, account_id: str, now: datetime, *, kind: str, rows: list[Any], total: int,
                list_ids: list[str], list_id: str | None = None, segment_id: str | None = None) -> Row[Any]:
    job_id = ids.ulid()
    store.insert_job(conn, {
        "id": job_id, "account_id": account_id, "kind": kind, "status": "queued", "total_count": total,
        "completed_count": 0, "failed_count": 0, "skipped_count": 0, "list_ids": list_ids,
        "list_id": list_id, "segment_id": segment_id, "created_at": now,
    }, rows)
    item_id = work.enqueue(conn, kind=KINDS[kind], payload={"job_id": job_id}, now=now, account_id=account_id)
    store.set_work_item(conn, job_id, item_id)
    row = store.get_job_by_id(conn, job_id)
    assert row is not None
    return row


# --------------------------------------------------------------------------- bulk suppress / unsuppress


def create_suppression_job(db: Database, account_id: str, now: datetime, *, kind: str, emails: list[Any] | None,
                           list_id: str | None, segment_id: str | None) -> Row[Any]:
    """By emails, or by every current member of one list or segment (exactly one of the three)."""
    sources = [name for name, value in (("profiles", emails), ("list", list_id), ("segment", segment_id))
               if value is not None]
    if len(sources) != 1:
        raise errors.invalid("Provide either profiles (by email), a list or a segment, and only one of them.",
                             pointer="/data")
    normalized: list[str] = []
    if emails is not None:
        pointer = "/data/attributes/profiles/data"
        if not emails:
            raise errors.invalid("At least one profile is required.", pointer=pointer)
        if len(emails) > MAX_SUPPRESSION_EMAILS:
            raise errors.invalid(f"At most {MAX_SUPPRESSION_EMAILS} email addresses can be sent per request; "
                                 f"{len(emails)} were sent.", pointer=pointer)
        for index, email in enumerate(emails):
            where = f"{pointer}/{index}/attributes/email"
            if not isinstance(email, str):
                raise errors.invalid("'email' must be a string.", pointer=where)
            normalized.append(identity.normalize_email(email, pointer=where))
        normalized = list(dict.fromkeys(normalized))
    with db.write() as conn:
        total = len(normalized)
        if list_id is not None:
            list_rules.get_list(conn, account_id, list_id, pointer="/data/relationships/list/data/id")
            total = list_store.member_counts(conn, [list_id])[list_id]
        if segment_id is not None:
            if SEGMENT_SOURCE is None or not SEGMENT_SOURCE.exists(conn, account_id, segment_id):
                raise segment_not_found(segment_id)
            total = SEGMENT_SOURCE.member_count(conn, account_id, segment_id)
        return _insert_job(conn, account_id, now, kind=kind, rows=normalized, total=total,
                           list_ids=[list_id] if list_id else [], list_id=list_id, segment_id=segment_id)
