"""Events category: create (single and bulk, staged durably and answered 202), list, get, and
the event's metric and profile relationships."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row
from starlette.concurrency import run_in_threadpool

from menura import ids
from menura.api import event_bodies as bodies
from menura.api import metrics as metrics_api
from menura.api.listing import Listing, list_resources
from menura.api.operation import XL, Category, Ctx, Reply, tier
from menura.domain import consent, event_attribution, event_intake
from menura.domain import events as rules
from menura.domain import profiles as profile_rules
from menura.jsonapi import errors
from menura.jsonapi.documents import Included, ResourceType, identifier, resource_object, single_document
from menura.jsonapi.filters import FilterField, datetime_field, has_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import events as store
from menura.store import metrics as metric_store
from menura.store.event_tables import events as events_table

api = Category("Events")
M = tier(10, 150)
EVENT = ResourceType("event", "events", relationships=("profile", "metric", "attributions"))

EVENT_FIELDS = ("datetime", "event_properties", "id", "timestamp", "uuid")
PROFILE_FIELDS = (
    "created", "email", "external_id", "first_name", "id", "image", "last_event_date", "last_name", "locale",
    "location", "location.address1", "location.address2", "location.city", "location.country", "location.ip",
    "location.latitude", "location.longitude", "location.region", "location.timezone", "location.zip",
    "organization", "phone_number", "properties", "title", "updated",
)
FIELDS = {"event": EVENT_FIELDS, "metric": metrics_api.METRIC_FIELDS, "profile": PROFILE_FIELDS,
          "attribution": ("id",)}


def _timestamp_filter(op: str, value: Any) -> Any:
    when = datetime.fromtimestamp(float(value), UTC)
    column = events_table.c.occurred_at
    return {"greater-than": column > when, "greater-or-equal": column >= when,
            "less-than": column < when, "less-or-equal": column <= when}[op]


COMPARISONS = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")
FILTERS = {
    "metric_id": FilterField("string", frozenset({"equals"}), frozenset({"equals"}), column=events_table.c.metric_id),
    "profile_id": FilterField("string", frozenset({"equals"}), column=events_table.c.profile_id),
    "profile": has_field(events_table.c.profile_id),
    "metric": has_field(events_table.c.metric_id),
    "datetime": datetime_field(events_table.c.occurred_at, COMPARISONS),
    "timestamp": FilterField("number", frozenset(COMPARISONS), column=_timestamp_filter),
}
SORTS = {"datetime": events_table.c.occurred_at, "timestamp": events_table.c.occurred_at}


# --- serialization -----------------------------------------------------------------------------------


def serialize(ctx: Ctx, row: Any, *, attributions: bool = False) -> dict[str, Any]:
    assert ctx.query is not None
    linkage: dict[str, Any] = {"profile": identifier("profile", row.profile_id),
                               "metric": identifier("metric", row.metric_id)}
    if attributions:
        linkage["attributions"] = []
    return resource_object(EVENT, row.id, rules.event_attributes(row), ctx.links,
                           fields=ctx.query.fields_for("event"), relationship_data=linkage)


def _include_metrics(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict]]:
    metric_rows = metric_store.get_metrics(conn, ctx.account_id, {row.metric_id for row in rows})
    linkage = {row.id: identifier("metric", row.metric_id) for row in rows}
    return linkage, [metrics_api.serialize_metric(ctx, m) for m in metric_rows]


def _include_profiles(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict]]:
    linkage = {row.id: identifier("profile", row.profile_id) for row in rows}
    return linkage, profile_resources(conn, ctx, [row.profile_id for row in rows])


def _include_attributions(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    found = event_attribution.attributions_for(conn, ctx.account_id, rows)
    linkage = {event_id: [identifier("attribution", a.id) for a in items] for event_id, items in found.items()}
    return linkage, [_attribution_resource(ctx, a) for items in found.values() for a in items]


def _attribution_resource(ctx: Ctx, attribution: event_attribution.Attribution) -> dict[str, Any]:
    relationships = {"event": {"data": identifier("event", attribution.event_id)},
                     "attributed-event": {"data": identifier("event", attribution.attributed_event_id)},
                     "campaign": {"data": identifier("campaign", attribution.campaign_id)}}
    if attribution.message_id:
        relationships["campaign-message"] = {"data": identifier("campaign-message", attribution.message_id)}
    return {"type": "attribution", "id": attribution.id, "relationships": relationships,
            "links": {"self": f"{ctx.base_url}/api/attributions/{attribution.id}/"}}


INCLUDES = {"metric": _include_metrics, "profile": _include_profiles, "attributions": _include_attributions}


PROFILE = ResourceType("profile", "profiles", relationships=("lists", "segments", "push-tokens"))


def profile_resources(conn: Connection, ctx: Ctx, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Profile resource objects for included/related profiles (deleted ones are left out)."""
    assert ctx.query is not None
    fields = ctx.query.fields_for("profile")
    rows = rules.profiles_of(conn, ctx.account_id, list(dict.fromkeys(profile_ids)))
    subscriptions = consent.subscriptions_for(conn, ctx.account_id, rows) \
        if ctx.query.wants("profile", "subscriptions") else {}
    predictive = profile_rules.predictive_analytics(conn, ctx.account_id, [row.id for row in rows]) \
        if ctx.query.wants("profile", "predictive_analytics") else {}
    out = []
    for row in rows:
        attrs = profile_rules.profile_attributes(row)
        if row.id in subscriptions:
            attrs["subscriptions"] = subscriptions[row.id]
        if row.id in predictive:
            attrs["predictive_analytics"] = predictive[row.id]
        out.append(resource_object(PROFILE, row.id, attrs, ctx.links, fields=fields))
    return out


def _event_or_404(conn: Connection, ctx: Ctx) -> Any:
    row = store.get_event(conn, ctx.account_id, ctx.path_params["id"])
    if row is None:
        raise errors.not_found(f"An event with id '{ctx.path_params['id']}' does not exist.")
    return row


# --- create -------------------------------------------------------------------------------------------


@api.post("/api/events", "create_event", scopes=("events:write",), rate=XL, success=202)
async def create_event(ctx: Ctx) -> Reply:
    """Create Event: validated, staged durably, answered 202; the ingest worker records it."""
    received = ctx.now()
    entry = bodies.single_entry(ctx.body(bodies.EventCreate), received)
    await stage_single(ctx, entry, received)
    return Reply(202)


async def stage_single(ctx: Ctx, entry: event_intake.IntakeEntry, received: datetime) -> None:
    """Make one accepted entry durable: appended to the intake log where there is one, else handed
    to the process's group-commit writer (and its commit awaited)."""
    if entry.profile_id:
        await run_in_threadpool(_check_ids, ctx, entry)
    if _logged(ctx, [entry], received):
        return
    await event_intake.staging_writer(ctx.db).stage(ctx.account_id, [entry], received)


def _logged(ctx: Ctx, entries: list[event_intake.IntakeEntry], received: datetime, job_id: str | None = None) -> bool:
    """Appended to the intake log (embedded servers); an embedded worker is woken to expand it."""
    if not event_intake.log_accepted(ctx.db, ctx.account_id, entries, received=received, job_id=job_id):
        return False
    if not ctx.services.work_signal.is_set():
        ctx.services.work_signal.set()
    return True


def _check_ids(ctx: Ctx, entry: event_intake.IntakeEntry) -> None:
    with ctx.db.read() as conn:
        event_intake.check_profile_ids(conn, ctx.account_id, [entry])


@api.post("/api/event-bulk-create-jobs", "bulk_create_events", scopes=("events:write",), rate=M, success=202)
def bulk_create_events(ctx: Ctx) -> Reply:
    """Bulk Create Events: up to 1,000 events for one or more profiles, staged as one job."""
    received = ctx.now()
    body = ctx.body(bodies.BulkJobCreate)
    entries = bodies.bulk_entries(body.data.attributes.events_bulk_create.data,
                                  "/data/attributes/events-bulk-create/data", received)
    stage_entries(ctx, entries, received, bulk=True)
    return Reply(202)


def stage_entries(ctx: Ctx, entries: list[event_intake.IntakeEntry], received: datetime, *,
                  bulk: bool = False) -> None:
    """Stage accepted entries in one transaction (a bulk request also gets its job row), or append
    them to the intake log (whose drain records the job)."""
    if event_intake.log_directory(ctx.db) is not None:
        if any(entry.profile_id for entry in entries):
            with ctx.db.read() as conn:
                event_intake.check_profile_ids(conn, ctx.account_id, entries)
        if _logged(ctx, entries, received, ids.uuid4() if bulk else None):
            return
    with ctx.db.write() as conn:
        event_intake.check_profile_ids(conn, ctx.account_id, entries)
        job_id = None
        if bulk:
            job_id = ids.uuid4()
            event_intake.create_bulk_job(conn, account_id=ctx.account_id, job_id=job_id,
                                         total=sum(len(e.events) for e in entries), now=received)
        event_intake.stage(conn, account_id=ctx.account_id, entries=entries, now=received, job_id=job_id)


# --- read ---------------------------------------------------------------------------------------------


@api.get("/api/events", "get_events", scopes=("events:read",), rate=XL,
         query=QuerySpec(fields=FIELDS, include=("attributions", "metric", "profile"), sort=("datetime", "timestamp"),
                         page=PageBounds(200, 1, 1000), filters=FILTERS))
def get_events(ctx: Ctx) -> dict[str, Any]:
    """Get Events."""
    assert ctx.query is not None
    listing = Listing(store.event_listing_select(ctx.account_id), events_table.c.id, SORTS, default_sort="datetime")
    wants_attributions = "attributions" in ctx.query.include
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: serialize(ctx, row, attributions=wants_attributions),
                              includes=INCLUDES)


@api.get("/api/events/{id}", "get_event", scopes=("events:read",), rate=M,
         query=QuerySpec(fields=FIELDS, include=("attributions", "metric", "profile")))
def get_event(ctx: Ctx) -> dict[str, Any]:
    """Get Event."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        row = _event_or_404(conn, ctx)
        resource = serialize(ctx, row, attributions="attributions" in ctx.query.include)
        included = None
        if ctx.query.include:
            included = Included()
            for name in ctx.query.include:
                _linkage, resources = INCLUDES[name](conn, ctx, [row])
                included.extend(resources)
    return single_document(resource, included, links={"self": ctx.url})


@api.get("/api/events/{id}/metric", "get_metric_for_event", scopes=("events:read", "metrics:read"), rate=XL,
         query=QuerySpec(fields={"metric": metrics_api.METRIC_FIELDS}))
def get_metric_for_event(ctx: Ctx) -> dict[str, Any]:
    """Get Metric for Event."""
    with ctx.db.read() as conn:
        row = _event_or_404(conn, ctx)
        metric = metric_store.get_metric(conn, ctx.account_id, row.metric_id)
    data = metrics_api.serialize_metric(ctx, metric) if metric is not None else None
    return single_document(data, links={"self": ctx.url})


@api.get("/api/events/{id}/relationships/metric", "get_metric_id_for_event", scopes=("events:read", "metrics:read"),
         rate=XL)
def get_metric_id_for_event(ctx: Ctx) -> dict[str, Any]:
    """Get Metric ID for Event."""
    with ctx.db.read() as conn:
        row = _event_or_404(conn, ctx)
    return {"data": identifier("metric", row.metric_id), "links": {"self": ctx.url}}


PROFILE_ADDITIONAL = {"profile": ("subscriptions", "predictive_analytics")}


@api.get("/api/events/{id}/profile", "get_profile_for_event", scopes=("events:read", "profiles:read"), rate=XL,
         query=QuerySpec(fields={"profile": PROFILE_FIELDS}, additional_fields=PROFILE_ADDITIONAL))
def get_profile_for_event(ctx: Ctx) -> dict[str, Any]:
    """Get Profile for Event."""
    with ctx.db.read() as conn:
        row = _event_or_404(conn, ctx)
        found = profile_resources(conn, ctx, [row.profile_id])
    return single_document(found[0] if found else None, links={"self": ctx.url})


@api.get("/api/events/{id}/relationships/profile", "get_profile_id_for_event",
         scopes=("events:read", "profiles:read"), rate=XL)
def get_profile_id_for_event(ctx: Ctx) -> dict[str, Any]:
    """Get Profile ID for Event."""
    with ctx.db.read() as conn:
        row = _event_or_404(conn, ctx)
    return {"data": identifier("profile", row.profile_id), "links": {"self": ctx.url}}
