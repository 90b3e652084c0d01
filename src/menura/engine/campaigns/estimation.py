"""Recipient estimation jobs: count the audience members that may receive the campaign's channel
now, streaming the audience a batch at a time. A recount from scratch, so a retried job is exact."""

from __future__ import annotations

import logging

from menura.domain import campaign_jobs as jobs
from menura.engine.campaigns import audience as audiences
from menura.store import campaigns as store
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler

log = logging.getLogger(__name__)
BATCH = 1000


def estimate(ctx: WorkContext, account_id: str, campaign_id: str) -> int | None:
    """The number of recipients the campaign would have now; None if the campaign is gone."""
    with ctx.db.read() as conn:
        campaign = store.get_campaign(conn, account_id, campaign_id)
        if campaign is None:
            return None
        audience = audiences.Audience.of(conn, account_id, campaign.included, campaign.excluded)
    count = 0
    cursor: str | None = None
    while True:
        with ctx.db.read() as conn:
            batch = audiences.next_batch(conn, audience, cursor, BATCH)
            if batch.ids:
                ok, _ = audiences.eligible(conn, audience, campaign.channel, batch.ids, full=False)
                count += len(ok)
        if batch.done:
            return count
        cursor = batch.cursor


@work_handler(jobs.ESTIMATE_KIND)
def run_estimation(ctx: WorkContext, item: WorkItem) -> None:
    campaign_id = str(item.payload["campaign_id"])
    account_id = str(item.account_id)
    with ctx.db.write() as conn:
        row = store.get_estimation(conn, account_id, campaign_id)
        if row is None or row.work_item_id != item.id:
            ctx.complete(conn)  # superseded by a newer refresh, or the campaign was deleted
            return
        store.update_estimation(conn, campaign_id, {"status": jobs.PROCESSING, "updated": ctx.now()})
    count = estimate(ctx, account_id, campaign_id)
    with ctx.db.write() as conn:
        row = store.get_estimation(conn, account_id, campaign_id)
        if row is not None and row.work_item_id == item.id and count is not None:
            store.update_estimation(conn, campaign_id, {"status": jobs.COMPLETE, "estimated_recipient_count": count,
                                                        "updated": ctx.now()})
        ctx.complete(conn)
