"""Every SQL statement of the campaigns area: campaigns, messages, message templates, send jobs,
estimations, audiences (read by profile-id cursor, source by source) and the recipient ledger."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, delete, func, insert, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from menura.store.campaign_tables import (
    campaign_estimations,
    campaign_message_templates,
    campaign_messages,
    campaign_recipients,
    campaign_send_jobs,
    campaigns,
)
from menura.store.delivery_tables import outbound_messages
from menura.store.event_tables import events, metrics
from menura.store.list_tables import list_members, lists
from menura.store.profile_tables import profile_list_suppressions, profiles
from menura.store.segment_tables import segment_members, segments

_CHUNK = 500
# Delivery statuses of a message that went (or is going) out.
_HANDED_OVER = ("queued", "sending", "deferred", "sent", "captured", "bounced")

CAMPAIGN_COLUMNS: Mapping[str, ColumnElement[Any]] = {
    "id": campaigns.c.id,
    "name": campaigns.c.name,
    "status": campaigns.c.status,
    "archived": campaigns.c.archived,
    "channel": campaigns.c.channel,
    "created_at": campaigns.c.created,
    "updated_at": campaigns.c.updated,
    "scheduled_at": campaigns.c.scheduled_at,
}


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _dialect_insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


# --------------------------------------------------------------------------- campaigns


def campaigns_select(account_id: str) -> Select[Any]:
    return select(campaigns).where(campaigns.c.account_id == account_id)


def insert_campaign(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(campaigns).values(dict(values)))


def get_campaign(conn: Connection, account_id: str, campaign_id: str, *, for_update: bool = False) -> Row[Any] | None:
    stmt = campaigns_select(account_id).where(campaigns.c.id == campaign_id)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def campaigns_by_ids(conn: Connection, account_id: str, ids: Collection[str]) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(ids)):
        rows += conn.execute(campaigns_select(account_id).where(campaigns.c.id.in_(chunk))).all()
    return rows


def existing_campaign_ids(conn: Connection, account_id: str, ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(ids)):
        stmt = select(campaigns.c.id).where(campaigns.c.account_id == account_id, campaigns.c.id.in_(chunk))
        found |= set(conn.execute(stmt).scalars())
    return found


def update_campaign(conn: Connection, account_id: str, campaign_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(campaigns).where(campaigns.c.account_id == account_id, campaigns.c.id == campaign_id)
                 .values(dict(values)))


def set_campaign_status(conn: Connection, campaign_id: str, status: str, now: datetime,
                        **values: Any) -> None:
    conn.execute(update(campaigns).where(campaigns.c.id == campaign_id)
                 .values(status=status, updated=now, **values))


def delete_campaign(conn: Connection, account_id: str, campaign_id: str) -> None:
    template_ids = [tid for tid in conn.execute(
        select(campaign_messages.c.template_id).where(campaign_messages.c.campaign_id == campaign_id)).scalars()
        if tid is not None]
    conn.execute(delete(campaigns).where(campaigns.c.account_id == account_id, campaigns.c.id == campaign_id))
    if template_ids:
        conn.execute(delete(campaign_message_templates).where(campaign_message_templates.c.id.in_(template_ids)))


# --------------------------------------------------------------------------- messages


def insert_message(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(campaign_messages).values(dict(values)))


def get_message(conn: Connection, account_id: str, message_id: str) -> Row[Any] | None:
    stmt = select(campaign_messages).where(campaign_messages.c.account_id == account_id,
                                           campaign_messages.c.id == message_id)
    return conn.execute(stmt).first()


def messages_of(conn: Connection, account_id: str, campaign_ids: Collection[str]) -> dict[str, list[Row[Any]]]:
    """campaign id -> its messages in order."""
    found: dict[str, list[Row[Any]]] = {cid: [] for cid in campaign_ids}
    for chunk in _chunks(list(campaign_ids)):
        stmt = (select(campaign_messages)
                .where(campaign_messages.c.account_id == account_id, campaign_messages.c.campaign_id.in_(chunk))
                .order_by(campaign_messages.c.campaign_id, campaign_messages.c.position, campaign_messages.c.id))
        for row in conn.execute(stmt):
            found[row.campaign_id].append(row)
    return found


def update_message(conn: Connection, message_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(campaign_messages).where(campaign_messages.c.id == message_id).values(dict(values)))


def insert_message_template(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(campaign_message_templates).values(dict(values)))


def get_message_template(conn: Connection, account_id: str, template_id: str) -> Row[Any] | None:
    stmt = select(campaign_message_templates).where(campaign_message_templates.c.account_id == account_id,
                                                    campaign_message_templates.c.id == template_id)
    return conn.execute(stmt).first()


def message_template_exists(conn: Connection, template_id: str) -> bool:
    stmt = select(campaign_message_templates.c.id).where(campaign_message_templates.c.id == template_id)
    return conn.execute(stmt).first() is not None


def delete_message_template(conn: Connection, template_id: str) -> None:
    conn.execute(delete(campaign_message_templates).where(campaign_message_templates.c.id == template_id))


# --------------------------------------------------------------------------- send jobs and estimations


def get_send_job(conn: Connection, account_id: str, job_id: str, *, for_update: bool = False) -> Row[Any] | None:
    stmt = select(campaign_send_jobs).where(campaign_send_jobs.c.account_id == account_id,
                                            campaign_send_jobs.c.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def insert_send_job(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(campaign_send_jobs).values(dict(values)))


def update_send_job(conn: Connection, job_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(campaign_send_jobs).where(campaign_send_jobs.c.id == job_id).values(dict(values)))


def add_send_counts(conn: Connection, job_id: str, now: datetime, *, sent: int = 0, skipped: int = 0,
                    failed: int = 0, recipients: int = 0, **values: Any) -> None:
    t = campaign_send_jobs.c
    conn.execute(update(campaign_send_jobs).where(t.id == job_id).values(
        sent=t.sent + sent, skipped=t.skipped + skipped, failed=t.failed + failed,
        recipients=t.recipients + recipients, updated=now, **values))


def get_estimation(conn: Connection, account_id: str, campaign_id: str) -> Row[Any] | None:
    stmt = select(campaign_estimations).where(campaign_estimations.c.account_id == account_id,
                                              campaign_estimations.c.id == campaign_id)
    return conn.execute(stmt).first()


def upsert_estimation(conn: Connection, values: Mapping[str, Any]) -> None:
    ins = _dialect_insert(conn)(campaign_estimations).values(dict(values))
    changes = {k: v for k, v in values.items() if k not in ("id", "account_id", "created",
                                                            "estimated_recipient_count")}
    conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_=changes))


def update_estimation(conn: Connection, campaign_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(campaign_estimations).where(campaign_estimations.c.id == campaign_id).values(dict(values)))


# --------------------------------------------------------------------------- audiences


def audience_kinds(conn: Connection, account_id: str, ids: Collection[str]) -> dict[str, str]:
    """id -> "list" or "segment", for the ids that are lists or segments of the account."""
    wanted = list(ids)
    kinds: dict[str, str] = {}
    for chunk in _chunks(wanted):
        for table, kind in ((lists, "list"), (segments, "segment")):
            stmt = select(table.c.id).where(table.c.account_id == account_id, table.c.id.in_(chunk))
            kinds.update({found: kind for found in conn.execute(stmt).scalars()})
    return kinds


def _members_table(kind: str) -> tuple[Any, ColumnElement[Any]]:
    if kind == "list":
        return list_members, list_members.c.list_id
    return segment_members, segment_members.c.segment_id


def member_ids_after(conn: Connection, kind: str, group_id: str, after: str | None, limit: int) -> list[str]:
    """The next `limit` member profile ids of one list or segment, in id order (a primary key range scan)."""
    table, group = _members_table(kind)
    stmt = select(table.c.profile_id).where(group == group_id)
    if after is not None:
        stmt = stmt.where(table.c.profile_id > after)
    return list(conn.execute(stmt.order_by(table.c.profile_id).limit(limit)).scalars())


def members_among(conn: Connection, kind: str, group_ids: Collection[str], profile_ids: Collection[str]) -> set[str]:
    """Which of `profile_ids` belong to any of the groups."""
    if not group_ids or not profile_ids:
        return set()
    table, group = _members_table(kind)
    found: set[str] = set()
    for chunk in _chunks(list(profile_ids)):
        stmt = select(table.c.profile_id).where(group.in_(list(group_ids)), table.c.profile_id.in_(chunk))
        found |= set(conn.execute(stmt).scalars())
    return found


def memberships_among(conn: Connection, kind: str, group_ids: Collection[str],
                      profile_ids: Collection[str]) -> dict[str, set[str]]:
    """profile id -> the groups (of `group_ids`) it belongs to."""
    found: dict[str, set[str]] = {}
    if not group_ids or not profile_ids:
        return found
    table, group = _members_table(kind)
    for chunk in _chunks(list(profile_ids)):
        stmt = select(table.c.profile_id, group).where(group.in_(list(group_ids)), table.c.profile_id.in_(chunk))
        for profile_id, group_id in conn.execute(stmt):
            found.setdefault(profile_id, set()).add(group_id)
    return found


def list_suppressions_among(conn: Connection, account_id: str, list_ids: Collection[str],
                            profile_ids: Collection[str]) -> dict[str, set[str]]:
    """profile id -> the lists (of `list_ids`) it is suppressed from."""
    found: dict[str, set[str]] = {}
    if not list_ids or not profile_ids:
        return found
    t = profile_list_suppressions
    for chunk in _chunks(list(profile_ids)):
        stmt = select(t.c.profile_id, t.c.list_id).where(t.c.account_id == account_id,
                                                         t.c.list_id.in_(list(list_ids)), t.c.profile_id.in_(chunk))
        for profile_id, list_id in conn.execute(stmt):
            found.setdefault(profile_id, set()).add(list_id)
    return found


# What deciding whether a profile may receive a channel (and when, in its time zone) reads: enough
# for planning and estimation, which need neither names nor properties (reading them is most of a
# full row's cost).
CHECK_COLUMNS = (profiles.c.id, profiles.c.email, profiles.c.phone_number, profiles.c.email_consent,
                 profiles.c.sms_consent, profiles.c.email_suppression_reason, profiles.c.location)


def profiles_for_send(conn: Connection, account_id: str, profile_ids: Collection[str], *,
                      full: bool = True) -> dict[str, Row[Any]]:
    """Profile rows by id: whole (for rendering) or only CHECK_COLUMNS."""
    columns = profiles.c if full else CHECK_COLUMNS
    rows: dict[str, Row[Any]] = {}
    for chunk in _chunks(list(profile_ids)):
        stmt = select(*columns).where(profiles.c.account_id == account_id, profiles.c.id.in_(chunk))
        rows.update({row.id: row for row in conn.execute(stmt)})
    return rows


# --------------------------------------------------------------------------- recipient ledger


def plan_recipients(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert planned recipients; ones already planned are left alone. Returns how many were new."""
    if not rows:
        return 0
    stmt = (_dialect_insert(conn)(campaign_recipients)
            .on_conflict_do_nothing(index_elements=["message_id", "profile_id"])
            .returning(campaign_recipients.c.profile_id))
    # rowcount is not reliable for executemany; RETURNING counts exactly what was inserted.
    return len(conn.execute(stmt, [dict(r) for r in rows]).all())


def _in_partition(partition: Collection[str] | None) -> list[ColumnElement[bool]]:
    """Rows of one shard of a send: profile ids (ULIDs) whose last character is in `partition`."""
    if partition is None:
        return []
    return [func.substr(campaign_recipients.c.profile_id, 26, 1).in_(list(partition))]


def recipients_in_status(conn: Connection, message_id: str, status: str, limit: int,
                         due_by: datetime | None = None, partition: Collection[str] | None = None) -> list[Row[Any]]:
    t = campaign_recipients.c
    stmt = select(campaign_recipients).where(t.message_id == message_id, t.status == status,
                                             *_in_partition(partition))
    if due_by is not None:
        stmt = stmt.where(t.due_at <= due_by)
    return list(conn.execute(stmt.order_by(t.due_at, t.profile_id).limit(limit)).all())


def set_recipient_status(conn: Connection, message_id: str, profile_ids: Sequence[str], status: str,
                         *, only_from: str | None = None, **values: Any) -> int:
    t = campaign_recipients.c
    changed = 0
    for chunk in _chunks(list(profile_ids)):
        stmt = update(campaign_recipients).where(t.message_id == message_id, t.profile_id.in_(chunk))
        if only_from is not None:
            stmt = stmt.where(t.status == only_from)
        changed += int(conn.execute(stmt.values(status=status, **values)).rowcount or 0)
    return changed


def record_outcomes(conn: Connection, message_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
    """Per recipient: {"profile_id", "status", "reason", "sent_at", "delivery_id"}."""
    t = campaign_recipients.c
    stmt = (update(campaign_recipients)
            .where(t.message_id == message_id, t.profile_id == bindparam("pid"))
            .values(status=bindparam("st"), reason=bindparam("rs"), sent_at=bindparam("sa"),
                    delivery_id=bindparam("di")))
    conn.execute(stmt, [{"pid": o["profile_id"], "st": o["status"], "rs": o.get("reason"),
                         "sa": o.get("sent_at"), "di": o.get("delivery_id")} for o in outcomes])


def next_due_at(conn: Connection, message_ids: Sequence[str], partition: Collection[str] | None = None
                ) -> datetime | None:
    t = campaign_recipients.c
    stmt = select(func.min(t.due_at)).where(t.message_id.in_(list(message_ids)), t.status == "pending",
                                            *_in_partition(partition))
    return conn.execute(stmt).scalar()


def count_in_status(conn: Connection, message_ids: Sequence[str], statuses: Collection[str]) -> int:
    t = campaign_recipients.c
    stmt = select(func.count()).where(t.message_id.in_(list(message_ids)), t.status.in_(list(statuses)))
    return int(conn.execute(stmt).scalar() or 0)


def cancel_pending(conn: Connection, message_ids: Sequence[str]) -> int:
    t = campaign_recipients.c
    stmt = (update(campaign_recipients)
            .where(t.message_id.in_(list(message_ids)), t.status == "pending")
            .values(status="cancelled"))
    return int(conn.execute(stmt).rowcount or 0)


def recently_messaged(conn: Connection, account_id: str, profile_ids: Collection[str], channel: str,
                      since: datetime, *, except_send_key_prefix: str) -> set[str]:
    """Profiles the account sent (or is sending) a `channel` message since `since`, campaigns and flows
    alike, other than the sends whose key starts with `except_send_key_prefix` (smart sending)."""
    if not profile_ids:
        return set()
    t = outbound_messages.c
    escaped = except_send_key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found: set[str] = set()
    for chunk in _chunks(list(profile_ids)):
        stmt = select(t.profile_id).where(
            t.profile_id.in_(chunk), t.channel == channel, t.created > since, t.account_id == account_id,
            t.status.in_(_HANDED_OVER), t.send_key.not_like(escaped + "%", escape="\\"))
        found |= set(conn.execute(stmt).scalars())
    return found


def sent_profile_ids(conn: Connection, message_ids: Sequence[str]) -> list[str]:
    """For tests and reports: the profiles a message was sent to."""
    t = campaign_recipients.c
    stmt = select(t.profile_id).where(t.message_id.in_(list(message_ids)), t.status == "sent")
    return list(conn.execute(stmt).scalars())


def count_audience(conn: Connection, included: Mapping[str, Sequence[str]],
                   excluded: Mapping[str, Sequence[str]]) -> int:
    """Distinct profiles in any included list/segment and in no excluded one (one SQL statement)."""
    def members(groups: Mapping[str, Sequence[str]]) -> list[Select[Any]]:
        parts: list[Select[Any]] = []
        for kind, ids_ in groups.items():
            if ids_:
                table, group = _members_table(kind)
                parts.append(select(table.c.profile_id).where(group.in_(list(ids_))))
        return parts

    inc = members(included)
    if not inc:
        return 0
    candidates = (union(*inc) if len(inc) > 1 else inc[0]).subquery()
    stmt = select(func.count()).select_from(candidates)
    exc = members(excluded)
    if exc:
        stmt = stmt.where(candidates.c.profile_id.notin_(union(*exc) if len(exc) > 1 else exc[0]))
    return int(conn.execute(stmt).scalar() or 0)


def engagement_times(conn: Connection, account_id: str, metric_names: Collection[str], since: datetime, *,
                     profile_ids: Collection[str] | None = None, limit: int | None = None
                     ) -> list[tuple[str, datetime]]:
    """(profile id, time) of the account's engagement events (opens, clicks) since `since`; for some
    profiles, or the account's latest `limit`."""
    metric_ids = list(conn.execute(select(metrics.c.id).where(metrics.c.account_id == account_id,
                                                              metrics.c.name.in_(list(metric_names)))).scalars())
    if not metric_ids:
        return []
    base = select(events.c.profile_id, events.c.occurred_at).where(
        events.c.account_id == account_id, events.c.metric_id.in_(metric_ids), events.c.occurred_at >= since)
    if profile_ids is None:
        rows = conn.execute(base.order_by(events.c.occurred_at.desc()).limit(limit or 5000)).all()
        return [(r.profile_id, r.occurred_at) for r in rows]
    found: list[tuple[str, datetime]] = []
    for chunk in _chunks(list(profile_ids)):
        found += [(r.profile_id, r.occurred_at) for r in conn.execute(base.where(events.c.profile_id.in_(chunk)))]
    return found


# --------------------------------------------------------------------------- reports


def campaigns_sent_between(conn: Connection, account_id: str, start: datetime, end: datetime) -> list[Row[Any]]:
    """Campaigns whose send time falls in [start, end) and that have started sending."""
    stmt = campaigns_select(account_id).where(
        campaigns.c.send_time >= start, campaigns.c.send_time < end,
        campaigns.c.status.notin_(["Draft", "Scheduled"]))
    return list(conn.execute(stmt.order_by(campaigns.c.send_time, campaigns.c.id)).all())


def metric_ids_by_name(conn: Connection, account_id: str, names: Collection[str]) -> dict[str, str]:
    """metric id -> name, for the account's metrics with those names."""
    stmt = select(metrics.c.id, metrics.c.name).where(metrics.c.account_id == account_id,
                                                      metrics.c.name.in_(list(names)))
    return {row.id: row.name for row in conn.execute(stmt)}


def _attribution(key: str) -> Any:
    return events.c.properties[key].as_string()


def campaign_event_totals(conn: Connection, account_id: str, metric_ids: Collection[str],
                          campaign_ids: Collection[str]) -> list[Row[Any]]:
    """Per (metric, campaign, message): events, distinct profiles; for the events attributed to the
    campaigns (their `$campaign` property), whenever they happened."""
    if not metric_ids or not campaign_ids:
        return []
    campaign = _attribution("$campaign").label("campaign_id")
    message = _attribution("$message").label("message_id")
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(campaign_ids)):
        stmt = (select(events.c.metric_id, campaign, message, func.count().label("events"),
                       func.count(events.c.profile_id.distinct()).label("profiles"))
                .where(events.c.account_id == account_id, events.c.metric_id.in_(list(metric_ids)),
                       _attribution("$campaign").in_(chunk))
                .group_by(events.c.metric_id, campaign, message))
        rows += conn.execute(stmt).all()
    return rows


def engagement_of(conn: Connection, account_id: str, metric_ids: Collection[str],
                  campaign_ids: Collection[str]) -> list[Row[Any]]:
    """Every engagement event (profile, time, campaign, message) attributed to the campaigns."""
    if not metric_ids or not campaign_ids:
        return []
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(campaign_ids)):
        stmt = select(events.c.profile_id, events.c.occurred_at, _attribution("$campaign").label("campaign_id"),
                      _attribution("$message").label("message_id")).where(
            events.c.account_id == account_id, events.c.metric_id.in_(list(metric_ids)),
            _attribution("$campaign").in_(chunk))
        rows += conn.execute(stmt).all()
    return rows


def profile_events(conn: Connection, account_id: str, metric_ids: Collection[str], profile_ids: Collection[str],
                   start: datetime) -> list[Row[Any]]:
    """Events of some metrics of some profiles since `start`: (profile, metric, time, value, campaign, flow)."""
    if not metric_ids or not profile_ids:
        return []
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(profile_ids)):
        stmt = select(events.c.profile_id, events.c.metric_id, events.c.occurred_at, events.c.value,
                      _attribution("$campaign").label("campaign_id"), _attribution("$message").label("message_id"),
                      _attribution("$flow").label("flow_id")).where(
            events.c.account_id == account_id, events.c.metric_id.in_(list(metric_ids)),
            events.c.profile_id.in_(chunk), events.c.occurred_at >= start)
        rows += conn.execute(stmt).all()
    return rows


def campaign_delivery_profiles(conn: Connection, account_id: str, metric_ids: Collection[str],
                               campaign_ids: Collection[str]) -> list[Row[Any]]:
    """Distinct (metric, campaign, message, profile) of the delivery outcomes of the campaigns."""
    if not metric_ids or not campaign_ids:
        return []
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(campaign_ids)):
        stmt = (select(events.c.metric_id, _attribution("$campaign").label("campaign_id"),
                       _attribution("$message").label("message_id"), events.c.profile_id)
                .where(events.c.account_id == account_id, events.c.metric_id.in_(list(metric_ids)),
                       _attribution("$campaign").in_(chunk))
                .distinct())
        rows += conn.execute(stmt).all()
    return rows


def delivery_statuses(conn: Connection, delivery_ids: Collection[str]) -> dict[str, str]:
    """Delivery's status of the outbound messages with these ids (absent: never handed to delivery)."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(delivery_ids)):
        stmt = select(outbound_messages.c.id, outbound_messages.c.status).where(outbound_messages.c.id.in_(chunk))
        found.update({row.id: row.status for row in conn.execute(stmt)})
    return found
