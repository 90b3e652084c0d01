"""Profiles category: profiles, profile import and merge, push tokens, and a profile's lists,
segments and conversations. (The bulk job families live in api/profile_jobs.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Row

from menura.api.bodies import expect_type
from menura.api.costly import limit_costly
from menura.api.listing import Listing, attach_includes, list_resources, relationship_ids
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.profile_filters import identifier_field, kx_context, kx_field, normalized_email, normalized_phone
from menura.api.strict_bodies import Envelope, ResourceIdentifier
from menura.domain import consent, profile_input, profile_values, push_tokens
from menura.domain import profiles as rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, identifier, pick_fields, resource_object, single_document
from menura.jsonapi.filters import FilterField, datetime_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import profiles as store
from menura.store.profile_tables import profiles as profiles_table
from menura.store.profile_tables import push_tokens as tokens_table

api = Category("Profiles")
PROFILE = ResourceType("profile", "profiles", ("lists", "segments", "push-tokens", "conversations"))
PUSH_TOKEN = ResourceType("push-token", "push-tokens", ("profile",))
LIST = ResourceType("list", "lists", ("profiles", "tags", "flow-triggers"))

READ_RATE = tier(75, 750)
WRITE_RATE = tier(75, 750)
MERGE_RATE = tier(10, 150)
TOKEN_READ_RATE = tier(10, 150)
TOKEN_DELETE_RATE = tier(3, 60)
RELATED_RATE = tier(3, 60)
# Stricter tiers Klaviyo applies when a request asks for costlier data.
PREDICTIVE_RATE = tier(10, 150)
INCLUDE_LISTS_RATE = tier(1, 15)
INCLUDE_SEGMENTS_RATE = tier(1, 15)

# --------------------------------------------------------------------------- fields (from the spec)


def _paths(prefix: str, names: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}.{name}" for name in names)


_CONSENT = ("consent", "consent_timestamp", "last_updated")
_CHANNEL_RECORD = ("can_receive", *_CONSENT, "created_timestamp", "metadata", "valid_until")
SUBSCRIPTION_FIELDS = (
    "subscriptions", "subscriptions.email", "subscriptions.email.marketing",
    *_paths("subscriptions.email.marketing", ("can_receive_email_marketing", *_CONSENT, "custom_method_detail",
                                              "double_optin", "list_suppressions", "method", "method_detail",
                                              "suppression")),
    "subscriptions.email.open_tracking", *_paths("subscriptions.email.open_tracking", _CHANNEL_RECORD),
    "subscriptions.mobile_push", "subscriptions.mobile_push.marketing",
    *_paths("subscriptions.mobile_push.marketing", ("can_receive_push_marketing", "consent", "consent_timestamp")),
    "subscriptions.sms", "subscriptions.sms.marketing",
    *_paths("subscriptions.sms.marketing", ("can_receive_sms_marketing", *_CONSENT, "method", "method_detail")),
    "subscriptions.sms.transactional",
    *_paths("subscriptions.sms.transactional", ("can_receive_sms_transactional", *_CONSENT, "method",
                                                "method_detail")),
    "subscriptions.whatsapp",
    *(path for kind in ("conversational", "marketing", "transactional")
      for path in (f"subscriptions.whatsapp.{kind}",
                   *_paths(f"subscriptions.whatsapp.{kind}", (*_CHANNEL_RECORD, "phone_number")))),
)
PROFILE_BASE_FIELDS = ("created", "email", "external_id", "first_name", "id", "image", "last_event_date",
                       "last_name", "locale", "location", *_paths("location", profile_input.LOCATION_FIELDS),
                       "organization", "phone_number", "properties", "title", "updated")
PREDICTIVE_FIELDS = ("predictive_analytics", *_paths("predictive_analytics", rules.PREDICTIVE_FIELDS))
PROFILE_FIELDS = tuple(sorted((*PROFILE_BASE_FIELDS, *PREDICTIVE_FIELDS, *SUBSCRIPTION_FIELDS)))
PUSH_TOKEN_FIELDS = ("background", "created", "enablement_status", "id", "metadata",
                     *_paths("metadata", push_tokens.METADATA_FIELDS), "platform", "recorded_date", "token",
                     "vendor")
CONVERSATION_FIELDS = ("channel", "id")
LIST_FIELDS = ("created", "id", "name", "opt_in_process", "updated")
SEGMENT_FIELDS = ("created", "definition", "definition.condition_groups", "id", "is_active", "is_processing",
                  "is_starred", "name", "updated")
ADDITIONAL = {"profile": ("subscriptions", "predictive_analytics")}

# --------------------------------------------------------------------------- filters and sorts

def _list_suppression_field(column: str, value_type: str, ops: Sequence[str]) -> FilterField:
    return FilterField(value_type, single=frozenset(ops),
                       column=lambda op, value: store.list_suppression_filter(column, op, value))


_COMPARE = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")
PROFILE_FILTERS: dict[str, FilterField] = {
    "id": identifier_field(profiles_table.c.id),
    "email": identifier_field(profiles_table.c.email, normalized_email),
    "phone_number": identifier_field(profiles_table.c.phone_number, normalized_phone),
    "external_id": identifier_field(profiles_table.c.external_id),
    "_kx": kx_field(profiles_table.c.id),
    "created": datetime_field(profiles_table.c.created, ops=("greater-than", "less-than")),
    "updated": datetime_field(profiles_table.c.updated, ops=("greater-than", "less-than")),
    "subscriptions.email.marketing.list_suppressions.reason": _list_suppression_field("reason", "string",
                                                                                      ("equals",)),
    "subscriptions.email.marketing.list_suppressions.timestamp": _list_suppression_field("timestamp", "datetime",
                                                                                         _COMPARE),
    "subscriptions.email.marketing.list_suppressions.list_id": _list_suppression_field("list_id", "string",
                                                                                       ("equals",)),
    "subscriptions.email.marketing.suppression.reason": FilterField(
        "string", single=frozenset({"equals"}), column=profiles_table.c.email_suppression_reason),
    "subscriptions.email.marketing.suppression.timestamp": datetime_field(
        profiles_table.c.email_suppression_timestamp, ops=_COMPARE),
}
PUSH_TOKEN_FILTERS: dict[str, FilterField] = {
    "id": FilterField("string", single=frozenset({"equals"}), column=tokens_table.c.id),
    "profile.id": FilterField("string", single=frozenset({"equals"}), column=tokens_table.c.profile_id),
    "enablement_status": FilterField("string", single=frozenset({"equals"}), enum=push_tokens.ENABLEMENT_STATUSES,
                                     column=tokens_table.c.enablement_status),
    "platform": FilterField("string", single=frozenset({"equals"}), enum=push_tokens.PLATFORMS,
                            column=tokens_table.c.platform),
}

def _profile_listing(ctx: Ctx) -> Listing:
    assert ctx.query is not None
    name = ctx.query.sort or "id"
    stmt, key = store.profile_sorted_select(ctx.account_id, name)
    return Listing(stmt, profiles_table.c.id, {name: key}, default_sort=name)


# --------------------------------------------------------------------------- request bodies


class ProfileCreate(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: dict[str, Any]


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    id: str
    attributes: dict[str, Any]
    meta: dict[str, Any] | None = None


class ProfileUpsert(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: dict[str, Any]
    id: str | None = None
    meta: dict[str, Any] | None = None


class MergeRelationships(msgspec.Struct, forbid_unknown_fields=True):
    profiles: Envelope[list[ResourceIdentifier]]


class Merge(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    id: str
    relationships: MergeRelationships


class ProfileReference(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str | None = None
    meta: dict[str, Any] | None = None


class PushTokenData(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: dict[str, Any]


# Fields each body's profile attributes may carry (ProfileCreateQuery has neither _kx nor anonymous_id).
CREATE_ATTRIBUTES = frozenset(profile_input.ATTRIBUTE_FIELDS - {"_kx", "anonymous_id"})
UPSERT_ATTRIBUTES = frozenset(profile_input.ATTRIBUTE_FIELDS - {"anonymous_id"})


def profile_reference_input(raw: Any, pointer: str, *, allowed: frozenset[str] = profile_input.ATTRIBUTE_FIELDS
                            ) -> profile_input.ProfileInput:
    """`{"data": {"type": "profile", "id"?, "attributes": {...}, "meta"?}}` nested in another body."""
    try:
        reference = msgspec.convert(raw, Envelope[ProfileReference])
    except msgspec.ValidationError as exc:
        from menura.api.operation import validation_error

        err = validation_error(str(exc))
        err.pointer = pointer + (err.pointer or "") if err.pointer != "/data" else pointer
        raise err from None
    expect_type(reference.data.type, "profile", f"{pointer}/data/type")
    meta = reference.data.meta
    attrs = dict(reference.data.attributes)
    if meta is None and isinstance(attrs.get("meta"), dict):  # PushTokenCreateQuery nests meta in attributes
        meta = attrs.pop("meta")
    return profile_input.profile_input_from_attributes(attrs, f"{pointer}/data/attributes", meta=meta,
                                               meta_pointer=f"{pointer}/data/meta", profile_id=reference.data.id,
                                               allowed=allowed)


# --------------------------------------------------------------------------- serialization


def _profile_extras(ctx: Ctx, conn: Connection, rows: Sequence[Row[Any]]) -> dict[str, dict[str, Any]]:
    query = ctx.query
    extras: dict[str, dict[str, Any]] = {row.id: {} for row in rows}
    if query is None:
        return extras
    if query.wants("profile", "subscriptions"):
        for pid, view in consent.subscriptions_for(conn, ctx.account_id, rows).items():
            extras[pid]["subscriptions"] = view
    if query.wants("profile", "predictive_analytics"):
        for pid, values in rules.predictive_analytics(conn, ctx.account_id, [row.id for row in rows]).items():
            extras[pid]["predictive_analytics"] = values
    return extras


def _profile_object(ctx: Ctx, row: Row[Any], extras: dict[str, Any]) -> dict[str, Any]:
    attributes = profile_values.profile_attributes(row)
    attributes.update(extras)
    fields = ctx.query.fields_for("profile") if ctx.query is not None else None
    return resource_object(PROFILE, row.id, attributes, ctx.links, fields=fields)


def profile_objects(ctx: Ctx, conn: Connection, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    extras = _profile_extras(ctx, conn, rows)
    return [_profile_object(ctx, row, extras[row.id]) for row in rows]


def profile_resources(first: Any, second: Any, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Profile resource objects for the ids that exist, in the order given; for other categories'
    `include=profile` and related-resource endpoints. Takes (conn, ctx, ids) or (ctx, conn, ids)."""
    ctx, conn = (first, second) if isinstance(first, Ctx) else (second, first)
    rows = {row.id: row for row in store.profiles_by_ids(conn, ctx.account_id, profile_ids)}
    ordered = [rows[pid] for pid in dict.fromkeys(profile_ids) if pid in rows]
    return profile_objects(ctx, conn, ordered)


def push_token_object(ctx: Ctx, row: Row[Any], *, with_profile: bool = False) -> dict[str, Any]:
    fields = ctx.query.fields_for("push-token") if ctx.query is not None else None
    data = {"profile": identifier("profile", row.profile_id)} if with_profile else None
    return resource_object(PUSH_TOKEN, row.id, push_tokens.attributes(row), ctx.links, fields=fields,
                           relationship_data=data)


def _include_push_tokens(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    by_profile = store.push_tokens_for(conn, ctx.account_id, [row.id for row in rows])
    linkage = {row.id: [identifier("push-token", t.id) for t in by_profile.get(row.id, [])] for row in rows}
    return linkage, [push_token_object(ctx, t) for tokens in by_profile.values() for t in tokens]


def _include_conversations(_conn: Connection, _ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    # Conversations (SMS/WhatsApp inbox threads) are not modelled yet: every profile has none.
    return {row.id: [] for row in rows}, []


def _lists_of(conn: Connection, ctx: Ctx, profile_id: str) -> list[Row[Any]]:
    from menura.store import lists as list_store

    ids = list_store.list_ids_for_profile(conn, ctx.account_id, profile_id)
    by_id = {row.id: row for row in list_store.lists_by_ids(conn, ctx.account_id, ids)}
    return [by_id[i] for i in ids if i in by_id]


def _list_object(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    from menura.api.lists import list_resource

    return list_resource(ctx, row)


def _include_lists(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    linkage, resources = {}, []
    for row in rows:
        found = _lists_of(conn, ctx, row.id)
        linkage[row.id] = [identifier("list", item.id) for item in found]
        resources += [_list_object(ctx, item) for item in found]
    return linkage, resources


def _segment_objects(conn: Connection, ctx: Ctx, profile_id: str) -> list[dict[str, Any]]:
    ids = rules.segment_ids_for_profile(conn, ctx.account_id, profile_id)
    if not ids:
        return []
    from menura.api import segments as segments_api  # type: ignore[attr-defined]

    return list(segments_api.segment_resources(conn, ctx, ids))


def _include_segments(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    linkage, resources = {}, []
    for row in rows:
        found = _segment_objects(conn, ctx, row.id)
        linkage[row.id] = [identifier("segment", item["id"]) for item in found]
        resources += found
    return linkage, resources


LIST_INCLUDES = {"conversations": _include_conversations, "push-tokens": _include_push_tokens}
ONE_INCLUDES = {**LIST_INCLUDES, "lists": _include_lists, "segments": _include_segments}


def _profile_document(ctx: Ctx, conn: Connection, row: Row[Any]) -> dict[str, Any]:
    data = profile_objects(ctx, conn, [row])[0]
    return single_document(data, links={"self": ctx.links.resource(PROFILE, row.id)})


def _path_profile(ctx: Ctx, conn: Connection) -> Row[Any]:
    return rules.get_profile(conn, ctx.account_id, ctx.path_params["id"])


# --------------------------------------------------------------------------- profiles


@api.get("/api/profiles", "get_profiles", scopes=("profiles:read",), rate=READ_RATE,
         query=QuerySpec(fields={"profile": PROFILE_FIELDS, "push-token": PUSH_TOKEN_FIELDS,
                                 "conversation": CONVERSATION_FIELDS},
                         include=("conversations", "push-tokens"), sort=store.PROFILE_SORTS,
                         page=PageBounds(default=20, maximum=100), filters=PROFILE_FILTERS,
                         additional_fields=ADDITIONAL))
def get_profiles(ctx: Ctx) -> dict[str, Any]:
    """Get Profiles."""
    assert ctx.query is not None
    if ctx.query.wants("profile", "predictive_analytics"):
        limit_costly(ctx, "predictive_analytics", PREDICTIVE_RATE)
    page: list[Row[Any]] = []

    def serialize(row: Row[Any]) -> dict[str, Any]:
        page.append(row)
        return _profile_object(ctx, row, {})

    with ctx.db.read() as conn, kx_context(ctx):
        document = list_resources(ctx, conn, _profile_listing(ctx), serialize, includes=LIST_INCLUDES)
        extras = _profile_extras(ctx, conn, page)
    if any(extras.values()):
        fields = ctx.query.fields_for("profile") if ctx.query is not None else None
        for row, resource in zip(page, document["data"], strict=True):
            resource["attributes"] = pick_fields({**profile_values.profile_attributes(row), **extras[row.id]}, fields)
    return document


@api.post("/api/profiles", "create_profile", scopes=("profiles:write",), rate=WRITE_RATE, success=201,
          query=QuerySpec(fields={"profile": PROFILE_FIELDS}, additional_fields=ADDITIONAL))
def create_profile(ctx: Ctx) -> dict[str, Any]:
    """Create Profile."""
    data = ctx.body(Envelope[ProfileCreate]).data
    expect_type(data.type, "profile")
    profile = profile_input.profile_input_from_attributes(data.attributes, allowed=CREATE_ATTRIBUTES)
    with ctx.db.write() as conn:
        profile_id = rules.create_profile(conn, account_id=ctx.account_id, data=profile, now=ctx.now())
        return _profile_document(ctx, conn, rules.get_profile(conn, ctx.account_id, profile_id))


@api.get("/api/profiles/{id}", "get_profile", scopes=("profiles:read",), rate=READ_RATE,
         query=QuerySpec(fields={"profile": PROFILE_FIELDS, "push-token": PUSH_TOKEN_FIELDS,
                                 "conversation": CONVERSATION_FIELDS, "list": LIST_FIELDS,
                                 "segment": SEGMENT_FIELDS},
                         include=("conversations", "lists", "push-tokens", "segments"),
                         additional_fields=ADDITIONAL))
def get_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Profile."""
    assert ctx.query is not None
    if "lists" in ctx.query.include:
        limit_costly(ctx, "include:lists", INCLUDE_LISTS_RATE)
    if "segments" in ctx.query.include:
        limit_costly(ctx, "include:segments", INCLUDE_SEGMENTS_RATE)
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        data = profile_objects(ctx, conn, [row])[0]
        included = attach_includes(ctx, conn, [row], [data], ONE_INCLUDES)
    return single_document(data, included, links={"self": ctx.links.resource(PROFILE, row.id)})


@api.patch("/api/profiles/{id}", "update_profile", scopes=("profiles:write",), rate=WRITE_RATE,
           query=QuerySpec(fields={"profile": PROFILE_FIELDS}, additional_fields=ADDITIONAL))
def update_profile(ctx: Ctx) -> dict[str, Any]:
    """Update Profile: fields left out are unchanged, fields sent as null are cleared."""
    data = ctx.body(Envelope[ProfileUpdate]).data
    expect_type(data.type, "profile")
    profile_id = ctx.path_params["id"]
    if data.id != profile_id:
        raise errors.conflict("conflict", f"The id '{data.id}' in the body does not match the id '{profile_id}' "
                                          "in the URL.", pointer="/data/id")
    profile = profile_input.profile_input_from_attributes(data.attributes, meta=data.meta, allowed=UPSERT_ATTRIBUTES
                                                  - {"_kx"})
    with ctx.db.write() as conn:
        rules.update_profile(conn, account_id=ctx.account_id, profile_id=profile_id, data=profile, now=ctx.now())
        return _profile_document(ctx, conn, rules.get_profile(conn, ctx.account_id, profile_id))


@api.post("/api/profile-import", "create_or_update_profile", scopes=("profiles:write",), rate=WRITE_RATE,
          success=201, query=QuerySpec(fields={"profile": PROFILE_FIELDS}, additional_fields=ADDITIONAL))
def create_or_update_profile(ctx: Ctx) -> Reply:
    """Create or Update Profile: 201 when created, 200 when an existing profile was updated."""
    data = ctx.body(Envelope[ProfileUpsert]).data
    expect_type(data.type, "profile")
    profile = profile_input.profile_input_from_attributes(data.attributes, meta=data.meta, profile_id=data.id,
                                                  allowed=UPSERT_ATTRIBUTES)
    with ctx.db.write() as conn:
        profile_id, created = rules.upsert_profile(conn, account_id=ctx.account_id, data=profile, now=ctx.now(),
                                                   secret=ctx.services.secret)
        document = _profile_document(ctx, conn, rules.get_profile(conn, ctx.account_id, profile_id))
    return Reply(201 if created else 200, document)


@api.post("/api/profile-merge", "merge_profiles", scopes=("profiles:write",), rate=MERGE_RATE, success=201,
          query=QuerySpec(fields={"profile": ("id",)}))
def merge_profiles(ctx: Ctx) -> dict[str, Any]:
    """Merge Profiles: the related (source) profile is merged into the profile of `data.id`."""
    data = ctx.body(Envelope[Merge]).data
    expect_type(data.type, "profile-merge")
    sources = data.relationships.profiles.data
    if len(sources) != 1:
        raise errors.invalid("Exactly one source profile must be given.", pointer="/data/relationships/profiles/data")
    expect_type(sources[0].type, "profile", "/data/relationships/profiles/data/0/type")
    with ctx.db.write() as conn:
        rules.merge_profiles(conn, account_id=ctx.account_id, destination_id=data.id,
                             source_ids=[sources[0].id], now=ctx.now())
    link = ctx.links.resource(PROFILE, data.id)
    return {"data": {"type": "profile", "id": data.id, "links": {"self": link}}, "links": {"self": link}}


# --------------------------------------------------------------------------- a profile's relations


@api.get("/api/profiles/{id}/lists", "get_lists_for_profile", scopes=("lists:read", "profiles:read"),
         rate=RELATED_RATE, query=QuerySpec(fields={"list": LIST_FIELDS}))
def get_lists_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Lists for Profile."""
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        found = _lists_of(conn, ctx, row.id)
        return {"data": [_list_object(ctx, item) for item in found], "links": {"self": ctx.url}}


@api.get("/api/profiles/{id}/relationships/lists", "get_list_ids_for_profile",
         scopes=("lists:read", "profiles:read"), rate=RELATED_RATE)
def get_list_ids_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get List IDs for Profile."""
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        return relationship_ids(ctx, "list", [item.id for item in _lists_of(conn, ctx, row.id)])


@api.get("/api/profiles/{id}/segments", "get_segments_for_profile", scopes=("profiles:read", "segments:read"),
         rate=RELATED_RATE, query=QuerySpec(fields={"segment": SEGMENT_FIELDS}))
def get_segments_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Segments for Profile (filled by the segments engine once it exists)."""
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        return {"data": _segment_objects(conn, ctx, row.id), "links": {"self": ctx.url}}


@api.get("/api/profiles/{id}/relationships/segments", "get_segment_ids_for_profile",
         scopes=("profiles:read", "segments:read"), rate=RELATED_RATE)
def get_segment_ids_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Segment IDs for Profile."""
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        return relationship_ids(ctx, "segment", rules.segment_ids_for_profile(conn, ctx.account_id, row.id))


CONVERSATION_SCOPES = ("conversations:read", "profiles:read")


@api.get("/api/profiles/{id}/conversation", "get_conversation_for_profile", scopes=CONVERSATION_SCOPES,
         rate=RELATED_RATE, query=QuerySpec(fields={"conversation": CONVERSATION_FIELDS}))
def get_conversation_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Conversation for Profile: none until conversations are modelled."""
    with ctx.db.read() as conn:
        _path_profile(ctx, conn)
    return {"data": None, "links": {"self": ctx.url}}


@api.get("/api/profiles/{id}/relationships/conversation", "get_conversation_id_for_profile",
         scopes=CONVERSATION_SCOPES, rate=RELATED_RATE)
def get_conversation_id_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Conversation ID for Profile."""
    with ctx.db.read() as conn:
        _path_profile(ctx, conn)
    return {"data": None, "links": {"self": ctx.url}}


@api.get("/api/profiles/{id}/conversations", "get_conversations_for_profile", scopes=CONVERSATION_SCOPES,
         rate=RELATED_RATE, query=QuerySpec(fields={"conversation": CONVERSATION_FIELDS}))
def get_conversations_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Conversations for Profile."""
    with ctx.db.read() as conn:
        _path_profile(ctx, conn)
    return {"data": [], "links": {"self": ctx.url}}


@api.get("/api/profiles/{id}/relationships/conversations", "get_conversation_ids_for_profile",
         scopes=CONVERSATION_SCOPES, rate=RELATED_RATE)
def get_conversation_ids_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Conversation IDs for Profile."""
    with ctx.db.read() as conn:
        _path_profile(ctx, conn)
    return relationship_ids(ctx, "conversation", [])


@api.get("/api/profiles/{id}/push-tokens", "get_push_tokens_for_profile", scopes=("profiles:read",),
         rate=TOKEN_READ_RATE, query=QuerySpec(fields={"push-token": PUSH_TOKEN_FIELDS}))
def get_push_tokens_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Push Tokens for Profile."""
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        tokens = store.push_tokens_for(conn, ctx.account_id, [row.id]).get(row.id, [])
    return {"data": [push_token_object(ctx, t) for t in tokens], "links": {"self": ctx.url}}


@api.get("/api/profiles/{id}/relationships/push-tokens", "get_push_token_ids_for_profile",
         scopes=("profiles:read",), rate=TOKEN_READ_RATE)
def get_push_token_ids_for_profile(ctx: Ctx) -> dict[str, Any]:
    """Get Push Token IDs for Profile."""
    with ctx.db.read() as conn:
        row = _path_profile(ctx, conn)
        tokens = store.push_tokens_for(conn, ctx.account_id, [row.id]).get(row.id, [])
    return relationship_ids(ctx, "push-token", [t.id for t in tokens])


# --------------------------------------------------------------------------- push tokens

TOKEN_READ_SCOPES = ("profiles:read", "push-tokens:read")
PROFILE_ONLY_FIELDS = PROFILE_BASE_FIELDS


def _include_token_profiles(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    linkage = {row.id: identifier("profile", row.profile_id) for row in rows}
    return linkage, profile_resources(conn, ctx, [row.profile_id for row in rows])


TOKEN_INCLUDES = {"profile": _include_token_profiles}


@api.get("/api/push-tokens", "get_push_tokens", scopes=TOKEN_READ_SCOPES, rate=TOKEN_READ_RATE,
         query=QuerySpec(fields={"push-token": PUSH_TOKEN_FIELDS, "profile": PROFILE_ONLY_FIELDS},
                         include=("profile",), page=PageBounds(default=20, maximum=100),
                         filters=PUSH_TOKEN_FILTERS))
def get_push_tokens(ctx: Ctx) -> dict[str, Any]:
    """Get Push Tokens."""
    listing = Listing(store.push_token_select(ctx.account_id), tokens_table.c.id, {})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: push_token_object(ctx, row),
                              includes=TOKEN_INCLUDES)


@api.post("/api/push-tokens", "create_push_token", scopes=("profiles:write", "push-tokens:write"),
          rate=WRITE_RATE, success=202)
def create_push_token(ctx: Ctx) -> None:
    """Create or Update Push Token (and its profile)."""
    register_push_token(ctx, client=False)


def register_push_token(ctx: Ctx, *, client: bool) -> None:
    """Shared by the server- and client-side endpoints; the client may not change identifiers."""
    data = ctx.body(Envelope[PushTokenData]).data
    expect_type(data.type, "push-token")
    attrs = dict(data.attributes)
    token = push_tokens.parse_push_token({k: v for k, v in attrs.items() if k != "profile"})
    for key in attrs:
        if key not in ("token", "platform", "vendor", "enablement_status", "background", "device_metadata",
                       "profile"):
            raise errors.invalid(f"'{key}' is not a valid field for the resource 'push-token'.",
                                 pointer=f"/data/attributes/{key}")
    if "profile" not in attrs:
        raise errors.invalid("'profile' is a required field.", pointer="/data/attributes/profile")
    profile = profile_reference_input(attrs["profile"], "/data/attributes/profile")
    with ctx.db.write() as conn:
        profile_id, _ = rules.resolve_profile(conn, account_id=ctx.account_id, data=profile, now=ctx.now(),
                                              secret=ctx.services.secret, update_identifiers=not client)
        push_tokens.register(conn, account_id=ctx.account_id, profile_id=profile_id, data=token, now=ctx.now())


@api.get("/api/push-tokens/{id}", "get_push_token", scopes=TOKEN_READ_SCOPES, rate=TOKEN_READ_RATE,
         query=QuerySpec(fields={"push-token": PUSH_TOKEN_FIELDS, "profile": PROFILE_ONLY_FIELDS},
                         include=("profile",)))
def get_push_token(ctx: Ctx) -> dict[str, Any]:
    """Get Push Token."""
    with ctx.db.read() as conn:
        row = push_tokens.get(conn, ctx.account_id, ctx.path_params["id"])
        data = push_token_object(ctx, row)
        included = attach_includes(ctx, conn, [row], [data], TOKEN_INCLUDES)
    return single_document(data, included, links={"self": ctx.links.resource(PUSH_TOKEN, row.id)})


@api.delete("/api/push-tokens/{id}", "delete_push_token", scopes=("push-tokens:write",), rate=TOKEN_DELETE_RATE,
            success=204)
def delete_push_token(ctx: Ctx) -> None:
    """Delete Push Token."""
    with ctx.db.write() as conn:
        push_tokens.delete(conn, ctx.account_id, ctx.path_params["id"])


@api.get("/api/push-tokens/{id}/profile", "get_profile_for_push_token", scopes=TOKEN_READ_SCOPES,
         rate=TOKEN_READ_RATE, query=QuerySpec(fields={"profile": PROFILE_FIELDS}, additional_fields=ADDITIONAL))
def get_profile_for_push_token(ctx: Ctx) -> dict[str, Any]:
    """Get Profile for Push Token."""
    with ctx.db.read() as conn:
        row = push_tokens.get(conn, ctx.account_id, ctx.path_params["id"])
        found = profile_resources(conn, ctx, [row.profile_id])
    return single_document(found[0] if found else None, links={"self": ctx.url})


@api.get("/api/push-tokens/{id}/relationships/profile", "get_profile_id_for_push_token",
         scopes=TOKEN_READ_SCOPES, rate=TOKEN_READ_RATE)
def get_profile_id_for_push_token(ctx: Ctx) -> dict[str, Any]:
    """Get Profile ID for Push Token."""
    with ctx.db.read() as conn:
        row = push_tokens.get(conn, ctx.account_id, ctx.path_params["id"])
    return {"data": identifier("profile", row.profile_id), "links": {"self": ctx.url}}


__all__ = ["PROFILE", "PROFILE_FIELDS", "api", "profile_objects", "profile_resources"]
