"""Durable web feed refreshes: one work item per scheduled fetch. The fetched content, the next
scheduled item and the completion of this one commit together, so a killed worker neither loses
the schedule nor forks it into two chains."""

from __future__ import annotations

import logging

from menura.domain import web_feeds as rules
from menura.settings import get_settings
from menura.store import web_feeds as store
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler

log = logging.getLogger(__name__)


@work_handler(rules.REFRESH_KIND)
def refresh_web_feed(ctx: WorkContext, item: WorkItem) -> None:
    feed_id = str(item.payload.get("feed_id", ""))
    generation = str(item.payload.get("generation", ""))
    with ctx.db.read() as conn:
        row = store.get_feed_any_account(conn, feed_id)
    if row is None or row.updated.isoformat() != generation:
        return  # deleted, or changed since: a newer chain (or none) owns this feed now
    # The fetch happens outside any transaction: it may take up to 30 seconds.
    outcome = rules.refresh(row, ctx.now(), get_settings().fetch_allowed_hosts)
    with ctx.db.write() as conn:
        current = store.get_feed_any_account(conn, feed_id)
        if current is None or current.updated.isoformat() != generation:
            ctx.complete(conn)
            return
        store.update_feed(conn, current.account_id, feed_id, outcome.values)
        rules.schedule_next(conn, current, generation, outcome.next_run, ctx.now())
        ctx.complete(conn)
    if outcome.values.get("status") != "ok":
        log.info("web feed %s: %s", feed_id, outcome.values.get("last_error"))
