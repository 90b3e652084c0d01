"""Durable delivery work: a message queued inside a caller's transaction, or deferred (relay down,
4xx), is sent by this handler. The outcome and the item's completion commit together."""

from __future__ import annotations

from menura.delivery.context import delivery_context
from menura.delivery.sending import DELIVER_KIND, deliver_stored
from menura.delivery.sms_flow import deliver_stored_sms
from menura.store import delivery as store
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler


@work_handler(DELIVER_KIND)
def deliver(ctx: WorkContext, item: WorkItem) -> None:
    delivery_id = str(item.payload["id"])
    context = delivery_context(ctx.db, clock=ctx.clock)
    with ctx.db.read() as conn:
        row = store.get_message(conn, delivery_id, bodies=False)
    if row is None:
        return
    if row.channel == "sms":
        deliver_stored_sms(ctx.db, delivery_id, ctx=context, complete=ctx.complete)
    else:
        deliver_stored(ctx.db, delivery_id, ctx=context, complete=ctx.complete)
