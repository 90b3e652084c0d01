"""The durable send job of a campaign.

The job row (`campaign_send_jobs`) and the recipient ledger (`campaign_recipients`) hold all state,
so any worker can resume a job, and each step commits its effects with the work item's checkpoint:

1. plan: read the next batch of the audience by profile-id cursor, keep those who may receive the
   channel, and insert them into the ledger with their due time (strategy: local time zone,
   throttle wave, best hour); the cursor moves in the same transaction;
2. deliver: take due `pending` rows and mark them `sending` (committed), check each recipient again
   (consent, suppressions, smart sending), render each message once, hand the batch to delivery,
   then record every outcome (committed).

Planning and delivering alternate, so an immediate send starts at once and memory holds a couple of
batches whatever the audience size. Handing a batch over (MIME, DKIM, SMTP) runs in a second thread
while the next batch is rendered; a batch is handed over only after the previous one's outcomes are
recorded, so at most one batch is ever between hand-over and record.

A worker killed mid-send leaves rows `sending`. The next run reports them (`in_flight_reports`):
those delivery had recorded as handed over but not finished are the only messages that can arrive
twice; the rest never reached delivery. All are sent again, and delivery's send keys turn every
message it had recorded as done into a no-op. A batch the relay deferred entirely (relay down) pauses
the job with backoff while delivery retries the deferred messages itself. Cancelling marks pending
rows `cancelled`; the job stops at its next step. Rows due later (throttled waves, local times, best
hours) are waited for by a new work item due at the next one.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import EmailJob, delivery_context, outcomes, recipient_links, send_emails, send_sms
from menura.delivery.context import DeliveryContext
from menura.delivery.sending import DeliveryResult
from menura.delivery.tracking import delivery_id
from menura.domain import campaign_jobs as jobs
from menura.domain import campaigns as rules
from menura.engine.campaigns import audience as audiences
from menura.engine.campaigns import render, schedule
from menura.jsonapi.errors import ApiError
from menura.store import campaigns as store
from menura.store import work
from menura.store.work import WorkItem
from menura.templating import TemplateError
from menura.worker import WorkContext, work_handler

log = logging.getLogger(__name__)

DEFAULT_BATCH = 250
SMART_SENDING_WINDOW = timedelta(hours=16)  # Klaviyo's default smart sending window
MAX_PAUSE = timedelta(minutes=15)
# Delivery results that mean "handed over" (sent, kept in the outbox, or retried by delivery itself).
_ACCEPTED = frozenset({"sent", "captured", "queued", "deferred", "sending"})
_UNFINISHED = frozenset({"sending", "queued"})
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PLANNING_POLL_SECONDS = 0.2
# A batch is handed over in parts by a few threads: while one part waits on SMTP another is built.
HAND_OVER_THREADS = 2
HAND_OVER_PARTS = 4


@dataclass
class _Send:
    campaign: Row[Any]
    message: Row[Any]
    template: Row[Any] | None
    audience: audiences.Audience


@dataclass
class _Batch:
    """One batch between claim and record: outcomes decided before hand-over, and what to hand over."""

    profile_ids: list[str]
    now: datetime
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: list[tuple[str, EmailJob]] = field(default_factory=list)
    texts: list[tuple[str, str, Any]] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # profile -> the list or segment it came through
    handed: list[Future[list[tuple[str, DeliveryResult]]]] = field(default_factory=list)


class Dispatcher:
    def __init__(self, ctx: WorkContext, item: WorkItem) -> None:
        self.ctx = ctx
        self.item = item
        self.account_id = str(item.account_id)
        self.campaign_id = str(item.payload["campaign_id"])
        self.token = item.payload.get("token")
        self.batch_size = int(item.payload.get("batch_size") or DEFAULT_BATCH)
        # Shards deliver disjoint parts of the recipients in parallel (one work item each); shard 0
        # also plans. One shard (the default) delivers everything.
        self.shard = int(item.payload.get("shard", 0))
        self.shards = max(1, int(item.payload.get("shards", 1)))
        self.partition = partition(self.shard, self.shards)
        self.pauses = int(item.payload.get("pauses", 0))
        self.delivery: DeliveryContext = delivery_context(ctx.db, clock=ctx.clock)
        self.hand_over = ThreadPoolExecutor(max_workers=HAND_OVER_THREADS, thread_name_prefix="campaign-hand-over")
        self.in_flight: _Batch | None = None
        # The message's template compiled once per run (not per batch): it cannot change while sending.
        self.prepared: render.PreparedEmail | None = None

    # -- the loop --

    def run(self) -> None:
        try:
            send = self._start()
            if send is not None:
                self._loop(send)
        finally:
            self.hand_over.shutdown(wait=True)

    def _loop(self, send: _Send) -> None:
        while True:
            with self.ctx.db.read() as conn:
                job = store.get_send_job(conn, self.account_id, self.campaign_id)
            if not self._current(job):
                if self._record_in_flight(send) != "paused":
                    self._stop_stale()
                return
            assert job is not None
            if self.ctx.stopping:
                if self._record_in_flight(send) != "paused":
                    with self.ctx.db.write() as conn:
                        self.ctx.release(conn)
                return
            if not job.planned and self.shard == 0:
                self._plan_batch(send, job)
            outcome = self._deliver_batch(send)
            if outcome == "paused":
                return
            if outcome == "idle":
                if self._record_in_flight(send) == "paused":
                    return
                if job.planned:
                    self._finish_or_wait(send)
                    return
                if self.shard != 0:
                    self._wait_for_planning()
                    return

    def _wait_for_planning(self) -> None:
        """A delivering shard with nothing due while shard 0 is still planning: come back shortly (as a
        new work item, so a single worker thread is free to run the planner meanwhile)."""
        with self.ctx.db.write() as conn:
            self._continue_at(conn, self.ctx.now() + timedelta(seconds=PLANNING_POLL_SECONDS))

    def _current(self, job: Row[Any] | None) -> bool:
        return (job is not None and (job.plan or {}).get("token") == self.token
                and job.status in (jobs.QUEUED, jobs.PROCESSING))

    def _stop_stale(self) -> None:
        with self.ctx.db.write() as conn:
            self.ctx.complete(conn)

    def _start(self) -> _Send | None:
        now = self.ctx.now()
        with self.ctx.db.write() as conn:
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            campaign = store.get_campaign(conn, self.account_id, self.campaign_id, for_update=True)
            if not self._current(job) or campaign is None:
                self.ctx.complete(conn)  # reverted, cancelled, finished or deleted meanwhile
                return None
            assert job is not None
            messages = store.messages_of(conn, self.account_id, [self.campaign_id])[self.campaign_id]
            message = messages[0]
            template = store.get_message_template(conn, self.account_id, message.template_id) \
                if message.template_id else None
            audience = audiences.Audience.of(conn, self.account_id, campaign.included, campaign.excluded)
            values: dict[str, Any] = {"updated": now}
            if job.status == jobs.QUEUED:
                values.update(status=jobs.PROCESSING, started_at=now)
                store.set_campaign_status(conn, self.campaign_id, rules.SENDING, now)
            plan = dict(job.plan or {})
            if "facts" not in plan:
                size = audiences.count_candidates(conn, audience) \
                    if campaign.send_strategy["method"] == "throttled" else None
                plan["facts"] = schedule.prepare(conn, self.account_id, campaign.send_strategy, size, now)
            values["plan"] = plan
            self._recover_in_flight(conn, job, message.id, now, values)
            store.update_send_job(conn, self.campaign_id, values)
            self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id})
            campaign = store.get_campaign(conn, self.account_id, self.campaign_id)
        assert campaign is not None
        return _Send(campaign, message, template, audience)

    def _recover_in_flight(self, conn: Connection, job: Row[Any], message_id: str, now: datetime,
                           values: dict[str, Any]) -> None:
        """Rows left `sending` by a worker that stopped mid-batch: report them, then send them again."""
        stuck = [r.profile_id for r in store.recipients_in_status(conn, message_id, "sending", limit=100_000,
                                                                  partition=self.partition)]
        if not stuck:
            return
        keys = {delivery_id(self.account_id, f"campaign:{message_id}:{pid}"): pid for pid in stuck}
        statuses = store.delivery_statuses(conn, keys)
        unfinished = sorted(keys[did] for did, status in statuses.items() if status in _UNFINISHED)
        report = {"count": len(stuck), "first": stuck[0], "last": stuck[-1], "at": now.isoformat(),
                  "possibly_duplicated": len(unfinished), "handed_over_unrecorded": unfinished[:1000]}
        log.warning("campaign %s: %s recipients were in flight when a worker stopped; %s of them were handed to "
                    "delivery without an outcome and may receive the message twice; resending", self.campaign_id,
                    len(stuck), len(unfinished))
        values["in_flight_reports"] = [*(job.in_flight_reports or []), report]
        store.set_recipient_status(conn, message_id, stuck, "pending", only_from="sending")

    # -- planning --

    def _plan_batch(self, send: _Send, job: Row[Any]) -> None:
        now = self.ctx.now()
        campaign = send.campaign
        with self.ctx.db.read() as conn:
            # A batch for every shard: planning one batch per round would let the other shards, which
            # only deliver, run dry and wait for the planner between rounds.
            batch = audiences.next_batch(conn, send.audience, job.cursor, self.batch_size * self.shards)
            ok, skipped = audiences.eligible(conn, send.audience, campaign.channel, batch.ids, full=False)
            due = schedule.due_times(conn, self.account_id, campaign.send_strategy, job.plan["facts"], ok,
                                     job.recipients, now)
        rows = [{"message_id": send.message.id, "profile_id": p.id, "account_id": self.account_id,
                 "campaign_id": self.campaign_id, "status": "pending", "due_at": due[p.id]}
                for p in ok if due[p.id] is not None]
        late = len(ok) - len(rows)
        with self.ctx.db.write() as conn:
            if not self._current(store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)):
                return  # cancelled or reverted while this batch was read
            added = store.plan_recipients(conn, rows)
            store.add_send_counts(conn, self.campaign_id, now, recipients=added, skipped=len(skipped) + late,
                                  cursor=batch.cursor, planned=batch.done)
            self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id, "cursor": batch.cursor})

    # -- delivering --

    def _deliver_batch(self, send: _Send) -> str:
        """"idle" (nothing due), "sent" (a batch was handed over) or "paused" (relay down)."""
        now = self.ctx.now()
        message = send.message
        with self.ctx.db.write() as conn:
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            if not self._current(job):
                return "idle"
            due = store.recipients_in_status(conn, message.id, "pending", self.batch_size, due_by=now,
                                             partition=self.partition)
            if not due:
                return "idle"
            store.set_recipient_status(conn, message.id, [r.profile_id for r in due], "sending", only_from="pending")
            self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id, "claimed": len(due)})
        batch = self._prepare(send, [r.profile_id for r in due], now)
        recorded = self._record_in_flight(send, waiting=batch)
        if recorded != "ok":
            return "paused" if recorded == "paused" else "idle"
        batch.handed = [self.hand_over.submit(self._hand_over, send, batch, part) for part in _parts(batch)]
        self.in_flight = batch
        return "sent"

    def _prepare(self, send: _Send, profile_ids: list[str], now: datetime) -> _Batch:
        """Check and render one batch (no side effect outside the database reads)."""
        campaign, message = send.campaign, send.message
        batch = _Batch(profile_ids, now)
        prefix = f"campaign:{message.id}:"
        with self.ctx.db.read() as conn:
            ok, skipped = audiences.eligible(conn, send.audience, campaign.channel, profile_ids)
            for pid, reason in skipped.items():
                batch.outcomes[pid] = _outcome(pid, "skipped", reason)
            if (campaign.send_options or {}).get("use_smart_sending", True):
                recent = store.recently_messaged(conn, self.account_id, [p.id for p in ok], campaign.channel,
                                                 now - SMART_SENDING_WINDOW, except_send_key_prefix=prefix)
                for pid in recent:
                    batch.outcomes[pid] = _outcome(pid, "skipped", "smart_sending")
                ok = [p for p in ok if p.id not in recent]
            batch.groups = audiences.groups_of(conn, send.audience, campaign.included, [p.id for p in ok])
            setup = render.RenderSetup.load(conn, self.account_id, now)
            info_link = self.delivery.links(self.account_id, "").organization_info()
            prepared = self.prepared
            if campaign.channel == rules.EMAIL and send.template is not None and ok and prepared is None:
                try:
                    prepared = self.prepared = render.PreparedEmail.load(conn, self.account_id, send.template,
                                                                         message.content or {})
                except TemplateError as exc:
                    log.warning("campaign %s: the template does not compile: %s", self.campaign_id, exc)
            for profile in ok:
                try:
                    if campaign.channel == rules.EMAIL:
                        batch.emails.append((profile.id, self._email_job(conn, send, prepared, profile, setup,
                                                                         prefix, batch.groups.get(profile.id))))
                    else:
                        sms = render.sms_for(conn, self.account_id, campaign, message, send.template, profile, setup,
                                             info_link)
                        batch.texts.append((profile.id, profile.phone_number, sms))
                except (TemplateError, ApiError, _NoTemplate) as exc:
                    log.warning("campaign %s: cannot render for %s: %s", self.campaign_id, profile.id, exc)
                    batch.outcomes[profile.id] = _outcome(profile.id, "failed", "render_error")
        return batch

    def _email_job(self, conn: Connection, send: _Send, prepared: render.PreparedEmail | None, profile: Row[Any],
                   setup: render.RenderSetup, prefix: str, group: str | None) -> EmailJob:
        if prepared is None:
            raise _NoTemplate("the message has no template that compiles")
        key = prefix + profile.id
        links = recipient_links(conn, account_id=self.account_id, send_key=key, context=self.delivery)
        email = render.email_for(prepared, send.campaign, send.message, profile, setup, links)
        return EmailJob(self.account_id, profile.id, profile.email, email, key,
                        self._attribution(send, email.subject, group))

    def _hand_over(self, send: _Send, batch: _Batch, part: slice) -> list[tuple[str, DeliveryResult]]:
        """Runs in a hand-over thread: delivery builds, signs, sends and records part of the batch. The
        parts of one batch go concurrently, so one part's MIME and DKIM overlap another's SMTP."""
        if batch.emails:
            emails = batch.emails[part]
            results = send_emails(self.ctx.db, [job for _, job in emails], context=self.delivery, now=batch.now)
            return [(pid, result) for (pid, _), result in zip(emails, results, strict=True)]
        prefix = f"campaign:{send.message.id}:"
        return [(pid, send_sms(self.ctx.db, account_id=self.account_id, profile_id=pid, to=to, message=body,
                               send_key=prefix + pid, attribution=self._attribution(send, None, batch.groups.get(pid)),
                               context=self.delivery, now=batch.now))
                for pid, to, body in batch.texts[part]]

    def _record_in_flight(self, send: _Send, waiting: _Batch | None = None) -> str:
        """Wait for the batch being handed over and record its outcomes. Then `waiting` (claimed, not yet
        handed over) may go: "ok"; or not: "paused" (the relay deferred the whole batch: it goes back to
        pending) or "stopped" (the job was cancelled meanwhile: it is cancelled too)."""
        batch, self.in_flight = self.in_flight, None
        outcomes: dict[str, dict[str, Any]] = {}
        counts = {"sent": 0, "skipped": 0, "failed": 0}
        pause = False
        if batch is not None:
            self._wait_keeping_the_lease(batch.handed)
            outcomes = dict(batch.outcomes)
            for pid, result in [item for future in batch.handed for item in future.result()]:
                if result.status in _ACCEPTED:
                    outcomes[pid] = _outcome(pid, "sent", "deferred" if result.status == "deferred" else None,
                                             sent_at=batch.now, delivery=result.delivery_id)
                elif result.status == "skipped":
                    outcomes[pid] = _outcome(pid, "skipped", "unsubscribed")
                else:
                    outcomes[pid] = _outcome(pid, "failed", result.status, delivery=result.delivery_id)
            for outcome in outcomes.values():
                counts[outcome["status"]] += 1
            deferred = sum(1 for o in outcomes.values() if o.get("reason") == "deferred")
            pause = deferred > 0 and deferred == counts["sent"]
        elif waiting is None:
            return "ok"
        now = self.ctx.now()
        with self.ctx.db.write() as conn:
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            if batch is not None:
                store.record_outcomes(conn, send.message.id,
                                      [outcomes[p] for p in batch.profile_ids if p in outcomes])
                self.pauses = self.pauses + 1 if pause else 0
                store.add_send_counts(conn, self.campaign_id, now, **counts)
            if waiting is not None and not self._current(job):
                gone = "cancelled" if job is not None and job.status == jobs.CANCELLED else "pending"
                store.set_recipient_status(conn, send.message.id, waiting.profile_ids, gone, only_from="sending")
                self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id})
                return "stopped"
            if not pause:
                self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id})
                return "ok"
            if waiting is not None:
                store.set_recipient_status(conn, send.message.id, waiting.profile_ids, "pending", only_from="sending")
            base = self.delivery.settings.delivery_retry_seconds
            delay = min(timedelta(seconds=base * 2 ** (self.pauses - 1)), MAX_PAUSE)
            log.warning("campaign %s: the relay deferred a whole batch; pausing %s", self.campaign_id, delay)
            self._continue_at(conn, now + delay)
            return "paused"

    def _wait_keeping_the_lease(self, futures: list[Future[Any]]) -> None:
        """A slow relay must not let the lease lapse while a batch is handed over: another worker would
        take the job and send the batch again."""
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=max(self.ctx.lease_seconds / 3, 1.0))
            if pending:
                with self.ctx.db.write() as conn:
                    self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id, "handing_over": True})

    def _attribution(self, send: _Send, subject: str | None, group: str | None) -> dict[str, Any]:
        attribution: dict[str, Any] = {"$message": send.message.id, "$campaign": send.campaign.id,
                                       "Campaign Name": send.campaign.name, "$message_interaction": send.message.id}
        if subject:
            attribution["Subject"] = subject
        if group:
            attribution[outcomes.GROUP] = group  # kept with the message for reports, not put on events
        return attribution

    # -- finishing --

    def _continue_at(self, conn: Connection, when: datetime) -> None:
        """Complete this item and leave the rest to a new one due at `when` (same transaction)."""
        payload = {**self.item.payload, "pauses": self.pauses}
        work.enqueue(conn, kind=jobs.SEND_KIND, payload=payload, now=self.ctx.now(), run_at=when,
                     account_id=self.account_id, max_attempts=jobs.SEND_ATTEMPTS,
                     dedupe_key=f"campaign-send:{self.campaign_id}:{self.token}:{self.shard}:{when.isoformat()}")
        self.ctx.complete(conn)

    def _finish_or_wait(self, send: _Send) -> None:
        """This shard has nothing due: wait for its next due row, or be done; the last shard done
        completes the job."""
        now = self.ctx.now()
        with self.ctx.db.write() as conn:
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            if not self._current(job):
                self.ctx.complete(conn)
                return
            assert job is not None
            next_due = store.next_due_at(conn, [send.message.id], self.partition)
            if next_due is not None:
                self._continue_at(conn, max(next_due, now))
                return
            plan = dict(job.plan or {})
            done = sorted({*plan.get("done_shards", []), self.shard})
            if len(done) < self.shards:
                store.update_send_job(conn, self.campaign_id, {"plan": {**plan, "done_shards": done}, "updated": now})
                self.ctx.complete(conn)
                return
            store.update_send_job(conn, self.campaign_id, {"status": jobs.COMPLETE, "finished_at": now,
                                                           "updated": now, "plan": {**plan, "done_shards": done}})
            status = rules.SENT if job.recipients > 0 else rules.CANCELLED_NO_RECIPIENTS
            store.set_campaign_status(conn, self.campaign_id, status, now)
            self.ctx.complete(conn)


def partition(shard: int, shards: int) -> tuple[str, ...] | None:
    """The last characters of the profile ids (ULIDs, Crockford base32) that one shard delivers."""
    if shards <= 1:
        return None
    return tuple(char for index, char in enumerate(_CROCKFORD) if index % shards == shard)


class _NoTemplate(ValueError):
    pass


def _parts(batch: _Batch) -> list[slice]:
    """Slices of the batch's messages, one per hand-over call (a few, so building and sending overlap)."""
    size = len(batch.emails) or len(batch.texts)
    step = max(1, -(-size // HAND_OVER_PARTS))
    return [slice(start, start + step) for start in range(0, size, step)] or [slice(0, 0)]


def _outcome(profile_id: str, status: str, reason: str | None, *, sent_at: datetime | None = None,
             delivery: str | None = None) -> dict[str, Any]:
    return {"profile_id": profile_id, "status": status, "reason": reason, "sent_at": sent_at,
            "delivery_id": delivery}


@work_handler(jobs.SEND_KIND)
def run_send(ctx: WorkContext, item: WorkItem) -> None:
    Dispatcher(ctx, item).run()
