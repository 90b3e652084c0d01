"""The Profiles category's bulk jobs: bulk import (with its lists, profiles and import errors),
bulk suppress and unsuppress, bulk subscribe and unsubscribe. Every job is durable work: its row
and input are committed before the 202 answers, and the worker does the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Row

from menura.api.listing import Listing, attach_includes, list_resources, relationship_ids
from menura.api.lists import Document, expect_type, list_resource, missing
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.profiles import ADDITIONAL as PROFILE_ADDITIONAL
from menura.api.profiles import PROFILE_FIELDS, profile_resources
from menura.domain import profile_jobs as rules
from menura.domain import subscriptions
from menura.jsonapi import errors
from menura.jsonapi.documents import LinkBuilder, ResourceType, identifier, resource_object, single_document
from menura.jsonapi.filters import FilterField, id_field, string_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import lists as list_store
from menura.store import profile_jobs as store
from menura.store.list_tables import profile_bulk_job_errors, profile_bulk_job_profiles, profile_bulk_jobs

api = Category("Profiles")

IMPORT = ResourceType("profile-bulk-import-job", "profile-bulk-import-jobs")
SUPPRESS = ResourceType("profile-suppression-bulk-create-job", "profile-suppression-bulk-create-jobs")
UNSUPPRESS = ResourceType("profile-suppression-bulk-delete-job", "profile-suppression-bulk-delete-jobs")
IMPORT_ERROR = ResourceType("import-error", "import-errors")

IMPORT_RATE = tier(10, 150)
FAST = tier(75, 750)

IMPORT_FIELDS = ("completed_at", "completed_count", "created_at", "expires_at", "failed_count", "id",
                 "started_at", "status", "total_count")
SUPPRESSION_FIELDS = ("completed_at", "completed_count", "created_at", "id", "skipped_count", "status",
                      "total_count")
LIST_FIELDS = ("created", "id", "name", "opt_in_process", "updated")
ERROR_FIELDS = ("code", "detail", "id", "original_payload", "source", "source.pointer", "title")
JOB_PAGE = PageBounds(default=20, maximum=100)
STATUSES = ("cancelled", "complete", "processing", "queued")

IMPORT_FILTERS: dict[str, FilterField] = {
    "status": string_field(profile_bulk_jobs.c.status, single=("equals",), list=("any",), enum=STATUSES),
}
SUPPRESSION_FILTERS: dict[str, FilterField] = {
    "status": string_field(profile_bulk_jobs.c.status, enum=STATUSES),
    "list_id": id_field(profile_bulk_jobs.c.list_id, list=()),
    "segment_id": id_field(profile_bulk_jobs.c.segment_id, list=()),
}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- serialization


def _import_job(ctx: Ctx, row: Row[Any], *, list_linkage: bool = False) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {
        "status": row.status, "created_at": _iso(row.created_at), "total_count": row.total_count,
        "completed_count": row.completed_count, "failed_count": row.failed_count,
        "completed_at": _iso(row.completed_at), "expires_at": _iso(row.expires_at), "started_at": _iso(row.started_at),
    }
    resource = resource_object(IMPORT, row.id, attributes, ctx.links,
                               fields=ctx.query.fields_for("profile-bulk-import-job"))
    links: LinkBuilder = ctx.links
    lists_rel: dict[str, Any] = {}
    if list_linkage:
        lists_rel["data"] = [identifier("list", lid) for lid in row.list_ids]
    lists_rel["links"] = links.relationship(IMPORT, row.id, "lists")
    resource["relationships"] = {
        "lists": lists_rel,
        "profiles": {"links": links.relationship(IMPORT, row.id, "profiles")},
        # Klaviyo links import errors as a related collection only (no relationship endpoint).
        "import-errors": {"links": {"related": links.relationship(IMPORT, row.id, "import-errors")["related"]}},
    }
    resource["links"] = resource.pop("links")
    return resource


def _suppression_job(ctx: Ctx, rtype: ResourceType, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {
        "status": row.status, "created_at": _iso(row.created_at), "total_count": row.total_count,
        "completed_count": row.completed_count, "completed_at": _iso(row.completed_at),
        "skipped_count": row.skipped_count,
    }
    resource = resource_object(rtype, row.id, attributes, ctx.links, fields=ctx.query.fields_for(rtype.type))
    resource["relationships"] = {
        "lists": {"data": [identifier("list", row.list_id)] if row.list_id else []},
        "segments": {"data": [identifier("segment", row.segment_id)] if row.segment_id else []},
    }
    resource["links"] = resource.pop("links")
    return resource


def _job_or_404(ctx: Ctx, kind: str, param: str = "job_id") -> Row[Any]:
    job_id = ctx.path_params[param]
    with ctx.db.read() as conn:
        row = store.get_job(conn, ctx.account_id, kind, job_id)
    if row is None:
        raise errors.not_found(f"A job with id '{job_id}' does not exist.")
    return row


def _job_listing(ctx: Ctx, kind: str, sort_name: str) -> Listing:
    return Listing(select=store.jobs_select(ctx.account_id, kind), id_column=profile_bulk_jobs.c.id,
                   sort_columns={sort_name: profile_bulk_jobs.c.created_at}, default_sort=sort_name)


def _accepted(resource: dict[str, Any]) -> Reply:
    return Reply(202, single_document(resource, links={"self": resource["links"]["self"]}))


# --------------------------------------------------------------------------- bulk import


class _ImportProfile(msgspec.Struct):
    type: str
    attributes: Any = msgspec.UNSET
    id: Any = None
    meta: Any = None


class _ImportProfiles(msgspec.Struct):
    data: list[_ImportProfile]


class _ImportAttributes(msgspec.Struct):
    profiles: _ImportProfiles


class _ResourceId(msgspec.Struct):
    type: str
    id: str


class _ToMany(msgspec.Struct):
    data: list[_ResourceId]


class _ToOne(msgspec.Struct):
    data: _ResourceId


class _ImportRelationships(msgspec.Struct):
    lists: _ToMany | None = None


class _ImportJob(msgspec.Struct):
    type: str
    attributes: _ImportAttributes
    relationships: _ImportRelationships | None = None


def _import_rows(items: Sequence[_ImportProfile]) -> list[dict[str, Any]]:
    base = "/data/attributes/profiles/data"
    rows: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        expect_type(item.type, "profile", pointer=f"{base}/{index}/type")
        if item.attributes is msgspec.UNSET:
            raise missing(f"{base}/{index}/attributes")
        row = {"attributes": item.attributes, "id": item.id, "meta": item.meta}
        rows.append(row)
    rules.check_import_rows(rows)
    return rows


@api.get("/api/profile-bulk-import-jobs", "get_bulk_import_profiles_jobs", scopes=("lists:read", "profiles:read"),
         rate=IMPORT_RATE, query=QuerySpec(fields={"profile-bulk-import-job": IMPORT_FIELDS}, sort=("created_at",),
                                           page=JOB_PAGE, filters=IMPORT_FILTERS))
def get_bulk_import_profiles_jobs(ctx: Ctx) -> dict[str, Any]:
    """Get Bulk Import Profiles Jobs."""
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, _job_listing(ctx, rules.IMPORT, "created_at"),
                              lambda row: _import_job(ctx, row))


@api.post("/api/profile-bulk-import-jobs", "bulk_import_profiles", scopes=("lists:write", "profiles:write"),
          rate=IMPORT_RATE, success=202, query=QuerySpec(fields={"profile-bulk-import-job": IMPORT_FIELDS}))
def bulk_import_profiles(ctx: Ctx) -> Reply:
    """Bulk Import Profiles: up to 10,000 profiles (5 MB, 100 KB each), optionally into lists."""
    data = ctx.body(Document[_ImportJob]).data
    expect_type(data.type, "profile-bulk-import-job")
    rows = _import_rows(data.attributes.profiles.data)
    list_ids: list[str] = []
    if data.relationships is not None and data.relationships.lists is not None:
        for index, ref in enumerate(data.relationships.lists.data):
            expect_type(ref.type, "list", pointer=f"/data/relationships/lists/data/{index}/type")
            list_ids.append(ref.id)
    job = rules.create_import_job(ctx.db, ctx.account_id, ctx.now(), rows=rows, list_ids=list_ids)
    ctx.services.work_signal.set()
    return _accepted(_import_job(ctx, job))


@api.get("/api/profile-bulk-import-jobs/{job_id}", "get_bulk_import_profiles_job",
         scopes=("lists:read", "profiles:read"), rate=IMPORT_RATE,
         query=QuerySpec(fields={"profile-bulk-import-job": IMPORT_FIELDS, "list": LIST_FIELDS}, include=("lists",)))
def get_bulk_import_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Bulk Import Profiles Job (with `include=lists`)."""
    assert ctx.query is not None
    row = _job_or_404(ctx, rules.IMPORT)
    wants_lists = "lists" in ctx.query.include
    resource = _import_job(ctx, row, list_linkage=wants_lists)
    if not wants_lists:
        return single_document(resource, links={"self": ctx.url})
    with ctx.db.read() as conn:
        included = attach_includes(ctx, conn, [row], [resource], {"lists": _include_lists})
    return single_document(resource, included, links={"self": ctx.url})


def _include_lists(conn: Any, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    linkage: dict[str, Any] = {}
    resources: list[dict[str, Any]] = []
    for row in rows:
        found = list_store.lists_by_ids(conn, ctx.account_id, row.list_ids)
        linkage[row.id] = [identifier("list", item.id) for item in found]
        resources.extend(list_resource(ctx, item) for item in found)
    return linkage, resources


def _import_lists(ctx: Ctx) -> list[Row[Any]]:
    row = _job_or_404(ctx, rules.IMPORT, "id")
    with ctx.db.read() as conn:
        return list_store.lists_by_ids(conn, ctx.account_id, row.list_ids)


@api.get("/api/profile-bulk-import-jobs/{id}/lists", "get_list_for_bulk_import_profiles_job", scopes=("lists:read",),
         rate=IMPORT_RATE, query=QuerySpec(fields={"list": LIST_FIELDS}))
def get_list_for_bulk_import_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Lists for Bulk Import Profiles Job."""
    return {"data": [list_resource(ctx, row) for row in _import_lists(ctx)], "links": {"self": ctx.url}}


@api.get("/api/profile-bulk-import-jobs/{id}/relationships/lists", "get_list_ids_for_bulk_import_profiles_job",
         scopes=("lists:read",), rate=IMPORT_RATE)
def get_list_ids_for_bulk_import_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get List IDs for Bulk Import Profiles Job."""
    return relationship_ids(ctx, "list", [row.id for row in _import_lists(ctx)])


def _job_profiles_listing(job_id: str) -> Listing:
    return Listing(select=store.job_profiles_select(job_id), id_column=profile_bulk_job_profiles.c.profile_id,
                   sort_columns={})


@api.get("/api/profile-bulk-import-jobs/{id}/relationships/profiles", "get_profile_ids_for_bulk_import_profiles_job",
         scopes=("profiles:read",), rate=IMPORT_RATE, query=QuerySpec(page=JOB_PAGE))
def get_profile_ids_for_bulk_import_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Profile IDs for Bulk Import Profiles Job: the profiles it created or updated."""
    row = _job_or_404(ctx, rules.IMPORT, "id")
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, _job_profiles_listing(row.id),
                              lambda member: identifier("profile", member.profile_id))


@api.get("/api/profile-bulk-import-jobs/{id}/profiles", "get_profiles_for_bulk_import_profiles_job",
         scopes=("profiles:read",), rate=IMPORT_RATE,
         query=QuerySpec(page=JOB_PAGE, fields={"profile": PROFILE_FIELDS}, additional_fields=PROFILE_ADDITIONAL))
def get_profiles_for_bulk_import_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Profiles for Bulk Import Profiles Job."""
    row = _job_or_404(ctx, rules.IMPORT, "id")
    with ctx.db.read() as conn:
        document = list_resources(ctx, conn, _job_profiles_listing(row.id),
                                  lambda member: identifier("profile", member.profile_id))
        ids = [item["id"] for item in document["data"]]
        document["data"] = profile_resources(ctx, conn, ids)
    return document


def _error_resource(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {"code": row.code, "title": row.title, "detail": row.detail,
                  "source": {"pointer": row.pointer}, "original_payload": row.original_payload}
    resource = resource_object(IMPORT_ERROR, row.id, attributes, ctx.links,
                               fields=ctx.query.fields_for("import-error"))
    # Import errors have no endpoint of their own.
    resource.pop("links", None)
    return resource


@api.get("/api/profile-bulk-import-jobs/{id}/import-errors", "get_errors_for_bulk_import_profiles_job",
         scopes=("profiles:read",), rate=IMPORT_RATE,
         query=QuerySpec(page=JOB_PAGE, fields={"import-error": ERROR_FIELDS}))
def get_errors_for_bulk_import_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Import Errors for Bulk Import Profiles Job, in the order of the rows they concern."""
    row = _job_or_404(ctx, rules.IMPORT, "id")
    listing = Listing(select=store.errors_select(row.id), id_column=profile_bulk_job_errors.c.id,
                      sort_columns={"row": profile_bulk_job_errors.c.row_index}, default_sort="row")
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda error: _error_resource(ctx, error))


# --------------------------------------------------------------------------- bulk suppress / unsuppress


class _SuppressionProfileAttributes(msgspec.Struct):
    email: Any = msgspec.UNSET


class _SuppressionProfile(msgspec.Struct):
    type: str
    attributes: _SuppressionProfileAttributes


class _SuppressionProfiles(msgspec.Struct):
    data: list[_SuppressionProfile]


class _SuppressionAttributes(msgspec.Struct):
    profiles: _SuppressionProfiles | None = None


class _SuppressionRelationships(msgspec.Struct):
    list: _ToOne | None = None
    segment: _ToOne | None = None


class _SuppressionJob(msgspec.Struct):
    type: str
    attributes: _SuppressionAttributes
    relationships: _SuppressionRelationships | None = None


def _create_suppression_job(ctx: Ctx, kind: str, rtype: ResourceType) -> Reply:
    data = ctx.body(Document[_SuppressionJob]).data
    expect_type(data.type, rtype.type)
    emails: list[Any] | None = None
    if data.attributes.profiles is not None:
        emails = []
        for index, item in enumerate(data.attributes.profiles.data):
            where = f"/data/attributes/profiles/data/{index}"
            expect_type(item.type, "profile", pointer=f"{where}/type")
            if item.attributes.email is msgspec.UNSET:
                raise missing(f"{where}/attributes/email")
            emails.append(item.attributes.email)
    list_id = segment_id = None
    relationships = data.relationships
    if relationships is not None and relationships.list is not None:
        expect_type(relationships.list.data.type, "list", pointer="/data/relationships/list/data/type")
        list_id = relationships.list.data.id
    if relationships is not None and relationships.segment is not None:
        expect_type(relationships.segment.data.type, "segment", pointer="/data/relationships/segment/data/type")
        segment_id = relationships.segment.data.id
    job = rules.create_suppression_job(ctx.db, ctx.account_id, ctx.now(), kind=kind, emails=emails,
                                       list_id=list_id, segment_id=segment_id)
    ctx.services.work_signal.set()
    return _accepted(_suppression_job(ctx, rtype, job))


def _suppression_query(rtype: ResourceType) -> QuerySpec:
    return QuerySpec(fields={rtype.type: SUPPRESSION_FIELDS}, sort=("created",), page=JOB_PAGE,
                     filters=SUPPRESSION_FILTERS)


def _list_suppression_jobs(ctx: Ctx, kind: str, rtype: ResourceType) -> dict[str, Any]:
    if "page[size]" in ctx.params:
        raise errors.invalid("page[size] is not a parameter of this endpoint.", parameter="page[size]")
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, _job_listing(ctx, kind, "created"),
                              lambda row: _suppression_job(ctx, rtype, row))


@api.get("/api/profile-suppression-bulk-create-jobs", "get_bulk_suppress_profiles_jobs",
         scopes=("subscriptions:read",), rate=FAST, query=_suppression_query(SUPPRESS))
def get_bulk_suppress_profiles_jobs(ctx: Ctx) -> dict[str, Any]:
    """Get Bulk Suppress Profiles Jobs."""
    return _list_suppression_jobs(ctx, rules.SUPPRESS, SUPPRESS)


@api.post("/api/profile-suppression-bulk-create-jobs", "bulk_suppress_profiles",
          scopes=("profiles:write", "subscriptions:write"), rate=FAST, success=202,
          query=QuerySpec(fields={SUPPRESS.type: SUPPRESSION_FIELDS}))
def bulk_suppress_profiles(ctx: Ctx) -> Reply:
    """Bulk Suppress Profiles: by email (up to 100) or every current member of a list or segment."""
    return _create_suppression_job(ctx, rules.SUPPRESS, SUPPRESS)


@api.get("/api/profile-suppression-bulk-create-jobs/{job_id}", "get_bulk_suppress_profiles_job",
         scopes=("subscriptions:read",), rate=FAST, query=QuerySpec(fields={SUPPRESS.type: SUPPRESSION_FIELDS}))
def get_bulk_suppress_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Bulk Suppress Profiles Job."""
    return single_document(_suppression_job(ctx, SUPPRESS, _job_or_404(ctx, rules.SUPPRESS)), links={"self": ctx.url})


@api.get("/api/profile-suppression-bulk-delete-jobs", "get_bulk_unsuppress_profiles_jobs",
         scopes=("subscriptions:read",), rate=FAST, query=_suppression_query(UNSUPPRESS))
def get_bulk_unsuppress_profiles_jobs(ctx: Ctx) -> dict[str, Any]:
    """Get Bulk Unsuppress Profiles Jobs."""
    return _list_suppression_jobs(ctx, rules.UNSUPPRESS, UNSUPPRESS)


@api.post("/api/profile-suppression-bulk-delete-jobs", "bulk_unsuppress_profiles", scopes=("subscriptions:write",),
          rate=FAST, success=202, query=QuerySpec(fields={UNSUPPRESS.type: SUPPRESSION_FIELDS}))
def bulk_unsuppress_profiles(ctx: Ctx) -> Reply:
    """Bulk Unsuppress Profiles: removes USER_SUPPRESSED suppressions only."""
    return _create_suppression_job(ctx, rules.UNSUPPRESS, UNSUPPRESS)


@api.get("/api/profile-suppression-bulk-delete-jobs/{job_id}", "get_bulk_unsuppress_profiles_job",
         scopes=("subscriptions:read",), rate=FAST, query=QuerySpec(fields={UNSUPPRESS.type: SUPPRESSION_FIELDS}))
def get_bulk_unsuppress_profiles_job(ctx: Ctx) -> dict[str, Any]:
    """Get Bulk Unsuppress Profiles Job."""
    return single_document(_suppression_job(ctx, UNSUPPRESS, _job_or_404(ctx, rules.UNSUPPRESS)),
                           links={"self": ctx.url})


# --------------------------------------------------------------------------- bulk subscribe / unsubscribe


class _SubscriptionProfile(msgspec.Struct):
    type: str
    attributes: Any = msgspec.UNSET
    id: Any = None


class _SubscriptionProfiles(msgspec.Struct):
    data: list[_SubscriptionProfile]


class _SubscribeAttributes(msgspec.Struct):
    profiles: _SubscriptionProfiles
    custom_source: Any = None
    historical_import: Any = None


class _ListRelationship(msgspec.Struct):
    list: _ToOne | None = None


class _SubscriptionJob(msgspec.Struct):
    type: str
    attributes: _SubscribeAttributes
    relationships: _ListRelationship | None = None


class _UnsubscribeAttributes(msgspec.Struct):
    profiles: _SubscriptionProfiles


class _UnsubscriptionJob(msgspec.Struct):
    type: str
    attributes: _UnsubscribeAttributes
    relationships: _ListRelationship | None = None


_Job = TypeVar("_Job", _SubscriptionJob, _UnsubscriptionJob)


def _subscription_request(ctx: Ctx, shape: type[_Job], job_type: str) -> tuple[_Job, str | None]:
    """The job of a bulk (un)subscribe body, checked, and the id of the list it names (if any)."""
    data = ctx.body(Document[shape]).data
    expect_type(data.type, job_type)
    list_id = None
    if data.relationships is not None and data.relationships.list is not None:
        expect_type(data.relationships.list.data.type, "list", pointer="/data/relationships/list/data/type")
        list_id = data.relationships.list.data.id
    for index, item in enumerate(data.attributes.profiles.data):
        where = f"/data/attributes/profiles/data/{index}"
        expect_type(item.type, "profile", pointer=f"{where}/type")
        if item.attributes is msgspec.UNSET:
            raise missing(f"{where}/attributes")
    return data, list_id


@api.post("/api/profile-subscription-bulk-create-jobs", "bulk_subscribe_profiles",
          scopes=("lists:write", "profiles:write", "subscriptions:write"), rate=FAST, success=202)
def bulk_subscribe_profiles(ctx: Ctx) -> None:
    """Bulk Subscribe Profiles (double opt-in lists leave them pending until confirmed)."""
    job, list_id = _subscription_request(ctx, _SubscriptionJob, "profile-subscription-bulk-create-job")
    attributes = job.attributes
    subscriptions.accept_bulk_subscribe(
        ctx.db, ctx.account_id, ctx.now(), list_id=list_id, custom_source=attributes.custom_source,
        historical_import=attributes.historical_import,
        profiles=[{"id": item.id, "attributes": item.attributes} for item in attributes.profiles.data])
    ctx.services.work_signal.set()


@api.post("/api/profile-subscription-bulk-delete-jobs", "bulk_unsubscribe_profiles",
          scopes=("lists:write", "profiles:write", "subscriptions:write"), rate=FAST, success=202)
def bulk_unsubscribe_profiles(ctx: Ctx) -> None:
    """Bulk Unsubscribe Profiles (and remove them from the list, if one is given)."""
    data, list_id = _subscription_request(ctx, _UnsubscriptionJob, "profile-subscription-bulk-delete-job")
    subscriptions.accept_bulk_unsubscribe(
        ctx.db, ctx.account_id, ctx.now(), list_id=list_id,
        profiles=[{"attributes": item.attributes} for item in data.attributes.profiles.data])
    ctx.services.work_signal.set()
