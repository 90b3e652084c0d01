"""`POST /client/subscriptions`: a browser subscribes a profile to a list with the public key."""

from __future__ import annotations

from typing import Any

import msgspec

from menura.api.lists import Document, expect_type, missing
from menura.api.operation import Category, Ctx, Reply, tier
from menura.domain import subscriptions

api = Category("Client")


class _ProfileData(msgspec.Struct):
    type: str
    attributes: Any = msgspec.UNSET
    id: Any = None


class _Profile(msgspec.Struct):
    data: _ProfileData


class _Attributes(msgspec.Struct):
    profile: _Profile
    custom_source: Any = None


class _ListRef(msgspec.Struct):
    type: str
    id: str


class _ListRelationship(msgspec.Struct):
    data: _ListRef


class _Relationships(msgspec.Struct):
    list: _ListRelationship


class _Subscription(msgspec.Struct):
    type: str
    attributes: _Attributes
    relationships: _Relationships


@api.post("/client/subscriptions", "create_client_subscription", scopes=("subscriptions:write",),
          rate=tier(350, 750), success=202, auth="public")
def create_client_subscription(ctx: Ctx) -> Reply:
    """Create Client Subscription (double opt-in lists leave the profile pending until confirmed)."""
    data = ctx.body(Document[_Subscription]).data
    expect_type(data.type, "subscription")
    profile = data.attributes.profile.data
    expect_type(profile.type, "profile", pointer="/data/attributes/profile/data/type")
    if profile.attributes is msgspec.UNSET:
        raise missing("/data/attributes/profile/data/attributes")
    list_ref = data.relationships.list.data
    expect_type(list_ref.type, "list", pointer="/data/relationships/list/data/type")
    subscriptions.accept_client_subscription(ctx.db, ctx.account_id, ctx.now(), list_id=list_ref.id,
                                             custom_source=data.attributes.custom_source, profile_id=profile.id,
                                             attributes=profile.attributes)
    ctx.services.work_signal.set()
    return Reply(202)
