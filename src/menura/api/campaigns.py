"""Campaigns category: campaigns, campaign messages, send jobs, recipient estimations, and the
campaign side of tags. Routes only: bodies and answers of each revision come from
`menura.api.campaign_revisions`, rules from `menura.domain.campaigns` / `campaign_jobs`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, literal

from menura.api import campaign_bodies as bodies
from menura.api import campaign_revisions as shapes
from menura.api.bodies import expect_id, expect_type
from menura.api.images import image_resource
from menura.api.listing import Listing, attach_includes, list_resources, relationship_ids
from menura.api.operation import Category, Ctx, M, Reply, S
from menura.api.related import include_tags, tag_resource
from menura.api.templates import template_resource
from menura.domain import campaign_jobs as jobs
from menura.domain import campaigns as rules
from menura.domain import tags as tag_rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, identifier, resource_object, single_document
from menura.jsonapi.filters import FilterField, boolean_field, datetime_field, filter_equalities, id_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.jsonapi.revisions import changed
from menura.store import campaigns as store
from menura.store import images as image_store
from menura.store.types import UtcDateTime

api = Category("Campaigns")

READ, WRITE = ("campaigns:read",), ("campaigns:write",)
SEND_JOB = ResourceType("campaign-send-job", "campaign-send-jobs")
ESTIMATION_JOB = ResourceType("campaign-recipient-estimation-job", "campaign-recipient-estimation-jobs")
ESTIMATION = ResourceType("campaign-recipient-estimation", "campaign-recipient-estimations")
AUDIENCE = ResourceType("campaign-audience", "campaign-audiences", ("campaign", "campaign-messages"))

_CAMPAIGN_FIELDS = (
    "archived", "audiences", "audiences.excluded", "audiences.included", "created_at", "id", "name", "scheduled_at",
    "send_options", "send_options.use_smart_sending", "send_strategy", "send_strategy.date", "send_strategy.datetime",
    "send_strategy.method", "send_strategy.options", "send_strategy.options.is_local",
    "send_strategy.options.send_past_recipients_immediately", "send_strategy.throttle_percentage", "send_time",
    "status", "tracking_options", "tracking_options.add_tracking_params", "tracking_options.custom_tracking_params",
    "tracking_options.is_tracking_clicks", "tracking_options.is_tracking_opens", "updated_at",
    # before 2025-04-15
    "send_strategy.options_static", "send_strategy.options_static.datetime", "send_strategy.options_static.is_local",
    "send_strategy.options_static.send_past_recipients_immediately", "send_strategy.options_throttled",
    "send_strategy.options_throttled.datetime", "send_strategy.options_throttled.throttle_percentage",
    "send_strategy.options_sto", "send_strategy.options_sto.date",
    # 2026-10-15
    "definition", "definition.name", "definition.archived", "definition.builder", "definition.color",
    "definition.description", "definition.send_settings",
)
_MESSAGE_FIELDS = (
    "created_at", "definition", "definition.channel", "definition.content", "definition.content.action_buttons",
    "definition.content.bcc_email", "definition.content.body", "definition.content.cc_email",
    "definition.content.dynamic_image", "definition.content.from_email", "definition.content.from_label",
    "definition.content.media_url", "definition.content.preview_text", "definition.content.reply_to_email",
    "definition.content.subject", "definition.content.title", "definition.kv_pairs", "definition.label",
    "definition.notification_type", "definition.options", "definition.options.badge",
    "definition.options.badge.badge_options", "definition.options.badge.badge_options.badge_config",
    "definition.options.badge.badge_options.set_from_property", "definition.options.badge.badge_options.value",
    "definition.options.badge.display", "definition.options.on_open", "definition.options.on_open.android_deep_link",
    "definition.options.on_open.ios_deep_link", "definition.options.on_open.type",
    "definition.options.on_open.web_url", "definition.options.play_sound", "definition.render_options",
    "definition.render_options.add_info_link", "definition.render_options.add_opt_out_language",
    "definition.render_options.add_org_prefix", "definition.render_options.shorten_links", "id", "send_times",
    "updated_at",
    # before 2025-04-15 (and assign_template's answer)
    "channel", "content", "content.bcc_email", "content.body", "content.cc_email", "content.from_email",
    "content.from_label", "content.media_url", "content.preview_text", "content.reply_to_email", "content.subject",
    "label", "render_options", "render_options.add_info_link", "render_options.add_opt_out_language",
    "render_options.add_org_prefix", "render_options.shorten_links",
    # 2026-10-15
    "created", "updated", "definition.name", "definition.status", "definition.tracking_options",
    "definition.send_options",
)
_TEMPLATE_FIELDS = ("amp", "created", "editor_type", "html", "id", "name", "text", "updated")
_IMAGE_FIELDS = ("format", "hidden", "id", "image_url", "name", "size", "updated_at")
_AUDIENCE_FIELDS = ("created", "updated", "definition", "definition.name", "definition.included",
                    "definition.excluded", "definition.priority")
CAMPAIGN_FIELDS = {"campaign": _CAMPAIGN_FIELDS}
MESSAGE_FIELDS = {"campaign-message": _MESSAGE_FIELDS}
TAG_FIELDS = {"tag": ("id", "name")}
_COMPARE = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Unscheduled campaigns sort first (ascending) on scheduled_at; NULLs cannot take part in a keyset.
_SCHEDULED_SORT = func.coalesce(store.CAMPAIGN_COLUMNS["scheduled_at"], literal(_EPOCH, UtcDateTime())
                                ).label("scheduled_sort")

FILTERS: dict[str, FilterField] = {
    "id": id_field(store.CAMPAIGN_COLUMNS["id"], single=(), list=("any",)),
    "messages.channel": FilterField("string", frozenset({"equals"}), enum=rules.CHANNELS,
                                    column=store.CAMPAIGN_COLUMNS["channel"]),
    "name": FilterField("string", frozenset({"contains"}), column=store.CAMPAIGN_COLUMNS["name"]),
    "status": FilterField("string", frozenset({"equals"}), frozenset({"any", "equals"}), enum=rules.STATUSES,
                          column=store.CAMPAIGN_COLUMNS["status"]),
    "archived": boolean_field(store.CAMPAIGN_COLUMNS["archived"]),
    "created_at": datetime_field(store.CAMPAIGN_COLUMNS["created_at"], ops=_COMPARE),
    "scheduled_at": datetime_field(store.CAMPAIGN_COLUMNS["scheduled_at"], ops=_COMPARE),
    "updated_at": datetime_field(store.CAMPAIGN_COLUMNS["updated_at"], ops=_COMPARE),
}


def _campaign_type(revision: str) -> ResourceType:
    return ResourceType("campaign", "campaigns", shapes.campaign_relationships(revision))


def _message_type(revision: str) -> ResourceType:
    return ResourceType("campaign-message", "campaign-messages", shapes.message_relationships(revision))


# --------------------------------------------------------------------------- serialization


def campaign_object(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(_campaign_type(ctx.revision), row.id, shapes.campaign_attributes(row, ctx.revision),
                           ctx.links, fields=ctx.query.fields_for("campaign"))


def message_object(ctx: Ctx, row: Row[Any], campaign: Row[Any], *, linkage: bool = False) -> dict[str, Any]:
    assert ctx.query is not None
    data = None
    if linkage:
        data = _message_linkage(ctx, row, campaign)
    return resource_object(_message_type(ctx.revision), row.id, shapes.message_attributes(row, campaign, ctx.revision),
                           ctx.links, fields=ctx.query.fields_for("campaign-message"), relationship_data=data)


def _message_linkage(ctx: Ctx, row: Row[Any], campaign: Row[Any]) -> dict[str, Any]:
    if shapes.shape(ctx.revision) == shapes.OMNI:
        return {"campaign": identifier("campaign", campaign.id),
                "campaign-audience": identifier("campaign-audience", shapes.audience_id(campaign)),
                "campaign-variations": [identifier("campaign-variation", shapes.variation_id(row))]}
    return {"campaign": identifier("campaign", campaign.id),
            "template": identifier("template", row.template_id) if row.template_id else None,
            "image": identifier("image", str(row.image_id)) if row.image_id is not None else None}


def _audience_object(ctx: Ctx, campaign: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(AUDIENCE, shapes.audience_id(campaign), shapes.audience_attributes(campaign), ctx.links,
                           fields=ctx.query.fields_for("campaign-audience"))


def _include_messages(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    by_campaign = rules.messages_of(conn, ctx.account_id, [r.id for r in rows])
    campaigns = {r.id: r for r in rows}
    linkage = {cid: [identifier("campaign-message", m.id) for m in ms] for cid, ms in by_campaign.items()}
    resources = [message_object(ctx, m, campaigns[cid]) for cid, ms in by_campaign.items() for m in ms]
    return linkage, resources


def _include_audiences(_conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]
                       ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    linkage = {r.id: [identifier("campaign-audience", shapes.audience_id(r))] for r in rows}
    return linkage, [_audience_object(ctx, r) for r in rows]


CAMPAIGN_INCLUDES = {"campaign-messages": _include_messages, "tags": include_tags("campaign"),
                     "campaign-audiences": _include_audiences}


def _message_includes(campaigns: dict[str, Row[Any]]) -> dict[str, Any]:
    """Loaders for a page of messages (rows are message rows; `campaigns` by id)."""

    def campaign(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        linkage = {r.id: identifier("campaign", r.campaign_id) for r in rows}
        seen = dict.fromkeys(r.campaign_id for r in rows)
        return linkage, [campaign_object(ctx, campaigns[cid]) for cid in seen]

    def template(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        linkage: dict[str, Any] = {}
        found: list[dict[str, Any]] = []
        for r in rows:
            row = rules.message_template(conn, ctx.account_id, r)
            linkage[r.id] = identifier("template", row.id) if row is not None else None
            if row is not None:
                found.append(template_resource(ctx, row, definition=False))
        return linkage, found

    def image(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        linkage: dict[str, Any] = {}
        found: list[dict[str, Any]] = []
        for r in rows:
            row = image_store.get_image(conn, ctx.account_id, r.image_id) if r.image_id is not None else None
            linkage[r.id] = identifier("image", str(row.id)) if row is not None else None
            if row is not None:
                found.append(image_resource(ctx, row))
        return linkage, found

    return {"campaign": campaign, "template": template, "image": image}


def _load_campaign(ctx: Ctx, conn: Connection) -> Row[Any]:
    return rules.get_campaign(conn, ctx.account_id, ctx.path_params["id"])


def _campaign_document(ctx: Ctx, campaign_id: str, *, status: int = 200) -> Reply:
    with ctx.db.read() as conn:
        row = rules.get_campaign(conn, ctx.account_id, campaign_id)
        data = campaign_object(ctx, row)
    return Reply(status, single_document(data, links={"self": ctx.links.resource(_campaign_type(ctx.revision),
                                                                                 campaign_id)}))


def _tracking_defaults(ctx: Ctx) -> rules.TrackingDefaults:
    with ctx.db.read() as conn:
        return rules.tracking_defaults(conn, ctx.account_id)


# --------------------------------------------------------------------------- campaigns

_LIST_QUERY = QuerySpec(
    fields={**CAMPAIGN_FIELDS, **MESSAGE_FIELDS, **TAG_FIELDS, "campaign-audience": _AUDIENCE_FIELDS},
    include=("campaign-messages", "tags", "campaign-audiences"),
    sort=("created_at", "id", "name", "scheduled_at", "updated_at"), page=PageBounds(default=100, maximum=100),
    filters=FILTERS)
_ONE_QUERY = QuerySpec(fields=_LIST_QUERY.fields, include=_LIST_QUERY.include)


def _check_includes(ctx: Ctx) -> None:
    assert ctx.query is not None
    if "campaign-audiences" in ctx.query.include and shapes.shape(ctx.revision) != shapes.OMNI:
        raise errors.invalid("'campaign-audiences' is not a valid relationship to include.", parameter="include")


@api.get("/api/campaigns", "get_campaigns", scopes=READ, rate=M, query=_LIST_QUERY)
def get_campaigns(ctx: Ctx) -> dict[str, Any]:
    """Get Campaigns (a channel filter is required)."""
    assert ctx.query is not None
    _check_includes(ctx)
    if "messages.channel" not in filter_equalities(ctx.query.filter, FILTERS):
        raise errors.invalid("A channel filter is required: use filter=equals(messages.channel,'email'), "
                             "equals(messages.channel,'sms') or equals(messages.channel,'mobile_push').",
                             parameter="filter")
    columns = dict(store.CAMPAIGN_COLUMNS)
    columns["scheduled_at"] = _SCHEDULED_SORT
    listing = Listing(store.campaigns_select(ctx.account_id).add_columns(_SCHEDULED_SORT), columns["id"],
                      {name: columns[name] for name in ("created_at", "id", "name", "scheduled_at", "updated_at")})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: campaign_object(ctx, row), includes=CAMPAIGN_INCLUDES)


@api.post("/api/campaigns", "create_campaign", scopes=WRITE, rate=M, success=201,
          query=QuerySpec(fields=CAMPAIGN_FIELDS))
def create_campaign(ctx: Ctx) -> Reply:
    """Create Campaign (a Draft, with its message)."""
    spec = shapes.campaign_input(ctx)
    campaign_id = rules.create_campaign(ctx.db, ctx.account_id, ctx.now(), spec, _tracking_defaults(ctx))
    return _campaign_document(ctx, campaign_id, status=201)


@api.get("/api/campaigns/{id}", "get_campaign", scopes=READ, rate=M, query=_ONE_QUERY)
def get_campaign(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign."""
    _check_includes(ctx)
    with ctx.db.read() as conn:
        row = _load_campaign(ctx, conn)
        data = campaign_object(ctx, row)
        included = attach_includes(ctx, conn, [row], [data], CAMPAIGN_INCLUDES)
    return single_document(data, included, links={"self": ctx.url})


@api.patch("/api/campaigns/{id}", "update_campaign", scopes=WRITE, rate=M, query=QuerySpec(fields=CAMPAIGN_FIELDS))
def update_campaign(ctx: Ctx) -> Reply:
    """Update Campaign (Draft campaigns only; `archived` at any time from 2026-10-15)."""
    change = shapes.campaign_change(ctx)
    rules.update_campaign(ctx.db, ctx.account_id, ctx.path_params["id"], ctx.now(), change, _tracking_defaults(ctx))
    return _campaign_document(ctx, ctx.path_params["id"])


@api.delete("/api/campaigns/{id}", "delete_campaign", scopes=WRITE, rate=M)
def delete_campaign(ctx: Ctx) -> None:
    """Delete Campaign."""
    rules.delete_campaign(ctx.db, ctx.account_id, ctx.path_params["id"])


@api.post("/api/campaign-clone", "create_campaign_clone", scopes=WRITE, rate=M, success=201,
          query=QuerySpec(fields=CAMPAIGN_FIELDS))
def create_campaign_clone(ctx: Ctx) -> Reply:
    """Create Campaign Clone."""
    data = ctx.body(bodies.CloneBody).data
    expect_type(data.type, "campaign")
    try:
        clone_id = rules.clone_campaign(ctx.db, ctx.account_id, data.id, ctx.now(), shapes.clone_name(data))
    except errors.ApiError as err:
        if err.status == 404:
            err.pointer = "/data/id"
        raise
    return _campaign_document(ctx, clone_id, status=201)


# --------------------------------------------------------------------------- messages

_MESSAGE_QUERY = QuerySpec(
    fields={**MESSAGE_FIELDS, **CAMPAIGN_FIELDS, "image": _IMAGE_FIELDS, "template": _TEMPLATE_FIELDS},
    include=("campaign", "image", "template"))


def _load_message(ctx: Ctx, conn: Connection) -> tuple[Row[Any], Row[Any]]:
    message = rules.get_message(conn, ctx.account_id, ctx.path_params["id"])
    return message, rules.get_campaign(conn, ctx.account_id, message.campaign_id)


def _message_document(ctx: Ctx, conn: Connection, message: Row[Any], campaign: Row[Any]) -> dict[str, Any]:
    data = message_object(ctx, message, campaign)
    included = attach_includes(ctx, conn, [message], [data], _message_includes({campaign.id: campaign}))
    return single_document(data, included, links={"self": ctx.links.resource(_message_type(ctx.revision),
                                                                              message.id)})


def _check_message_includes(ctx: Ctx) -> None:
    assert ctx.query is not None
    if shapes.shape(ctx.revision) == shapes.OMNI:
        for name in ctx.query.include:
            if name != "campaign":
                raise errors.invalid(f"'{name}' is not a valid relationship to include.", parameter="include")


@api.get("/api/campaign-messages/{id}", "get_campaign_message", scopes=READ, rate=M, query=_MESSAGE_QUERY)
def get_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign Message."""
    _check_message_includes(ctx)
    with ctx.db.read() as conn:
        message, campaign = _load_message(ctx, conn)
        return _message_document(ctx, conn, message, campaign)


@api.patch("/api/campaign-messages/{id}", "update_campaign_message", scopes=WRITE, rate=M,
           query=QuerySpec(fields=MESSAGE_FIELDS))
def update_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Update Campaign Message (content fields given replace the stored ones)."""
    with ctx.db.read() as conn:
        message, _ = _load_message(ctx, conn)
    change, image_id = shapes.message_change(ctx, message.channel)
    rules.update_message(ctx.db, ctx.account_id, message.id, ctx.now(), change, image_id=image_id)
    with ctx.db.read() as conn:
        message, campaign = _load_message(ctx, conn)
        return _message_document(ctx, conn, message, campaign)


@api.post("/api/campaign-message-assign-template", "assign_template_to_campaign_message", scopes=WRITE, rate=M,
          query=QuerySpec(fields=MESSAGE_FIELDS))
def assign_template_to_campaign_message(ctx: Ctx) -> Reply:
    """Assign Template to Campaign Message (the message gets its own copy of the template)."""
    data = ctx.body(bodies.AssignTemplateBody).data
    expect_type(data.type, "campaign-message")
    linkage = data.relationships.template.data
    if linkage is None or linkage.type != "template":
        raise errors.invalid("A template is required: relationships.template.data = {type: 'template', id}.",
                             pointer="/data/relationships/template/data")
    try:
        rules.assign_template(ctx.db, ctx.account_id, data.id, linkage.id, ctx.now())
    except errors.ApiError as err:
        if err.status == 404 and err.pointer is None:
            err.pointer = "/data/id"
        raise
    assert ctx.query is not None
    with ctx.db.read() as conn:
        message = rules.get_message(conn, ctx.account_id, data.id)
        campaign = rules.get_campaign(conn, ctx.account_id, message.campaign_id)
    rtype = ResourceType("campaign-message", "campaign-messages", ("campaign", "template"))
    resource = resource_object(
        rtype, message.id, shapes.legacy_message_attributes(message, campaign), ctx.links,
        fields=ctx.query.fields_for("campaign-message"),
        relationship_data={"campaign": identifier("campaign", campaign.id),
                           "template": identifier("template", message.template_id) if message.template_id else None})
    document = single_document(resource, links={"self": ctx.links.resource(rtype, message.id)})
    return Reply(200 if changed(ctx.revision, "campaign_assign_template_ok") else 201, document)


@api.get("/api/campaign-messages/{id}/campaign", "get_campaign_for_campaign_message", scopes=READ, rate=M,
         query=QuerySpec(fields=CAMPAIGN_FIELDS))
def get_campaign_for_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign for Campaign Message."""
    with ctx.db.read() as conn:
        _, campaign = _load_message(ctx, conn)
    return single_document(campaign_object(ctx, campaign), links={"self": ctx.url})


@api.get("/api/campaign-messages/{id}/relationships/campaign", "get_campaign_id_for_campaign_message",
         scopes=READ, rate=M)
def get_campaign_id_for_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign ID for Campaign Message."""
    with ctx.db.read() as conn:
        _, campaign = _load_message(ctx, conn)
    return single_document(identifier("campaign", campaign.id), links={"self": ctx.url})


_TEMPLATE_SCOPES = ("campaigns:read", "templates:read")


@api.get("/api/campaign-messages/{id}/template", "get_template_for_campaign_message", scopes=_TEMPLATE_SCOPES,
         rate=M, query=QuerySpec(fields={"template": _TEMPLATE_FIELDS}))
def get_template_for_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Template for Campaign Message (the message's own copy)."""
    with ctx.db.read() as conn:
        message, _ = _load_message(ctx, conn)
        template = rules.message_template(conn, ctx.account_id, message)
    data = template_resource(ctx, template, definition=False) if template is not None else None
    return single_document(data, links={"self": ctx.url})


@api.get("/api/campaign-messages/{id}/relationships/template", "get_template_id_for_campaign_message",
         scopes=_TEMPLATE_SCOPES, rate=M)
def get_template_id_for_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Template ID for Campaign Message."""
    with ctx.db.read() as conn:
        message, _ = _load_message(ctx, conn)
    data = identifier("template", message.template_id) if message.template_id else None
    return single_document(data, links={"self": ctx.url})


_IMAGE_READ = ("campaigns:read", "images:read")


@api.get("/api/campaign-messages/{id}/image", "get_image_for_campaign_message", scopes=_IMAGE_READ, rate=M,
         query=QuerySpec(fields={"image": _IMAGE_FIELDS}))
def get_image_for_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Image for Campaign Message."""
    with ctx.db.read() as conn:
        message, _ = _load_message(ctx, conn)
        image = image_store.get_image(conn, ctx.account_id, message.image_id) if message.image_id is not None else None
    return single_document(image_resource(ctx, image) if image is not None else None, links={"self": ctx.url})


@api.get("/api/campaign-messages/{id}/relationships/image", "get_image_id_for_campaign_message",
         scopes=_IMAGE_READ, rate=M)
def get_image_id_for_campaign_message(ctx: Ctx) -> dict[str, Any]:
    """Get Image ID for Campaign Message."""
    with ctx.db.read() as conn:
        message, _ = _load_message(ctx, conn)
    data = identifier("image", str(message.image_id)) if message.image_id is not None else None
    return single_document(data, links={"self": ctx.url})


@api.patch("/api/campaign-messages/{id}/relationships/image", "update_image_for_campaign_message",
           scopes=("campaigns:write", "images:read"), rate=M)
def update_image_for_campaign_message(ctx: Ctx) -> None:
    """Update Image for Campaign Message (SMS and push messages)."""
    data = ctx.body(bodies.ImageBody).data
    expect_type(data.type, "image")
    rules.set_message_image(ctx.db, ctx.account_id, ctx.path_params["id"], ctx.now(), data.id)


@api.get("/api/campaigns/{id}/campaign-messages", "get_messages_for_campaign", scopes=READ, rate=M,
         query=_MESSAGE_QUERY)
def get_messages_for_campaign(ctx: Ctx) -> dict[str, Any]:
    """Get Messages for Campaign."""
    _check_message_includes(ctx)
    with ctx.db.read() as conn:
        campaign = _load_campaign(ctx, conn)
        messages = rules.messages_of(conn, ctx.account_id, [campaign.id])[campaign.id]
        data = [message_object(ctx, m, campaign) for m in messages]
        included = attach_includes(ctx, conn, messages, data, _message_includes({campaign.id: campaign}))
    doc: dict[str, Any] = {"data": data, "links": {"self": ctx.url}}
    if included is not None:
        doc["included"] = included.as_list()
    return doc


@api.get("/api/campaigns/{id}/relationships/campaign-messages", "get_message_ids_for_campaign", scopes=READ, rate=M)
def get_message_ids_for_campaign(ctx: Ctx) -> dict[str, Any]:
    """Get Message IDs for Campaign."""
    with ctx.db.read() as conn:
        campaign = _load_campaign(ctx, conn)
        messages = rules.messages_of(conn, ctx.account_id, [campaign.id])[campaign.id]
    return relationship_ids(ctx, "campaign-message", [m.id for m in messages])


# --------------------------------------------------------------------------- tags

_TAG_READ = ("campaigns:read", "tags:read")


@api.get("/api/campaigns/{id}/tags", "get_tags_for_campaign", scopes=_TAG_READ, rate=S,
         query=QuerySpec(fields=TAG_FIELDS))
def get_tags_for_campaign(ctx: Ctx) -> dict[str, Any]:
    """Get Tags for Campaign."""
    with ctx.db.read() as conn:
        campaign = _load_campaign(ctx, conn)
        tags = tag_rules.tags_of(conn, ctx.account_id, "campaign", [campaign.id]).get(campaign.id, [])
    return {"data": [tag_resource(ctx, t) for t in tags], "links": {"self": ctx.url}}


@api.get("/api/campaigns/{id}/relationships/tags", "get_tag_ids_for_campaign", scopes=_TAG_READ, rate=S)
def get_tag_ids_for_campaign(ctx: Ctx) -> dict[str, Any]:
    """Get Tag IDs for Campaign."""
    with ctx.db.read() as conn:
        campaign = _load_campaign(ctx, conn)
        tags = tag_rules.tags_of(conn, ctx.account_id, "campaign", [campaign.id]).get(campaign.id, [])
    return relationship_ids(ctx, "tag", [t.id for t in tags])


# --------------------------------------------------------------------------- jobs

_SEND_JOB_QUERY = QuerySpec(fields={"campaign-send-job": ("id", "status")})
_ESTIMATION_JOB_QUERY = QuerySpec(fields={"campaign-recipient-estimation-job": ("id", "status")})


def _job_object(ctx: Ctx, rtype: ResourceType, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(rtype, row.id, {"status": row.status}, ctx.links, fields=ctx.query.fields_for(rtype.type))


def _job_ref(ctx: Ctx, expected: str) -> str:
    data = ctx.body(bodies.JobRefBody).data
    expect_type(data.type, expected)
    return data.id


@api.post("/api/campaign-send-jobs", "send_campaign", scopes=WRITE, rate=M, success=202, query=_SEND_JOB_QUERY)
def send_campaign(ctx: Ctx) -> Reply:
    """Send Campaign: queue (or schedule) the campaign's send job."""
    campaign_id = _job_ref(ctx, SEND_JOB.type)
    settings = ctx.services.settings
    job = jobs.send_campaign(ctx.db, ctx.account_id, campaign_id, ctx.now(), batch_size=settings.campaign_batch_size,
                             shards=settings.campaign_send_parallelism)
    ctx.services.work_signal.set()
    return Reply(202, single_document(_job_object(ctx, SEND_JOB, job), links={"self": ctx.url}))


@api.get("/api/campaign-send-jobs/{id}", "get_campaign_send_job", scopes=READ, rate=M, query=_SEND_JOB_QUERY)
def get_campaign_send_job(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign Send Job."""
    with ctx.db.read() as conn:
        job = jobs.get_send_job(conn, ctx.account_id, ctx.path_params["id"])
    return single_document(_job_object(ctx, SEND_JOB, job), links={"self": ctx.url})


@api.patch("/api/campaign-send-jobs/{id}", "cancel_campaign_send", scopes=WRITE, rate=M)
def cancel_campaign_send(ctx: Ctx) -> None:
    """Cancel Campaign Send (cancel for good, or revert a scheduled campaign to a draft)."""
    data = ctx.body(bodies.JobActionBody).data
    expect_type(data.type, SEND_JOB.type)
    expect_id(data.id, ctx.path_params["id"])
    jobs.change_send_job(ctx.db, ctx.account_id, data.id, data.attributes.action, ctx.now())


@api.post("/api/campaign-recipient-estimation-jobs", "refresh_campaign_recipient_estimation", scopes=WRITE,
          rate=M, success=202, query=_ESTIMATION_JOB_QUERY)
def refresh_campaign_recipient_estimation(ctx: Ctx) -> Reply:
    """Refresh Campaign Recipient Estimation (a background recount)."""
    campaign_id = _job_ref(ctx, ESTIMATION_JOB.type)
    row = jobs.start_estimation(ctx.db, ctx.account_id, campaign_id, ctx.now())
    ctx.services.work_signal.set()
    return Reply(202, single_document(_job_object(ctx, ESTIMATION_JOB, row), links={"self": ctx.url}))


@api.get("/api/campaign-recipient-estimation-jobs/{id}", "get_campaign_recipient_estimation_job", scopes=READ,
         rate=M, query=_ESTIMATION_JOB_QUERY)
def get_campaign_recipient_estimation_job(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign Recipient Estimation Job."""
    with ctx.db.read() as conn:
        row = jobs.get_estimation(conn, ctx.account_id, ctx.path_params["id"], what="recipient estimation job")
    return single_document(_job_object(ctx, ESTIMATION_JOB, row), links={"self": ctx.url})


@api.get("/api/campaign-recipient-estimations/{id}", "get_campaign_recipient_estimation", scopes=READ, rate=M,
         query=QuerySpec(fields={"campaign-recipient-estimation": ("estimated_recipient_count", "id")}))
def get_campaign_recipient_estimation(ctx: Ctx) -> dict[str, Any]:
    """Get Campaign Recipient Estimation (the latest completed count)."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        row = jobs.get_estimation(conn, ctx.account_id, ctx.path_params["id"], what="recipient estimation")
    resource = resource_object(ESTIMATION, row.id, {"estimated_recipient_count": row.estimated_recipient_count},
                               ctx.links, fields=ctx.query.fields_for(ESTIMATION.type))
    return single_document(resource, links={"self": ctx.url})
