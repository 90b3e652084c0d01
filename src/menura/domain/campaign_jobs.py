"""Sending a campaign, cancelling or reverting it, and estimating its recipients: the rules, and the
durable work items that carry them out (`menura.engine.campaigns`).

A send job shares the campaign's id. Sending checks the campaign is ready (audience, content,
template, channel), fixes the time the first recipient can be due, and enqueues the job's work in
the same transaction as the job row: a 202 answer means the send will happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from menura import ids
from menura.domain import campaigns as rules
from menura.jsonapi import errors
from menura.store import accounts as account_store
from menura.store import campaigns as store
from menura.store import work
from menura.store.db import Database

SEND_KIND = "campaign.send"
# A send retries through transient failures (database restarts...) with backoff up to an hour apart.
SEND_ATTEMPTS = 25
ESTIMATE_KIND = rules.ESTIMATE_KIND

QUEUED, PROCESSING, COMPLETE, CANCELLED = "queued", "processing", "complete", "cancelled"
ACTIONS = ("cancel", "revert")

# Local-time sends: the earliest and latest UTC offsets a recipient can have.
EARLIEST_OFFSET = timedelta(hours=14)
LATEST_OFFSET = timedelta(hours=12)


@dataclass(frozen=True)
class StartPlan:
    start_at: datetime  # when the job's work first runs (the earliest a recipient can be due)
    send_time: datetime  # the campaign's `send_time`
    scheduled: bool  # whether the campaign waits (Scheduled) rather than sends now (Sending)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def start_plan(strategy: dict[str, Any], now: datetime) -> StartPlan:
    """When a send with this strategy starts; a time already past is refused (400)."""
    method = strategy["method"]
    pointer = "/data/attributes/send_strategy"
    if method == "immediate":
        return StartPlan(now, now, False)
    if method == "smart_send_time":
        day = date.fromisoformat(strategy["date"])
        # The day begins first at UTC+14; recipients whose day has ended entirely get nothing.
        first = datetime.combine(day, time(0), UTC) - EARLIEST_OFFSET
        last = datetime.combine(day, time(0), UTC) + timedelta(days=1) + LATEST_OFFSET
        if last <= now:
            raise errors.invalid(f"The smart send time date {day} has already passed.", pointer=f"{pointer}/date")
        return StartPlan(max(first, now), max(datetime.combine(day, time(0), UTC), now), first > now)
    when = _parse(strategy["datetime"])
    options = strategy.get("options") or {}
    if method == "static" and options.get("is_local"):
        # The datetime's wall-clock time is sent in each recipient's own time zone.
        wall = when.astimezone(UTC).replace(tzinfo=None)
        first = wall.replace(tzinfo=UTC) - EARLIEST_OFFSET
        last = wall.replace(tzinfo=UTC) + LATEST_OFFSET
        if last <= now:
            raise errors.invalid("The local send time has already passed in every time zone.",
                                 pointer=f"{pointer}/datetime")
        return StartPlan(max(first, now), when, first > now)
    if when <= now:
        raise errors.invalid("The send time must be in the future.", pointer=f"{pointer}/datetime")
    return StartPlan(when, when, True)


def _check_ready(conn: Connection, account_id: str, campaign: Row[Any], messages: list[Row[Any]]) -> None:
    if campaign.status != rules.DRAFT:
        raise errors.invalid(f"The campaign '{campaign.id}' cannot be sent: its status is '{campaign.status}'.",
                             pointer="/data/id")
    if not campaign.included:
        raise errors.invalid("The campaign has no included audience; add a list or segment before sending.",
                             pointer="/data/id")
    if not messages:
        raise errors.invalid("The campaign has no message.", pointer="/data/id")
    account = account_store.get_account(conn, account_id)
    sender = ((account.contact_information or {}).get("default_sender_email") if account is not None else None)
    for message in messages:
        content = message.content or {}
        if message.channel == rules.PUSH:
            raise errors.invalid("Channel not configured: no push notification provider is set up for this "
                                 "account, so mobile push campaigns cannot be sent.", pointer="/data/id")
        if message.channel == rules.EMAIL:
            if message.template_id is None:
                raise errors.invalid(f"The message '{message.id}' has no template; assign one before sending.",
                                     pointer="/data/id")
            if not content.get("subject"):
                raise errors.invalid(f"The message '{message.id}' has no subject.", pointer="/data/id")
            if not (content.get("from_email") or sender):
                raise errors.invalid(f"The message '{message.id}' has no from address, and the account has no "
                                     "default sender.", pointer="/data/id")
        if message.channel == rules.SMS and not (content.get("body") or message.template_id):
            raise errors.invalid(f"The message '{message.id}' has no body.", pointer="/data/id")


def send_campaign(db: Database, account_id: str, campaign_id: str, now: datetime, *,
                  batch_size: int | None = None, shards: int = 1) -> Row[Any]:
    """Create the send job and its work (one work item per shard: `shards` workers can deliver one
    campaign in parallel); returns the job row."""
    with db.write() as conn:
        campaign = store.get_campaign(conn, account_id, campaign_id, for_update=True)
        if campaign is None:
            err = rules.campaign_not_found(campaign_id)
            err.pointer = "/data/id"
            raise err
        messages = store.messages_of(conn, account_id, [campaign_id])[campaign_id]
        _check_ready(conn, account_id, campaign, messages)
        plan = start_plan(campaign.send_strategy, now)
        token = ids.token(8)
        payload: dict[str, Any] = {"campaign_id": campaign_id, "token": token}
        if batch_size:
            payload["batch_size"] = batch_size
        # Shard 0 plans and delivers; the other shards deliver their part of the recipients in parallel.
        item_ids = [work.enqueue(conn, kind=SEND_KIND, payload={**payload, "shard": shard, "shards": shards},
                                 now=now, run_at=plan.start_at, account_id=account_id, max_attempts=SEND_ATTEMPTS)
                    for shard in range(max(1, shards))]
        item_id = item_ids[0]
        existing = store.get_send_job(conn, account_id, campaign_id)
        values = {"status": QUEUED, "cursor": None, "planned": False, "plan": {"token": token},
                  "recipients": 0, "sent": 0, "skipped": 0, "failed": 0, "in_flight_reports": None,
                  "work_item_id": item_id, "created": now, "updated": now, "started_at": None,
                  "finished_at": None}
        if existing is None:
            store.insert_send_job(conn, {"id": campaign_id, "account_id": account_id, **values})
        else:
            store.update_send_job(conn, campaign_id, values)
        store.set_campaign_status(conn, campaign_id, rules.SCHEDULED if plan.scheduled else rules.SENDING, now,
                                  scheduled_at=now if plan.scheduled else None, send_time=plan.send_time)
        job = store.get_send_job(conn, account_id, campaign_id)
    assert job is not None
    return job


def get_send_job(conn: Connection, account_id: str, job_id: str) -> Row[Any]:
    job = store.get_send_job(conn, account_id, job_id)
    if job is None:
        raise errors.not_found(f"A campaign send job with id '{job_id}' does not exist.")
    return job


def change_send_job(db: Database, account_id: str, job_id: str, action: str, now: datetime) -> None:
    """`cancel` stops the send for good (status Cancelled; a send in progress stops after its current
    batch); `revert` takes a scheduled campaign that has not started back to Draft."""
    if action not in ACTIONS:
        raise errors.invalid(f"'{action}' is not an action; use cancel or revert.", pointer="/data/attributes/action")
    with db.write() as conn:
        job = store.get_send_job(conn, account_id, job_id, for_update=True)
        if job is None:
            raise errors.not_found(f"A campaign send job with id '{job_id}' does not exist.")
        campaign = store.get_campaign(conn, account_id, job_id, for_update=True)
        assert campaign is not None
        if job.status not in (QUEUED, PROCESSING):
            raise errors.invalid(f"The send job is {job.status}; only a queued or processing send can be "
                                 f"{'cancelled' if action == 'cancel' else 'reverted'}.",
                                 pointer="/data/attributes/action")
        if action == "revert":
            if job.status != QUEUED or campaign.status != rules.SCHEDULED:
                raise errors.invalid("Only a scheduled campaign that has not started sending can be reverted "
                                     "to a draft.", pointer="/data/attributes/action")
            store.update_send_job(conn, job_id, {"status": CANCELLED, "updated": now, "finished_at": now,
                                                 "plan": {**(job.plan or {}), "token": None}})
            store.set_campaign_status(conn, job_id, rules.DRAFT, now, scheduled_at=None, send_time=None)
            return
        store.update_send_job(conn, job_id, {"status": CANCELLED, "updated": now, "finished_at": now})
        message_ids = [m.id for m in store.messages_of(conn, account_id, [job_id])[job_id]]
        store.cancel_pending(conn, message_ids)
        store.set_campaign_status(conn, job_id, rules.CANCELLED, now)


# --------------------------------------------------------------------------- estimation


def start_estimation(db: Database, account_id: str, campaign_id: str, now: datetime) -> Row[Any]:
    with db.write() as conn:
        if store.get_campaign(conn, account_id, campaign_id) is None:
            err = rules.campaign_not_found(campaign_id)
            err.pointer = "/data/id"
            raise err
        rules.refresh_estimation(conn, account_id, campaign_id, now)
        row = store.get_estimation(conn, account_id, campaign_id)
    assert row is not None
    return row


def get_estimation(conn: Connection, account_id: str, campaign_id: str, *, what: str) -> Row[Any]:
    row = store.get_estimation(conn, account_id, campaign_id)
    if row is None:
        if store.get_campaign(conn, account_id, campaign_id) is None:
            raise rules.campaign_not_found(campaign_id)
        raise errors.not_found(f"No {what} exists for the campaign '{campaign_id}'; create a campaign recipient "
                               "estimation job first.")
    return row
