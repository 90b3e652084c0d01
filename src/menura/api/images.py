"""Images category (5 operations) and the public route that serves uploaded images."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from sqlalchemy import Row, false
from sqlalchemy.sql.elements import ColumnElement

from menura.api.bodies import expect_id
from menura.api.listing import Listing, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.resource_data import ExistingResource, NewResource, read_data, reject_unknown
from menura.domain import images as rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.filters import FilterField, datetime_field, number_field, string_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import images as store
from menura.store.image_storage import ImageStorage, image_storage, valid_key
from menura.store.template_tables import images as images_table

api = Category("Images")
public = Category("Image files")
IMAGE = ResourceType("image", "images")
FIELDS = {"image": ("format", "hidden", "id", "image_url", "name", "size", "updated_at")}
READ_RATE = tier(10, 150)
UPLOAD_RATE = tier(3, 100)
# A 5 MB image as base64 in a data URI, or in a multipart body, is larger than 5 MB.
UPLOAD_BODY_LIMIT = 8 * 1024 * 1024
_COMPARE = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")


def _id_condition(op: str, value: Any) -> ColumnElement[bool]:
    """Ids are strings on the wire and integers here; a non-numeric id matches nothing."""
    values = value if isinstance(value, list | tuple) else (value,)
    numbers = [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) < 19]
    if not numbers:
        return false()
    return images_table.c.id.in_(numbers)


FILTERS: dict[str, FilterField] = {
    "id": FilterField("string", frozenset({"equals"}), frozenset({"any", "equals"}), column=_id_condition),
    "updated_at": datetime_field(images_table.c.updated_at, ops=_COMPARE),
    "format": string_field(images_table.c.format, single=("equals",), list=("any", "equals")),
    "name": string_field(images_table.c.name, single=("contains", "ends-with", "equals", "starts-with"),
                         list=("any", "equals")),
    "size": number_field(images_table.c.size, ops=_COMPARE, integer=True),
    "hidden": FilterField("boolean", frozenset({"equals"}), frozenset({"any", "equals"}),
                          column=images_table.c.hidden),
}
_SORTS = ("format", "id", "name", "size", "updated_at")


def _storage(ctx: Ctx) -> ImageStorage:
    return image_storage(ctx.services.settings.data_dir)


def _base(ctx: Ctx) -> str:
    return ctx.services.settings.public_url or ctx.base_url


def image_resource(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {"name": row.name, "image_url": _storage(ctx).url(row.storage_key, _base(ctx)),
                  "format": row.format, "size": row.size, "hidden": row.hidden,
                  "updated_at": row.updated_at.isoformat()}
    return resource_object(IMAGE, str(row.id), attributes, ctx.links, fields=ctx.query.fields_for("image"))


def _created(ctx: Ctx, row: Row[Any]) -> Reply:
    resource = image_resource(ctx, row)
    return Reply(201, single_document(resource, links={"self": resource["links"]["self"]}))


@api.get("/api/images", "get_images", scopes=("images:read",), rate=READ_RATE,
         query=QuerySpec(fields=FIELDS, sort=_SORTS, page=PageBounds(default=20, maximum=100), filters=FILTERS))
def get_images(ctx: Ctx) -> dict[str, Any]:
    """Get Images."""
    listing = Listing(select=store.images_select(ctx.account_id), id_column=images_table.c.id,
                      sort_columns={name: images_table.c[name] for name in _SORTS})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: image_resource(ctx, row))


@api.post("/api/images", "upload_image_from_url", scopes=("images:write",), rate=UPLOAD_RATE, success=201,
          query=QuerySpec(fields=FIELDS), max_body_bytes=UPLOAD_BODY_LIMIT)
def upload_image_from_url(ctx: Ctx) -> Reply:
    """Upload Image From URL (an http(s) URL on an allowed host, or a data URI)."""
    data = read_data(ctx, NewResource, "image")
    attrs = data.attributes
    pointer = "/data/attributes/import_from_url"
    source = attrs.get("import_from_url")
    if source is None:
        raise errors.invalid("'import_from_url' is a required field.", pointer=pointer)
    if not isinstance(source, str) or not source.strip():
        raise errors.invalid("'import_from_url' must be a URL or a data URI.", pointer=pointer)
    hidden = attrs.get("hidden")
    if hidden is not None and not isinstance(hidden, bool):
        raise errors.invalid("'hidden' must be a boolean.", pointer="/data/attributes/hidden")
    if source.startswith("data:"):
        content, default_name = rules.decode_data_uri(source, pointer), None
    else:
        content = rules.fetch_image(source, ctx.services.settings.fetch_allowed_hosts, pointer)
        default_name = rules.name_from_url(source)
    upload = rules.Upload(content, attrs.get("name"), bool(hidden))
    row = rules.create_image(ctx.db, _storage(ctx), ctx.account_id, ctx.now(), upload, default_name=default_name,
                             pointer=pointer)
    return _created(ctx, row)


@api.get("/api/images/{id}", "get_image", scopes=("images:read",), rate=READ_RATE, query=QuerySpec(fields=FIELDS))
def get_image(ctx: Ctx) -> dict[str, Any]:
    """Get Image."""
    with ctx.db.read() as conn:
        row = rules.get_image(conn, ctx.account_id, ctx.path_params["id"])
    return single_document(image_resource(ctx, row), links={"self": ctx.url})


@api.patch("/api/images/{id}", "update_image", scopes=("images:write",), rate=READ_RATE,
           query=QuerySpec(fields=FIELDS))
def update_image(ctx: Ctx) -> dict[str, Any]:
    """Update Image (name, hidden)."""
    data = read_data(ctx, ExistingResource, "image")
    expect_id(data.id, ctx.path_params["id"])
    reject_unknown(data.attributes, ("name", "hidden"))
    row = rules.update_image(ctx.db, ctx.account_id, ctx.path_params["id"], ctx.now(),
                             name=data.attributes.get("name"), hidden=data.attributes.get("hidden"))
    return single_document(image_resource(ctx, row), links={"self": ctx.url})


# --------------------------------------------------------------------------- multipart upload

def _form(ctx: Ctx) -> dict[str, tuple[bytes, str | None]]:
    """multipart/form-data fields: name -> (bytes, filename)."""
    content_type = ctx.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise errors.unsupported_media_type(content_type.split(";")[0].strip())
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + ctx.body_bytes)
    if not message.is_multipart():
        raise errors.invalid("The body is not valid multipart/form-data.", pointer="/data")
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        fields[name] = (payload if isinstance(payload, bytes) else b"", filename)
    return fields


def _form_bool(raw: bytes | None) -> bool:
    if raw is None:
        return False
    text = raw.decode("utf-8", "replace").strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise errors.invalid("'hidden' must be true or false.", pointer="/data/attributes/hidden")


@api.post("/api/image-upload", "upload_image_from_file", scopes=("images:write",), rate=UPLOAD_RATE, success=201,
          query=QuerySpec(fields=FIELDS), body_types=("multipart/form-data",), max_body_bytes=UPLOAD_BODY_LIMIT)
def upload_image_from_file(ctx: Ctx) -> Reply:
    """Upload Image From File (multipart/form-data: file, name, hidden)."""
    fields = _form(ctx)
    if "file" not in fields:
        raise errors.invalid("'file' is a required field.", pointer="/data/attributes/file")
    content, filename = fields["file"]
    name = fields["name"][0].decode("utf-8", "replace") if "name" in fields else None
    upload = rules.Upload(content, name, _form_bool(fields["hidden"][0] if "hidden" in fields else None))
    row = rules.create_image(ctx.db, _storage(ctx), ctx.account_id, ctx.now(), upload, default_name=filename,
                             pointer="/data/attributes/file")
    return _created(ctx, row)


# --------------------------------------------------------------------------- public files

@public.get("/i/{account}/{file}", "serve_image", auth="none")
def serve_image(ctx: Ctx) -> Reply:
    """The bytes of an uploaded image (what `image_url` points at)."""
    key = f"{ctx.path_params['account']}/{ctx.path_params['file']}"
    if not valid_key(key):
        raise errors.not_found("No such image.")
    with ctx.db.read() as conn:
        found = rules.image_bytes(conn, _storage(ctx), ctx.path_params["account"], ctx.path_params["file"])
    if found is None:
        raise errors.not_found("No such image.")
    content, media_type = found
    return Reply(200, raw=content, media_type=media_type,
                 headers={"Cache-Control": "public, max-age=31536000, immutable"})
