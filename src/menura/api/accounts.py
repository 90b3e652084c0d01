"""Accounts category."""

from __future__ import annotations

from typing import Any

from menura.api.operation import XS, Category, Ctx
from menura.domain import accounts as rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.query import QuerySpec
from menura.store import accounts as store

api = Category("Accounts")
ACCOUNT = ResourceType("account", "accounts")
FIELDS = {"account": (
    "test_account", "contact_information", "contact_information.default_sender_name",
    "contact_information.default_sender_email", "contact_information.website_url",
    "contact_information.organization_name", "contact_information.street_address",
    "contact_information.street_address.address1", "contact_information.street_address.address2",
    "contact_information.street_address.city", "contact_information.street_address.region",
    "contact_information.street_address.country", "contact_information.street_address.zip",
    "industry", "timezone", "preferred_currency", "public_api_key", "locale",
)}


def _serialize(ctx: Ctx, row: Any) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(ACCOUNT, row.id, rules.attributes(row), ctx.links,
                           fields=ctx.query.fields_for("account"))


@api.get("/api/accounts", "get_accounts", scopes=("accounts:read",), rate=XS,
         query=QuerySpec(fields=FIELDS))
def get_accounts(ctx: Ctx) -> dict[str, Any]:
    """Get Accounts: the account the private key belongs to."""
    with ctx.db.read() as conn:
        row = store.get_account(conn, ctx.account_id)
    return {"data": [_serialize(ctx, row)], "links": {"self": ctx.url}}


@api.get("/api/accounts/{id}", "get_account", scopes=("accounts:read",), rate=XS,
         query=QuerySpec(fields=FIELDS))
def get_account(ctx: Ctx) -> dict[str, Any]:
    """Get Account."""
    account_id = ctx.path_params["id"]
    if account_id != ctx.account_id:
        raise errors.not_found(f"An account with id '{account_id}' does not exist.")
    with ctx.db.read() as conn:
        row = store.get_account(conn, ctx.account_id)
    return single_document(_serialize(ctx, row), links={"self": ctx.url})
