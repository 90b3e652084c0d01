"""Client-side profile endpoints (public key as `company_id`, called from browsers and mobile SDKs):
create or update a profile, register and unregister push tokens. They answer 202 with no body once
the change is committed. Client calls never change an existing profile's identifiers (Klaviyo
documents that such attempts are accepted but ignored)."""

from __future__ import annotations

from typing import Any

import msgspec

from menura.api.operation import XL, Category, Ctx, tier
from menura.api.profiles import (
    ProfileUpsert,
    expect_type,
    profile_reference_input,
    register_push_token,
)
from menura.domain import profiles as rules
from menura.domain import push_tokens
from menura.jsonapi import errors

api = Category("Client")


class ClientProfileBody(msgspec.Struct, forbid_unknown_fields=True):
    data: ProfileUpsert


class UnregisterData(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: dict[str, Any]


class UnregisterBody(msgspec.Struct, forbid_unknown_fields=True):
    data: UnregisterData


@api.post("/client/profiles", "create_client_profile", scopes=("profiles:write",), rate=XL, success=202,
          auth="public")
def create_client_profile(ctx: Ctx) -> None:
    """Create or Update Client Profile."""
    data = ctx.body(ClientProfileBody).data
    expect_type(data.type, "profile")
    profile = rules.profile_input_from_attributes(data.attributes, meta=data.meta, profile_id=data.id)
    with ctx.db.write() as conn:
        rules.resolve_profile(conn, account_id=ctx.account_id, data=profile, now=ctx.now(),
                              secret=ctx.services.secret, update_identifiers=False)


@api.post("/client/push-tokens", "create_client_push_token", rate=tier(150, 1400), success=202, auth="public")
def create_client_push_token(ctx: Ctx) -> None:
    """Create or Update Client Push Token."""
    register_push_token(ctx, client=True)


@api.post("/client/push-token-unregister", "unregister_client_push_token", rate=tier(10, 150), success=202,
          auth="public")
def unregister_client_push_token(ctx: Ctx) -> None:
    """Unregister Client Push Token: the token stops belonging to the profile named."""
    data = ctx.body(UnregisterBody).data
    expect_type(data.type, "push-token-unregister")
    attrs = dict(data.attributes)
    for key in attrs:
        if key not in ("token", "platform", "vendor", "profile"):
            raise errors.invalid(f"'{key}' is not a valid field for the resource 'push-token-unregister'.",
                                 pointer=f"/data/attributes/{key}")
    token = push_tokens.parse_push_token({k: v for k, v in attrs.items() if k != "profile"}, vendor_required=False)
    if "profile" not in attrs:
        raise errors.invalid("'profile' is a required field.", pointer="/data/attributes/profile")
    profile = profile_reference_input(attrs["profile"], "/data/attributes/profile")
    with ctx.db.write() as conn:
        matches = rules.find_matches(conn, ctx.account_id, profile, ctx.services.secret)
        if matches:
            push_tokens.unregister(conn, account_id=ctx.account_id, token=token.token, profile_id=matches[0][1])
