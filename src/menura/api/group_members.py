"""Members of a list or a segment: both categories filter, page and serialize their profiles alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Row, select
from sqlalchemy.sql.elements import ColumnElement

from menura.api.bodies import iso
from menura.api.listing import Listing, Serializer, list_resources
from menura.api.operation import Ctx
from menura.api.profile_filters import identifier_field, kx_context, kx_field, normalized_email, normalized_phone
from menura.api.profiles import PROFILE_FIELDS, profile_resources
from menura.api.related import ResourceLoader
from menura.jsonapi.documents import identifier
from menura.jsonapi.filters import FilterField, datetime_field
from menura.jsonapi.query import PageBounds
from menura.store.profile_tables import profiles as profiles_table
from menura.store.profile_tables import push_tokens as push_tokens_table

MEMBER_FIELDS = tuple(sorted((*PROFILE_FIELDS, "joined_group_at")))
MEMBER_PAGE = PageBounds(default=20, maximum=100)
# These read the profiles table, which every member listing joins.
EMAIL_FILTER = identifier_field(profiles_table.c.email, normalized_email, list_ops=("any",))
PHONE_FILTER = identifier_field(profiles_table.c.phone_number, normalized_phone, list_ops=("any",))


@dataclass(frozen=True)
class GroupMembers:
    """One membership table: which column holds the profile, the group, and the time it joined."""

    profile_id: Column[Any]
    group_id: Column[Any]
    joined: Column[Any]  # Klaviyo's `joined_group_at`, the default sort
    load_group: ResourceLoader  # the list or segment the request path names

    def kx_filter(self) -> FilterField:
        return kx_field(self.profile_id)

    def push_token_filter(self) -> FilterField:
        def condition(_op: str, value: Any) -> ColumnElement[bool]:
            tokens = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
            holders = select(push_tokens_table.c.profile_id).where(push_tokens_table.c.token.in_(tokens))
            return self.profile_id.in_(holders)

        return FilterField("string", single=frozenset({"equals"}), list=frozenset({"any"}), column=condition)

    def joined_filter(self) -> FilterField:
        return datetime_field(self.joined, ops=("greater-or-equal", "greater-than", "less-or-equal", "less-than"))

    def page(self, ctx: Ctx, conn: Connection, serialize: Serializer) -> dict[str, Any]:
        """A page of the group's members, first joined first (`sort=-joined_group_at` reverses)."""
        group = self.load_group(conn, ctx)
        stmt = (select(self.profile_id, self.joined)
                .join(profiles_table, profiles_table.c.id == self.profile_id)
                .where(self.group_id == group.id, profiles_table.c.account_id == ctx.account_id))
        listing = Listing(select=stmt, id_column=self.profile_id, sort_columns={"joined_group_at": self.joined},
                          default_sort="joined_group_at")
        with kx_context(ctx):
            return list_resources(ctx, conn, listing, serialize)

    def profiles(self, ctx: Ctx) -> dict[str, Any]:
        """The members as profile resources, each with the time it joined (`joined_group_at`)."""
        joined: dict[str, Any] = {}

        def remember(member: Row[Any]) -> dict[str, Any]:
            joined[member.profile_id] = member._mapping[self.joined]
            return {"id": member.profile_id}

        with ctx.db.read() as conn:
            document = self.page(ctx, conn, remember)
            resources = profile_resources(ctx, conn, [item["id"] for item in document["data"]])
        assert ctx.query is not None
        fields = ctx.query.fields_for("profile")
        for resource in resources:
            if fields is None or "joined_group_at" in fields:
                resource["attributes"]["joined_group_at"] = iso(joined[resource["id"]])
        document["data"] = resources
        return document

    def profile_ids(self, ctx: Ctx) -> dict[str, Any]:
        with ctx.db.read() as conn:
            return self.page(ctx, conn, lambda member: identifier("profile", member.profile_id))
