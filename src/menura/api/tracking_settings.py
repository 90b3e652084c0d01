"""Tracking Settings category: the account's UTM tracking setting (one per account; its id is the
account id)."""

from __future__ import annotations

from typing import Any

import msgspec

from menura.api.operation import Category, Ctx, M
from menura.domain import tracking_settings as rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.query import PageBounds, QuerySpec

api = Category("Tracking Settings")
TRACKING_SETTING = ResourceType("tracking-setting", "tracking-settings")

_PARAM_FIELDS = tuple(
    f"{name}{suffix}"
    for name in ("utm_campaign", "utm_id", "utm_medium", "utm_source", "utm_term")
    for suffix in ("", ".campaign", ".campaign.type", ".campaign.value", ".flow", ".flow.type", ".flow.value")
)
FIELDS = {"tracking-setting": ("auto_add_parameters", "custom_parameters", "id", *_PARAM_FIELDS)}


class _Resource(msgspec.Struct):
    type: str
    id: str
    attributes: dict[str, Any]


class _Body(msgspec.Struct):
    data: _Resource


def _serialize(ctx: Ctx, setting: rules.TrackingSetting) -> dict[str, Any]:
    assert ctx.query is not None
    wanted = ctx.query.fields_for("tracking-setting")
    fields = [f for f in wanted if f != "id"] if wanted is not None else None
    return resource_object(TRACKING_SETTING, setting.account_id, setting.attributes(), ctx.links, fields=fields)


def _own(ctx: Ctx, setting_id: str) -> None:
    if setting_id != ctx.account_id:
        raise errors.not_found(f"A tracking setting with id '{setting_id}' does not exist.")


@api.get("/api/tracking-settings", "get_tracking_settings", scopes=("tracking-settings:read",), rate=M,
         query=QuerySpec(fields=FIELDS, page=PageBounds(default=1, minimum=1, maximum=1)))
def get_tracking_settings(ctx: Ctx) -> dict[str, Any]:
    """Get Tracking Settings: a collection holding the account's one setting."""
    with ctx.db.read() as conn:
        setting = rules.get_setting(conn, ctx.account_id)
    return {"data": [_serialize(ctx, setting)], "links": {"self": ctx.url}}


@api.get("/api/tracking-settings/{id}", "get_tracking_setting", scopes=("tracking-settings:read",), rate=M,
         query=QuerySpec(fields=FIELDS))
def get_tracking_setting(ctx: Ctx) -> dict[str, Any]:
    """Get Tracking Setting."""
    _own(ctx, ctx.path_params["id"])
    with ctx.db.read() as conn:
        setting = rules.get_setting(conn, ctx.account_id)
    return single_document(_serialize(ctx, setting), links={"self": ctx.url})


@api.patch("/api/tracking-settings/{id}", "update_tracking_setting", scopes=("tracking-settings:write",), rate=M,
           query=QuerySpec(fields=FIELDS))
def update_tracking_setting(ctx: Ctx) -> dict[str, Any]:
    """Update Tracking Setting: only the given attributes change."""
    setting_id = ctx.path_params["id"]
    _own(ctx, setting_id)
    body = ctx.body(_Body)
    if body.data.type != TRACKING_SETTING.type:
        raise errors.conflict("conflict", f"The type '{body.data.type}' does not match the expected type "
                                          f"'{TRACKING_SETTING.type}'.", pointer="/data/type")
    if body.data.id != setting_id:
        raise errors.conflict("conflict", f"The id '{body.data.id}' in the body does not match the id "
                                          f"'{setting_id}' in the URL.", pointer="/data/id")
    with ctx.db.write() as conn:
        updated = rules.apply_update(rules.get_setting(conn, ctx.account_id), body.data.attributes)
        rules.save(conn, updated, ctx.now())
    return single_document(_serialize(ctx, updated), links={"self": ctx.url})
