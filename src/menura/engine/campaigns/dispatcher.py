"""The durable send job of a campaign.

The job row (`campaign_send_jobs`) and the recipient ledger (`campaign_recipients`) hold all state,
so any worker can resume a job, and each step commits its effects with the work item's checkpoint:

1. plan: read the next batch of the audience by profile-id cursor, keep those who may receive the
   channel, and insert them into the ledger with their due time (strategy: local time zone,
   throttle wave, best hour); the cursor moves in the same transaction;
2. deliver: take due `pending` rows, mark them `sending` and commit (the in-flight batch), check
   each recipient again (consent, suppressions, smart sending), render each message once, hand the
   batch to delivery, then record every outcome and commit.

Planning and delivering alternate, so an immediate send starts at once and memory holds one batch.
A worker killed mid-batch leaves rows `sending`: the next run reports them (`in_flight_reports`)
and sends them again; delivery's send keys make every recipient whose message was recorded a
no-op, so only a message handed over but not yet recorded can arrive twice. A batch the relay
deferred entirely (relay down) pauses the job with backoff; delivery retries the deferred messages
itself. Cancelling marks pending rows `cancelled`; the job stops at its next step. Rows due later
(throttled waves, local times, best hours) are waited for by a new work item due at the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import EmailJob, delivery_context, recipient_links, send_emails, send_sms
from menura.delivery.context import DeliveryContext
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


@dataclass
class _Send:
    campaign: Row[Any]
    message: Row[Any]
    template: Row[Any] | None
    audience: audiences.Audience


class Dispatcher:
    def __init__(self, ctx: WorkContext, item: WorkItem) -> None:
        self.ctx = ctx
        self.item = item
        self.account_id = str(item.account_id)
        self.campaign_id = str(item.payload["campaign_id"])
        self.token = item.payload.get("token")
        self.batch_size = int(item.payload.get("batch_size") or DEFAULT_BATCH)
        self.delivery: DeliveryContext = delivery_context(ctx.db, clock=ctx.clock)

    # -- the loop --

    def run(self) -> None:
        send = self._start()
        if send is None:
            return
        while True:
            with self.ctx.db.read() as conn:
                job = store.get_send_job(conn, self.account_id, self.campaign_id)
            if not self._current(job):
                self._stop_stale()
                return
            assert job is not None
            if self.ctx.stopping:
                with self.ctx.db.write() as conn:
                    self.ctx.release(conn)
                return
            if not job.planned:
                self._plan_batch(send, job)
            outcome = self._deliver_batch(send)
            if outcome == "paused":
                return
            if outcome == "idle" and job.planned:
                self._finish_or_wait(send)
                return

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
        """Rows left `sending` by a worker that died mid-batch: report them, then send them again."""
        stuck = store.recipients_in_status(conn, message_id, "sending", limit=100_000)
        if not stuck:
            return
        ids_ = [r.profile_id for r in stuck]
        report = {"count": len(ids_), "first": ids_[0], "last": ids_[-1], "at": now.isoformat()}
        log.warning("campaign %s: %s recipients were in flight when a worker stopped; resending them (only "
                    "messages handed over but not recorded can arrive twice)", self.campaign_id, len(ids_))
        values["in_flight_reports"] = [*(job.in_flight_reports or []), report]
        store.set_recipient_status(conn, message_id, ids_, "pending", only_from="sending")

    # -- planning --

    def _plan_batch(self, send: _Send, job: Row[Any]) -> None:
        now = self.ctx.now()
        campaign = send.campaign
        with self.ctx.db.read() as conn:
            batch = audiences.next_batch(conn, send.audience, job.cursor, self.batch_size)
            ok, skipped = audiences.eligible(conn, send.audience, campaign.channel, batch.ids)
            due = schedule.due_times(conn, self.account_id, campaign.send_strategy, job.plan["facts"], ok,
                                     job.recipients, now)
        rows = [{"message_id": send.message.id, "profile_id": p.id, "account_id": self.account_id,
                 "campaign_id": self.campaign_id, "status": "pending", "due_at": due[p.id]}
                for p in ok if due[p.id] is not None]
        late = len(ok) - len(rows)
        with self.ctx.db.write() as conn:
            added = store.plan_recipients(conn, rows)
            store.add_send_counts(conn, self.campaign_id, now, recipients=added, skipped=len(skipped) + late,
                                  cursor=batch.cursor, planned=batch.done)
            self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id, "cursor": batch.cursor})

    # -- delivering --

    def _deliver_batch(self, send: _Send) -> str:
        """"idle" (nothing due), "sent" (a batch went out) or "paused" (relay down: resumes later)."""
        now = self.ctx.now()
        message = send.message
        with self.ctx.db.write() as conn:
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            if not self._current(job):
                return "idle"
            due = store.recipients_in_status(conn, message.id, "pending", self.batch_size, due_by=now)
            if not due:
                return "idle"
            store.set_recipient_status(conn, message.id, [r.profile_id for r in due], "sending", only_from="pending")
            self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id, "in_flight": len(due)})
        outcomes = self._send(send, [r.profile_id for r in due], now)
        counts = {"sent": 0, "skipped": 0, "failed": 0}
        for outcome in outcomes:
            counts[outcome["status"]] += 1
        deferred = sum(1 for o in outcomes if o.get("reason") == "deferred")
        with self.ctx.db.write() as conn:
            store.record_outcomes(conn, message.id, outcomes)
            pause = deferred > 0 and deferred == counts["sent"]
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            plan = dict(job.plan or {}) if job is not None else {}
            plan["pauses"] = plan.get("pauses", 0) + 1 if pause else 0
            store.add_send_counts(conn, self.campaign_id, now, plan=plan, **counts)
            if pause:
                base = self.delivery.settings.delivery_retry_seconds
                delay = min(timedelta(seconds=base * 2 ** (plan["pauses"] - 1)), MAX_PAUSE)
                log.warning("campaign %s: the relay deferred a whole batch; pausing %s", self.campaign_id, delay)
                self._continue_at(conn, now + delay)
                return "paused"
            self.ctx.checkpoint(conn, {"campaign_id": self.campaign_id})
        return "sent"

    def _send(self, send: _Send, profile_ids: list[str], now: datetime) -> list[dict[str, Any]]:
        """Check, render and hand over one batch; one outcome per profile id."""
        campaign, message = send.campaign, send.message
        outcomes: dict[str, dict[str, Any]] = {}

        def skip(pid: str, reason: str, status: str = "skipped") -> None:
            outcomes[pid] = {"profile_id": pid, "status": status, "reason": reason, "sent_at": None,
                             "delivery_id": None}

        prefix = f"campaign:{message.id}:"
        with self.ctx.db.read() as conn:
            ok, skipped = audiences.eligible(conn, send.audience, campaign.channel, profile_ids)
            for pid, reason in skipped.items():
                skip(pid, reason)
            if (campaign.send_options or {}).get("use_smart_sending", True):
                recent = store.recently_messaged(conn, self.account_id, [p.id for p in ok], campaign.channel,
                                                 now - SMART_SENDING_WINDOW, except_send_key_prefix=prefix)
                for pid in recent:
                    skip(pid, "smart_sending")
                ok = [p for p in ok if p.id not in recent]
            setup = render.RenderSetup.load(conn, self.account_id, now)
            if campaign.channel == rules.EMAIL:
                email_jobs = self._render_emails(conn, send, ok, setup, prefix, skip)
            else:
                sms = self._render_sms(conn, send, ok, setup, skip)
        if campaign.channel == rules.EMAIL:
            results = send_emails(self.ctx.db, [j for _, j in email_jobs], context=self.delivery, now=now) \
                if email_jobs else []
            handed = [(pid, result) for (pid, _), result in zip(email_jobs, results, strict=True)]
        else:
            handed = [(pid, send_sms(self.ctx.db, account_id=self.account_id, profile_id=pid, to=to, message=body,
                                     send_key=prefix + pid, attribution=self._attribution(send, None),
                                     context=self.delivery, now=now))
                      for pid, to, body in sms]
        for pid, result in handed:
            if result.status in _ACCEPTED:
                outcomes[pid] = {"profile_id": pid, "status": "sent", "sent_at": now,
                                 "reason": "deferred" if result.status == "deferred" else None,
                                 "delivery_id": result.delivery_id}
            elif result.status == "skipped":
                skip(pid, "unsubscribed")
            else:
                outcomes[pid] = {"profile_id": pid, "status": "failed", "reason": result.status, "sent_at": None,
                                 "delivery_id": result.delivery_id}
        return [outcomes[pid] for pid in profile_ids if pid in outcomes]

    def _attribution(self, send: _Send, subject: str | None) -> dict[str, Any]:
        attribution = {"$message": send.message.id, "$campaign": send.campaign.id,
                       "Campaign Name": send.campaign.name, "$message_interaction": send.message.id}
        if subject:
            attribution["Subject"] = subject
        return attribution

    def _render_emails(self, conn: Connection, send: _Send, profiles: list[Row[Any]], setup: render.RenderSetup,
                       prefix: str, skip: Any) -> list[tuple[str, EmailJob]]:
        prepared: list[tuple[str, EmailJob]] = []
        if send.template is None:
            for p in profiles:
                skip(p.id, "no_template", "failed")
            return prepared
        for p in profiles:
            key = prefix + p.id
            links = recipient_links(conn, account_id=self.account_id, send_key=key, context=self.delivery)
            try:
                email = render.email_for(conn, self.account_id, send.campaign, send.message, send.template, p,
                                         setup, links)
            except (TemplateError, ApiError) as exc:
                log.warning("campaign %s: cannot render for %s: %s", self.campaign_id, p.id, exc)
                skip(p.id, "render_error", "failed")
                continue
            prepared.append((p.id, EmailJob(self.account_id, p.id, p.email, email, key,
                                            self._attribution(send, email.subject))))
        return prepared

    def _render_sms(self, conn: Connection, send: _Send, profiles: list[Row[Any]], setup: render.RenderSetup,
                    skip: Any) -> list[tuple[str, str, Any]]:
        prepared: list[tuple[str, str, Any]] = []
        for p in profiles:
            try:
                body = render.sms_for(conn, self.account_id, send.campaign, send.message, send.template, p, setup)
            except (TemplateError, ApiError) as exc:
                log.warning("campaign %s: cannot render for %s: %s", self.campaign_id, p.id, exc)
                skip(p.id, "render_error", "failed")
                continue
            prepared.append((p.id, p.phone_number, body))
        return prepared

    # -- finishing --

    def _continue_at(self, conn: Connection, when: datetime) -> None:
        """Complete this item and leave the rest to a new one due at `when` (same transaction)."""
        work.enqueue(conn, kind=jobs.SEND_KIND, payload=dict(self.item.payload), now=self.ctx.now(), run_at=when,
                     account_id=self.account_id,
                     dedupe_key=f"campaign-send:{self.campaign_id}:{self.token}:{when.isoformat()}")
        self.ctx.complete(conn)

    def _finish_or_wait(self, send: _Send) -> None:
        now = self.ctx.now()
        with self.ctx.db.write() as conn:
            job = store.get_send_job(conn, self.account_id, self.campaign_id, for_update=True)
            if not self._current(job):
                self.ctx.complete(conn)
                return
            assert job is not None
            next_due = store.next_due_at(conn, [send.message.id])
            if next_due is not None:
                self._continue_at(conn, max(next_due, now))
                return
            store.update_send_job(conn, self.campaign_id, {"status": jobs.COMPLETE, "finished_at": now,
                                                           "updated": now})
            status = rules.SENT if job.recipients > 0 else rules.CANCELLED_NO_RECIPIENTS
            store.set_campaign_status(conn, self.campaign_id, status, now)
            self.ctx.complete(conn)


@work_handler(jobs.SEND_KIND)
def run_send(ctx: WorkContext, item: WorkItem) -> None:
    Dispatcher(ctx, item).run()
