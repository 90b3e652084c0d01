"""Client-side event endpoints (`/client/*`, public key in `company_id`): the same intake as the
server-side ones, except that existing profile identifiers are never changed from a browser."""

from __future__ import annotations

from menura.api import event_bodies as bodies
from menura.api.events import stage_entries, stage_single
from menura.api.operation import XL, Category, Ctx, Reply, tier

api = Category("Client")


@api.post("/client/events", "create_client_event", scopes=("events:write",), rate=XL, success=202, auth="public")
async def create_client_event(ctx: Ctx) -> Reply:
    """Create Client Event."""
    received = ctx.now()
    entry = bodies.single_entry(ctx.body(bodies.EventCreate), received, client=True)
    await stage_single(ctx, entry, received)
    return Reply(202)


@api.post("/client/event-bulk-create", "bulk_create_client_events", scopes=("events:write",), rate=tier(10, 150),
          success=202, auth="public")
def bulk_create_client_events(ctx: Ctx) -> Reply:
    """Bulk Create Client Events: one profile and up to 1,000 of its events."""
    received = ctx.now()
    body = ctx.body(bodies.ClientBulkCreate)
    entries = bodies.bulk_entries([body.data], "/data", received, client=True, single=True)
    stage_entries(ctx, entries, received)
    return Reply(202)
