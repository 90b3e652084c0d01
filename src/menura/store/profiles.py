"""Every SQL statement on profiles, their list suppressions, secondary emails and push tokens."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from menura.store.profile_tables import (
    profile_list_suppressions,
    profile_secondary_emails,
    profiles,
    push_tokens,
)
from menura.store.types import UtcDateTime

# Bound parameters per IN (...) list: well under SQLite's 32,766 and PostgreSQL's 65,535.
CHUNK = 900

IDENTIFIER_COLUMNS = ("email", "phone_number", "external_id", "anonymous_id")

# Columns a listing may sort or filter on, by their API names.
PROFILE_COLUMNS: dict[str, ColumnElement[Any]] = {
    "id": profiles.c.id,
    "email": profiles.c.email,
    "phone_number": profiles.c.phone_number,
    "external_id": profiles.c.external_id,
    "created": profiles.c.created,
    "updated": profiles.c.updated,
    "subscriptions.email.marketing.suppression.timestamp": profiles.c.email_suppression_timestamp,
    "subscriptions.email.marketing.suppression.reason": profiles.c.email_suppression_reason,
}
PUSH_TOKEN_COLUMNS: dict[str, ColumnElement[Any]] = {
    "id": push_tokens.c.id,
    "profile.id": push_tokens.c.profile_id,
    "enablement_status": push_tokens.c.enablement_status,
    "platform": push_tokens.c.platform,
}


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start:start + CHUNK])


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


# --------------------------------------------------------------------------- profiles


def profile_select(account_id: str) -> Select[Any]:
    return select(profiles).where(profiles.c.account_id == account_id)


def get_profile(conn: Connection, account_id: str, profile_id: str) -> Row[Any] | None:
    return conn.execute(profile_select(account_id).where(profiles.c.id == profile_id)).first()


def get_profile_for_update(conn: Connection, account_id: str, profile_id: str) -> Row[Any] | None:
    """The row, locked against concurrent writers until the transaction ends (PostgreSQL)."""
    return conn.execute(profile_select(account_id).where(profiles.c.id == profile_id).with_for_update()).first()


def profiles_by_ids(conn: Connection, account_id: str, ids: Iterable[str]) -> list[Row[Any]]:
    wanted = list(dict.fromkeys(ids))
    rows: list[Row[Any]] = []
    for chunk in _chunks(wanted):
        rows.extend(conn.execute(profile_select(account_id).where(profiles.c.id.in_(chunk))).all())
    return rows


def consent_rows(conn: Connection, account_id: str, ids: Iterable[str]) -> list[Row[Any]]:
    """Marketing consent and suppression of profiles by id (a delivery's last check before sending)."""
    wanted = list(dict.fromkeys(ids))
    columns = (profiles.c.id, profiles.c.email_consent, profiles.c.sms_consent, profiles.c.email_suppression_reason)
    rows: list[Row[Any]] = []
    for chunk in _chunks(wanted):
        rows.extend(conn.execute(select(*columns).where(profiles.c.account_id == account_id,
                                                        profiles.c.id.in_(chunk))).all())
    return rows


def existing_ids(conn: Connection, account_id: str, ids: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        query = select(profiles.c.id).where(profiles.c.account_id == account_id, profiles.c.id.in_(chunk))
        found.update(conn.execute(query).scalars())
    return found


def find_id_by(conn: Connection, account_id: str, column: str, value: str) -> str | None:
    """The profile whose identifier `column` (email, phone_number, ...) equals `value`."""
    query = select(profiles.c.id).where(profiles.c.account_id == account_id, profiles.c[column] == value)
    return conn.execute(query).scalar_one_or_none()


def find_ids_by(conn: Connection, account_id: str, column: str, values: Collection[str]) -> dict[str, str]:
    """value -> profile id, for the values some profile holds as identifier `column`."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(values)):
        query = select(profiles.c[column], profiles.c.id).where(
            profiles.c.account_id == account_id, profiles.c[column].in_(chunk))
        found.update({value: pid for value, pid in conn.execute(query)})
    return found


def insert_profile(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(profiles).values(dict(values)))


def update_profile(conn: Connection, account_id: str, profile_id: str, values: Mapping[str, Any]) -> None:
    if values:
        conn.execute(update(profiles).where(profiles.c.account_id == account_id, profiles.c.id == profile_id)
                     .values(dict(values)))


def touch_last_event(conn: Connection, account_id: str, profile_id: str, when: datetime) -> None:
    """Move last_event_date forward to `when`; an older event never moves it back."""
    conn.execute(update(profiles)
                 .where(profiles.c.account_id == account_id, profiles.c.id == profile_id,
                        or_(profiles.c.last_event_date.is_(None), profiles.c.last_event_date < when))
                 .values(last_event_date=when))


def delete_profiles(conn: Connection, account_id: str, profile_ids: Sequence[str]) -> None:
    """Delete profiles with everything that hangs off them in this area."""
    for chunk in _chunks(list(profile_ids)):
        for table in (profile_list_suppressions, profile_secondary_emails, push_tokens):
            conn.execute(delete(table).where(table.c.account_id == account_id, table.c.profile_id.in_(chunk)))
        conn.execute(delete(profiles).where(profiles.c.account_id == account_id, profiles.c.id.in_(chunk)))


def ids_matching_any(conn: Connection, account_id: str, *, email: str | None = None,
                     phone_number: str | None = None) -> list[str]:
    """Every profile holding the email (primary or secondary) or the phone number."""
    found: list[str] = []
    if email is not None:
        found += list(conn.execute(select(profiles.c.id).where(profiles.c.account_id == account_id,
                                                               profiles.c.email == email)).scalars())
        found += list(conn.execute(select(profile_secondary_emails.c.profile_id).where(
            profile_secondary_emails.c.account_id == account_id,
            profile_secondary_emails.c.email == email)).scalars())
    if phone_number is not None:
        found += list(conn.execute(select(profiles.c.id).where(profiles.c.account_id == account_id,
                                                               profiles.c.phone_number == phone_number)).scalars())
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------- secondary emails


def find_id_by_secondary_email(conn: Connection, account_id: str, email: str) -> str | None:
    query = select(profile_secondary_emails.c.profile_id).where(
        profile_secondary_emails.c.account_id == account_id, profile_secondary_emails.c.email == email)
    return conn.execute(query).scalar_one_or_none()


def secondary_emails(conn: Connection, account_id: str, profile_id: str) -> list[str]:
    query = (select(profile_secondary_emails.c.email)
             .where(profile_secondary_emails.c.account_id == account_id,
                    profile_secondary_emails.c.profile_id == profile_id)
             .order_by(profile_secondary_emails.c.created, profile_secondary_emails.c.email))
    return list(conn.execute(query).scalars())


def add_secondary_email(conn: Connection, account_id: str, profile_id: str, email: str, now: datetime) -> None:
    conn.execute(insert(profile_secondary_emails).values(account_id=account_id, profile_id=profile_id,
                                                         email=email, created=now))


def remove_secondary_email(conn: Connection, account_id: str, profile_id: str, email: str) -> None:
    conn.execute(delete(profile_secondary_emails).where(
        profile_secondary_emails.c.account_id == account_id, profile_secondary_emails.c.profile_id == profile_id,
        profile_secondary_emails.c.email == email))


def move_secondary_emails(conn: Connection, account_id: str, from_ids: Sequence[str], to_id: str) -> None:
    conn.execute(update(profile_secondary_emails)
                 .where(profile_secondary_emails.c.account_id == account_id,
                        profile_secondary_emails.c.profile_id.in_(list(from_ids)))
                 .values(profile_id=to_id))


# --------------------------------------------------------------------------- list suppressions


def list_suppressions_for(conn: Connection, account_id: str,
                          profile_ids: Collection[str]) -> dict[str, list[Row[Any]]]:
    out: dict[str, list[Row[Any]]] = {}
    table = profile_list_suppressions
    for chunk in _chunks(list(profile_ids)):
        query = (select(table).where(table.c.account_id == account_id, table.c.profile_id.in_(chunk))
                 .order_by(table.c.timestamp, table.c.list_id))
        for row in conn.execute(query):
            out.setdefault(row.profile_id, []).append(row)
    return out


def upsert_list_suppression(conn: Connection, account_id: str, profile_id: str, list_id: str, reason: str,
                            when: datetime) -> bool:
    """Suppress the profile from the list; False when it already was (the first reason stays)."""
    table = profile_list_suppressions
    statement = (_insert(conn)(table)
                 .values(account_id=account_id, profile_id=profile_id, list_id=list_id, reason=reason,
                         timestamp=when)
                 .on_conflict_do_nothing(index_elements=["profile_id", "list_id"])
                 .returning(table.c.list_id))
    # RETURNING rather than rowcount: psycopg reports -1 for this statement.
    return conn.execute(statement).first() is not None


def delete_list_suppression(conn: Connection, account_id: str, profile_id: str, list_id: str) -> bool:
    table = profile_list_suppressions
    return conn.execute(delete(table).where(table.c.account_id == account_id, table.c.profile_id == profile_id,
                                            table.c.list_id == list_id)).rowcount > 0


def delete_list_suppressions_of_list(conn: Connection, account_id: str, list_id: str) -> None:
    table = profile_list_suppressions
    conn.execute(delete(table).where(table.c.account_id == account_id, table.c.list_id == list_id))


def move_list_suppressions(conn: Connection, account_id: str, from_ids: Sequence[str], to_id: str) -> None:
    """Merge: the survivor takes the merged profiles' list suppressions it does not have yet."""
    table = profile_list_suppressions
    have = set(conn.execute(select(table.c.list_id).where(table.c.profile_id == to_id)).scalars())
    rows = conn.execute(select(table).where(table.c.account_id == account_id,
                                            table.c.profile_id.in_(list(from_ids)))
                        .order_by(table.c.timestamp)).all()
    for row in rows:
        if row.list_id not in have:
            have.add(row.list_id)
            conn.execute(insert(table).values(account_id=account_id, profile_id=to_id, list_id=row.list_id,
                                              reason=row.reason, timestamp=row.timestamp))
    conn.execute(delete(table).where(table.c.account_id == account_id, table.c.profile_id.in_(list(from_ids))))


def list_suppression_filter(column: str, op: str, value: Any) -> ColumnElement[bool]:
    """`profiles.id IN (profiles with a list suppression whose <column> <op> <value>)`."""
    table = profile_list_suppressions
    target = table.c[column]
    comparisons = {
        "equals": lambda: target == value,
        "greater-than": lambda: target > value,
        "greater-or-equal": lambda: target >= value,
        "less-than": lambda: target < value,
        "less-or-equal": lambda: target <= value,
    }
    condition = comparisons[op]()
    return profiles.c.id.in_(select(table.c.profile_id).where(table.c.account_id == profiles.c.account_id,
                                                              condition))


# Keyset pages need non-null sort keys: a missing value sorts as the empty string / the epoch.
_EPOCH = literal(datetime(1970, 1, 1, tzinfo=UTC), UtcDateTime)
PROFILE_SORTS = ("created", "email", "id", "subscriptions.email.marketing.list_suppressions.timestamp",
                 "subscriptions.email.marketing.suppression.timestamp", "updated")


def _latest_list_suppression() -> ColumnElement[Any]:
    table = profile_list_suppressions
    return select(func.max(table.c.timestamp)).where(table.c.profile_id == profiles.c.id).scalar_subquery()


def profile_sorted_select(account_id: str, sort: str) -> tuple[Select[Any], ColumnElement[Any]]:
    """The account's profiles with the sort key of an API sort field (selected too when computed,
    so a page boundary can be read from the last row)."""
    if sort in ("id", "created", "updated"):
        return profile_select(account_id), profiles.c[sort]
    if sort == "email":
        key = func.coalesce(profiles.c.email, "").label("sort_email")
    elif sort == "subscriptions.email.marketing.suppression.timestamp":
        key = func.coalesce(profiles.c.email_suppression_timestamp, _EPOCH).label("sort_suppressed")
    elif sort == "subscriptions.email.marketing.list_suppressions.timestamp":
        key = func.coalesce(_latest_list_suppression(), _EPOCH).label("sort_list_suppressed")
    else:
        raise ValueError(f"unknown profile sort {sort!r}")
    return profile_select(account_id).add_columns(key), key


# --------------------------------------------------------------------------- push tokens


def push_token_select(account_id: str) -> Select[Any]:
    return select(push_tokens).where(push_tokens.c.account_id == account_id)


def get_push_token(conn: Connection, account_id: str, token_id: str) -> Row[Any] | None:
    return conn.execute(push_token_select(account_id).where(push_tokens.c.id == token_id)).first()


def find_push_token(conn: Connection, account_id: str, token: str) -> Row[Any] | None:
    return conn.execute(push_token_select(account_id).where(push_tokens.c.token == token)).first()


def push_tokens_for(conn: Connection, account_id: str, profile_ids: Collection[str]) -> dict[str, list[Row[Any]]]:
    out: dict[str, list[Row[Any]]] = {}
    for chunk in _chunks(list(profile_ids)):
        query = (push_token_select(account_id).where(push_tokens.c.profile_id.in_(chunk))
                 .order_by(push_tokens.c.created, push_tokens.c.id))
        for row in conn.execute(query):
            out.setdefault(row.profile_id, []).append(row)
    return out


def insert_push_token(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(push_tokens).values(dict(values)))


def update_push_token(conn: Connection, account_id: str, token_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(push_tokens).where(push_tokens.c.account_id == account_id, push_tokens.c.id == token_id)
                 .values(dict(values)))


def delete_push_token(conn: Connection, account_id: str, token_id: str) -> bool:
    return conn.execute(delete(push_tokens).where(push_tokens.c.account_id == account_id,
                                                  push_tokens.c.id == token_id)).rowcount > 0


def move_push_tokens(conn: Connection, account_id: str, from_ids: Sequence[str], to_id: str) -> None:
    conn.execute(update(push_tokens).where(push_tokens.c.account_id == account_id,
                                           push_tokens.c.profile_id.in_(list(from_ids)))
                 .values(profile_id=to_id))


# --------------------------------------------------------------------------- order history


def order_history(conn: Connection, account_id: str, profile_ids: Collection[str],
                  metric_name: str) -> dict[str, tuple[int, float, datetime, datetime]]:
    """Per profile: (number of `metric_name` events, sum of their values, first time, last time)."""
    from menura.store.event_tables import events, metrics

    out: dict[str, tuple[int, float, datetime, datetime]] = {}
    for chunk in _chunks(list(profile_ids)):
        query = (select(events.c.profile_id, func.count(), func.coalesce(func.sum(events.c.value), 0.0),
                        func.min(events.c.occurred_at), func.max(events.c.occurred_at))
                 .join(metrics, metrics.c.id == events.c.metric_id)
                 .where(events.c.account_id == account_id, metrics.c.account_id == account_id,
                        metrics.c.name == metric_name, events.c.profile_id.in_(chunk))
                 .group_by(events.c.profile_id))
        for pid, count, total, first, last in conn.execute(query):
            out[pid] = (int(count), float(total), first, last)
    return out
