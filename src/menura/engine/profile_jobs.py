"""Durable handlers of the profile bulk jobs: import, suppress, unsuppress, subscribe, unsubscribe.

Each handler works in batches. A batch's effects, the job's counters, its per-row errors and the
work item's checkpoint commit in one transaction, so a worker killed mid-job resumes at the last
committed batch without doing any row twice. Every row runs in a savepoint: a row that fails is
rolled back alone, recorded, and never blocks the rows after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from menura import ids
from menura.domain import consent, subscriptions
from menura.domain import lists as list_rules
from menura.domain import profile_jobs as job_rules
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import lists as list_store
from menura.store import profile_jobs as store
from menura.store import server_state
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler

log = logging.getLogger(__name__)

IMPORT_BATCH = 1000
SUPPRESSION_BATCH = 500
SUBSCRIPTION_BATCH = 100



def _secret(conn: Connection) -> bytes | None:
    """The server secret (for `_kx` identifiers): the setting, else the one stored at first start."""
    from menura.settings import get_settings

    configured = get_settings().secret_key
    if configured:
        return configured.encode()
    value = server_state.get_value(conn, "secret_key")
    return value.encode() if value else None


def _in_savepoint(conn: Connection, action: Callable[..., Any], *args: Any, **kwargs: Any
                  ) -> tuple[Any, ApiError | Exception | None]:
    """Run one row's work alone: on failure only its own writes are undone."""
    savepoint = conn.begin_nested()
    try:
        result = action(*args, **kwargs)
    except ApiError as err:
        savepoint.rollback()
        return None, err
    except Exception as exc:  # a row must never stop the job; the error is kept with the row
        savepoint.rollback()
        log.exception("bulk job row failed")
        return None, exc
    savepoint.commit()
    return result, None


def _finish(conn: Connection, ctx: WorkContext, job_id: str, now: datetime, *, total: int | None = None) -> None:
    values: dict[str, Any] = {"status": "complete", "completed_at": now,
                              "expires_at": now + job_rules.JOB_RETENTION}
    if total is not None:
        values["total_count"] = total
    store.update_job(conn, job_id, **values)
    store.drop_input(conn, job_id)
    ctx.complete(conn)


def _load(ctx: WorkContext, item: WorkItem) -> tuple[Row[Any] | None, list[Any]]:
    with ctx.db.read() as conn:
        job = store.get_job_by_id(conn, item.payload["job_id"])
        rows = store.job_input(conn, job.id) if job is not None else []
    return job, rows


# --------------------------------------------------------------------------- bulk import


def _strip_nulls(attrs: Any) -> Any:
    """Bulk import never clears a field with null (Klaviyo: only non-null values are written)."""
    if not isinstance(attrs, dict):
        return attrs
    out = {k: v for k, v in attrs.items() if v is not None}
    if isinstance(out.get("location"), dict):
        out["location"] = {k: v for k, v in out["location"].items() if v is not None}
    return out


def _rebase(pointer: str | None, index: int) -> str:
    """A pointer into one profile's own document -> the pointer into the import request."""
    base = f"/data/attributes/profiles/data/{index}"
    if pointer is None or not pointer.startswith("/data"):
        return base
    return base + pointer[len("/data"):]


def _import_attributes() -> frozenset[str]:
    from menura.domain.profiles import ATTRIBUTE_FIELDS

    # The import's profile schema (ProfileUpsertQueryResourceObject) has no anonymous_id.
    return frozenset(ATTRIBUTE_FIELDS - {"anonymous_id"})


IMPORT_ATTRIBUTES = _import_attributes()


def _parse_row(row: dict[str, Any]) -> Any:
    """A row's ProfileInput (400-style ApiError with a pointer relative to the row's own document)."""
    from menura.domain.profiles import profile_input_from_attributes

    profile_id = row.get("id")
    if profile_id is not None and not isinstance(profile_id, str):
        raise errors.invalid("'id' must be a string.", pointer="/data/id")
    return profile_input_from_attributes(_strip_nulls(row.get("attributes")), meta=row.get("meta"),
                                         profile_id=profile_id, allowed=IMPORT_ATTRIBUTES)


def _import_row(conn: Connection, account_id: str, data: Any, now: datetime, secret: bytes | None) -> str:
    from menura.domain.profiles import upsert_profile

    imported_id, _created = upsert_profile(conn, account_id=account_id, data=data, now=now, secret=secret)
    return imported_id


def _identifier_keys(data: Any) -> set[tuple[str, str]]:
    return set(data.identifiers().items())


def _independent_new_rows(conn: Connection, account_id: str, parsed: list[tuple[int, Any]]) -> set[int]:
    """Rows that certainly create a new profile touching nothing else: plain identifiers (no id, _kx or
    secondary-email patch), none held by an existing profile, none shared with another row of the
    batch. For them identity resolution is exactly "insert", so they can be inserted together; every
    other row goes through resolution one by one, in order."""
    from menura.store import profiles as profile_store

    counts: dict[tuple[str, str], int] = {}
    for _index, data in parsed:
        for key in _identifier_keys(data):
            counts[key] = counts.get(key, 0) + 1
    by_name: dict[str, set[str]] = {}
    for name, value in counts:
        by_name.setdefault(name, set()).add(value)
    held: set[tuple[str, str]] = set()
    for name, values in by_name.items():
        held.update((name, value) for value in profile_store.find_ids_by(conn, account_id, name, values))
    held.update(("email", e) for e in store.secondary_email_holders(conn, account_id, sorted(by_name.get("email", ()))))
    independent: set[int] = set()
    for index, data in parsed:
        keys = _identifier_keys(data)
        if (keys and data.id is None and data.kx is None and not data.add_emails and not data.remove_emails
                and not keys & held and all(counts[key] == 1 for key in keys)):
            independent.add(index)
    return independent


def _import_batch(conn: Connection, job: Row[Any], rows: list[dict[str, Any]], start: int, upto: int,
                  now: datetime, secret: bytes | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Apply rows[start:upto]; returns (profile ids imported, error rows)."""
    from menura.domain.profiles import new_profile_values, profile_changed

    imported: list[str] = []
    failures: list[dict[str, Any]] = []
    parsed: list[tuple[int, Any]] = []
    for index in range(start, upto):
        try:
            parsed.append((index, _parse_row(rows[index])))
        except ApiError as err:
            failures.append(_error_row(job.id, index, rows[index], err))
    fast = _independent_new_rows(conn, job.account_id, parsed)
    new_rows = [new_profile_values(job.account_id, data, now) for index, data in parsed if index in fast]
    try:
        with conn.begin_nested():
            store.insert_profiles(conn, new_rows)
    except IntegrityError:
        # A concurrent writer took one of the identifiers after the lookup: resolve them one by one.
        fast = set()
    else:
        imported.extend(values["id"] for values in new_rows)
        for values in new_rows:
            profile_changed(conn, job.account_id, values["id"])
    for index, data in parsed:
        if index in fast:
            continue
        profile_id, err = _in_savepoint(conn, _import_row, conn, job.account_id, data, now, secret)
        if err is None:
            imported.append(profile_id)
        else:
            failures.append(_error_row(job.id, index, rows[index], err))
    return imported, failures


def _error_row(job_id: str, index: int, row: dict[str, Any], err: ApiError | Exception) -> dict[str, Any]:
    if isinstance(err, ApiError):
        code, title, detail, pointer = err.code, err.title, err.detail, _rebase(err.pointer, index)
    else:
        code, title, detail, pointer = "error", "A server error occurred.", "The profile could not be imported.", \
            _rebase(None, index)
    payload = row.get("attributes")
    return {"id": ids.uuid4(), "job_id": job_id, "row_index": index, "code": code, "title": title[:255],
            "detail": detail, "pointer": pointer, "original_payload": payload if isinstance(payload, dict) else None}


@work_handler(job_rules.IMPORT_KIND)
def run_import(ctx: WorkContext, item: WorkItem) -> None:
    job, rows = _load(ctx, item)
    if job is None:
        return
    position = int((item.progress or {}).get("next", 0))
    while True:
        upto = min(position + IMPORT_BATCH, len(rows))
        now = ctx.now()
        with ctx.db.write() as conn:
            secret = _secret(conn)
            store.mark_started(conn, job.id, now)
            imported, failures = _import_batch(conn, job, rows, position, upto, now, secret)
            existing_lists = list_store.existing_list_ids(conn, job.account_id, job.list_ids)
            for list_id in job.list_ids:
                if list_id in existing_lists:
                    # Which profiles are new members only matters to membership hooks (segments).
                    report = bool(list_rules.LIST_MEMBERSHIP_HOOKS)
                    added = list_store.add_members(conn, job.account_id, list_id, imported, now, report=report)
                    list_rules.membership_changed(conn, job.account_id, list_id, added)
            store.add_job_profiles(conn, job.id, imported)
            store.insert_errors(conn, failures)
            store.add_counts(conn, job.id, completed=len(imported), failed=len(failures))
            if upto >= len(rows):
                _finish(conn, ctx, job.id, now)
                return
            ctx.checkpoint(conn, {"next": upto})
            if ctx.stopping:
                ctx.release(conn, {"next": upto})
                return
        position = upto


# --------------------------------------------------------------------------- bulk suppress / unsuppress


def _suppress(conn: Connection, account_id: str, profile_id: str, now: datetime, *, suppress: bool) -> bool:
    """True when the profile's suppression changed, False when it was skipped."""
    if suppress:
        return consent.suppress_email(conn, account_id=account_id, profile_id=profile_id,
                                      reason=consent.USER_SUPPRESSED, now=now)
    return consent.unsuppress_email(conn, account_id=account_id, profile_id=profile_id, now=now)


def _profile_for_email(conn: Connection, account_id: str, email: str, now: datetime, *, create: bool) -> str | None:
    from menura.domain.profiles import ProfileInput, resolve_profile
    from menura.store import profiles as profile_store

    found = profile_store.find_id_by(conn, account_id, "email", email) or \
        profile_store.find_id_by_secondary_email(conn, account_id, email)
    if found is not None or not create:
        return found
    # Klaviyo: "If a profile is not found with the given email, one will be created and immediately suppressed."
    profile_id, _ = resolve_profile(conn, account_id=account_id, data=ProfileInput(email=email), now=now,
                                    update=False)
    return profile_id


def _email_has_profile(conn: Connection, account_id: str, profile_id: str) -> bool:
    from menura.store import profiles as profile_store

    row = profile_store.get_profile(conn, account_id, profile_id)
    return row is not None and row.email is not None


def _suppress_email_row(conn: Connection, account_id: str, email: str, now: datetime, suppress: bool) -> bool:
    profile_id = _profile_for_email(conn, account_id, email, now, create=suppress)
    return profile_id is not None and _suppress(conn, account_id, profile_id, now, suppress=suppress)


def _email_batch(conn: Connection, job: Row[Any], emails: list[Any], position: int, now: datetime,
                 suppress: bool) -> tuple[int, int, int]:
    """One batch of a job by email addresses; returns (new position, changed, skipped)."""
    done = skipped = 0
    upto = min(position + SUPPRESSION_BATCH, len(emails))
    for email in emails[position:upto]:
        changed, _err = _in_savepoint(conn, _suppress_email_row, conn, job.account_id, email, now, suppress)
        done, skipped = (done + 1, skipped) if changed else (done, skipped + 1)
    return upto, done, skipped


def _member_ids_after(conn: Connection, job: Row[Any], after: str | None) -> list[str]:
    if job.list_id is not None:
        return list_store.member_ids_after(conn, job.list_id, after, SUPPRESSION_BATCH)
    source = job_rules.SEGMENT_SOURCE
    if source is None:
        return []
    return source.member_ids_after(conn, job.account_id, job.segment_id, after, SUPPRESSION_BATCH)


def _run_suppression(ctx: WorkContext, item: WorkItem, *, suppress: bool) -> None:
    job, rows = _load(ctx, item)
    if job is None:
        return
    progress = dict(item.progress or {"next": 0, "after": None})
    by_members = job.list_id is not None or job.segment_id is not None
    while True:
        now = ctx.now()
        with ctx.db.write() as conn:
            store.mark_started(conn, job.id, now)
            done = skipped = 0
            if by_members:
                member_ids = _member_ids_after(conn, job, progress.get("after"))
                for profile_id in member_ids:
                    changed = False
                    if _email_has_profile(conn, job.account_id, profile_id):
                        changed, _err = _in_savepoint(conn, _suppress, conn, job.account_id, profile_id, now,
                                                      suppress=suppress)
                    done, skipped = (done + 1, skipped) if changed else (done, skipped + 1)
                if member_ids:
                    progress["after"] = member_ids[-1]
                finished = len(member_ids) < SUPPRESSION_BATCH
            else:
                progress["next"], done, skipped = _email_batch(conn, job, rows, int(progress.get("next", 0)), now,
                                                               suppress)
                finished = progress["next"] >= len(rows)
            store.add_counts(conn, job.id, completed=done, skipped=skipped)
            progress["processed"] = int(progress.get("processed", 0)) + done + skipped
            if finished:
                _finish(conn, ctx, job.id, now, total=progress["processed"] if by_members else None)
                return
            ctx.checkpoint(conn, progress)
            if ctx.stopping:
                ctx.release(conn, progress)
                return


@work_handler(job_rules.SUPPRESS_KIND)
def run_suppress(ctx: WorkContext, item: WorkItem) -> None:
    _run_suppression(ctx, item, suppress=True)


@work_handler(job_rules.UNSUPPRESS_KIND)
def run_unsuppress(ctx: WorkContext, item: WorkItem) -> None:
    _run_suppression(ctx, item, suppress=False)


# --------------------------------------------------------------------------- bulk subscribe / unsubscribe


def _run_entries(ctx: WorkContext, item: WorkItem, apply: Callable[[Connection, Row[Any] | None, dict[str, Any],
                                                                     datetime], Any]) -> None:
    payload = item.payload
    entries: list[dict[str, Any]] = payload["entries"]
    position = int((item.progress or {}).get("next", 0))
    while True:
        upto = min(position + SUBSCRIPTION_BATCH, len(entries))
        now = ctx.now()
        with ctx.db.write() as conn:
            list_id = payload.get("list_id")
            # A list deleted since the request leaves the consent changes, without the list.
            list_row = list_store.get_list(conn, item.account_id or "", list_id) if list_id else None
            for index in range(position, upto):
                _result, err = _in_savepoint(conn, apply, conn, list_row, entries[index], now)
                if err is not None:
                    log.warning("work item %s: profile %s not applied: %s", item.id, index, err)
            if upto >= len(entries):
                ctx.complete(conn)
                return
            ctx.checkpoint(conn, {"next": upto})
            if ctx.stopping:
                ctx.release(conn, {"next": upto})
                return
        position = upto


@work_handler(subscriptions.SUBSCRIBE_KIND)
def run_subscribe(ctx: WorkContext, item: WorkItem) -> None:
    payload = item.payload
    account_id = item.account_id or ""
    with ctx.db.read() as conn:
        secret = _secret(conn)

    def apply(conn: Connection, list_row: Row[Any] | None, entry: dict[str, Any], now: datetime) -> str:
        return subscriptions.subscribe_entry(conn, account_id, entry, list_row,
                                             custom_source=payload.get("custom_source"),
                                             historical_import=bool(payload.get("historical_import")),
                                             method=payload.get("method") or subscriptions.METHOD_API, now=now,
                                             secret=secret)

    _run_entries(ctx, item, apply)


@work_handler(subscriptions.UNSUBSCRIBE_KIND)
def run_unsubscribe(ctx: WorkContext, item: WorkItem) -> None:
    account_id = item.account_id or ""

    def apply(conn: Connection, list_row: Row[Any] | None, entry: dict[str, Any], now: datetime) -> str:
        return subscriptions.unsubscribe_entry(conn, account_id, entry, list_row, now=now)

    _run_entries(ctx, item, apply)
