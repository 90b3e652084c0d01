"""Templates category: templates (CRUD, render, clone) and universal content."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from menura.api.bodies import expect_id, iso
from menura.api.listing import Listing, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.resource_data import ExistingResource, NewResource, read_data, reject_unknown
from menura.domain import templates as rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.filters import FilterField, datetime_field, string_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import templates as store
from menura.store.template_tables import templates as templates_table
from menura.store.template_tables import universal_content as universal_table
from menura.templating import dnd

api = Category("Templates")
TEMPLATE = ResourceType("template", "templates")
UNIVERSAL = ResourceType("template-universal-content", "template-universal-content")

TEMPLATES_RATE = tier(75, 750)
RENDER_RATE = tier(3, 60)
READ = ("templates:read",)
WRITE = ("templates:write",)

_DEFINITION_FIELDS = (
    "definition", "definition.body", "definition.body.id", "definition.body.properties",
    "definition.body.properties.css_class", "definition.body.properties.id", "definition.body.sections",
    "definition.body.styles", "definition.body.styles.background_color", "definition.body.styles.width",
    "definition.id", "definition.styles", "definition.template_id",
)
TEMPLATE_FIELDS = ("amp", "created", *_DEFINITION_FIELDS, "editor_type", "html", "id", "name", "text", "updated")
RENDERED_FIELDS = ("amp", "created", "editor_type", "html", "id", "name", "text", "updated")
_BLOCK_STYLES = (
    "background_color", "block_background_color", "block_border_color", "block_border_style",
    "block_border_width", "block_padding_bottom", "block_padding_left", "block_padding_right",
    "block_padding_top", "color", "extra_css_class", "font_family", "font_size", "font_style", "font_weight",
    "inner_padding_bottom", "inner_padding_left", "inner_padding_right", "inner_padding_top", "letter_spacing",
    "line_height", "mobile_stretch_content", "text_align", "text_decoration", "text_table_layout",
)
UNIVERSAL_FIELDS = (
    "created", "definition", "definition.content_type", "definition.data", "definition.data.content",
    "definition.data.display_options", "definition.data.display_options.content_repeat",
    "definition.data.display_options.content_repeat.item_alias",
    "definition.data.display_options.content_repeat.repeat_for", "definition.data.display_options.show_on",
    "definition.data.display_options.visible_check", "definition.data.styles",
    *(f"definition.data.styles.{name}" for name in _BLOCK_STYLES),
    "definition.type", "id", "name", "screenshot_status", "screenshot_url", "updated",
)

_COMPARE = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")
TEMPLATE_FILTERS: dict[str, FilterField] = {
    "id": string_field(templates_table.c.id, single=(), list=("any", "equals")),
    "name": string_field(templates_table.c.name, single=("contains", "equals"), list=("any", "equals")),
    "created": datetime_field(templates_table.c.created, ops=("equals", *_COMPARE)),
    "updated": datetime_field(templates_table.c.updated, ops=("equals", *_COMPARE)),
}
UNIVERSAL_FILTERS: dict[str, FilterField] = {
    "id": string_field(universal_table.c.id, single=("equals",), list=("any", "equals")),
    "name": string_field(universal_table.c.name, single=("equals",), list=("any", "equals")),
    "created": datetime_field(universal_table.c.created, ops=_COMPARE),
    "updated": datetime_field(universal_table.c.updated, ops=_COMPARE),
    "definition.content_type": string_field(universal_table.c.content_type, enum=("block", "section")),
    "definition.type": string_field(universal_table.c.block_type, enum=(
        "button", "coupon", "drop_shadow", "header", "horizontal_rule", "html", "image", "product", "review",
        "social", "spacer", "split", "table", "text", "unsupported", "video")),
}
_SORTS = ("created", "id", "name", "updated")


# --------------------------------------------------------------------------- request bodies

def _expect_id(data: Any, ctx: Ctx) -> None:
    expect_id(data.id, ctx.path_params["id"])


# --------------------------------------------------------------------------- serialization

def template_attributes(row: Row[Any], *, definition: bool) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "name": row.name, "editor_type": row.editor_type, "html": row.html, "text": row.text, "amp": row.amp,
        "created": iso(row.created), "updated": iso(row.updated),
    }
    if definition and row.editor_type == "SYSTEM_DRAGGABLE":
        attributes["definition"] = row.definition
    return attributes


def template_resource(ctx: Ctx, row: Row[Any], *, definition: bool) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(TEMPLATE, row.id, template_attributes(row, definition=definition), ctx.links,
                           fields=ctx.query.fields_for("template"))


def universal_resource(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {"name": row.name, "definition": row.definition, "created": iso(row.created),
                  "updated": iso(row.updated),
                  # Screenshots of blocks are not generated by this server.
                  "screenshot_status": "never_generated", "screenshot_url": ""}
    return resource_object(UNIVERSAL, row.id, attributes, ctx.links,
                           fields=ctx.query.fields_for("template-universal-content"))


def _created(resource: dict[str, Any]) -> Reply:
    return Reply(201, single_document(resource, links={"self": resource["links"]["self"]}))


def _attributes(data: NewResource | ExistingResource, allowed: tuple[str, ...]) -> dict[str, Any]:
    reject_unknown(data.attributes, allowed)
    return data.attributes


# --------------------------------------------------------------------------- templates

_TEMPLATE_QUERY = QuerySpec(fields={"template": TEMPLATE_FIELDS}, additional_fields={"template": ("definition",)})


@api.get("/api/templates", "get_templates", scopes=READ, rate=TEMPLATES_RATE,
         query=QuerySpec(fields={"template": TEMPLATE_FIELDS}, additional_fields={"template": ("definition",)},
                         sort=_SORTS, page=PageBounds(default=10, maximum=10), filters=TEMPLATE_FILTERS))
def get_templates(ctx: Ctx) -> dict[str, Any]:
    """Get Templates (definitions with `additional-fields[template]=definition`)."""
    assert ctx.query is not None
    with_definition = ctx.query.wants("template", "definition")
    listing = Listing(select=store.templates_select(ctx.account_id), id_column=templates_table.c.id,
                      sort_columns={name: templates_table.c[name] for name in _SORTS})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: template_resource(ctx, row, definition=with_definition))


@api.post("/api/templates", "create_template", scopes=WRITE, rate=TEMPLATES_RATE, success=201,
          query=_TEMPLATE_QUERY)
def create_template(ctx: Ctx) -> Reply:
    """Create Template (CODE, USER_DRAGGABLE or SYSTEM_DRAGGABLE)."""
    data = read_data(ctx, NewResource, "template")
    attrs = _attributes(data, ("name", "editor_type", "html", "definition", "text", "amp"))
    for required in ("name", "editor_type"):
        if required not in attrs:
            raise errors.invalid(f"'{required}' is a required field.", pointer=f"/data/attributes/{required}")
    with ctx.db.write() as conn:
        row = rules.create_template(conn, ctx.account_id, ctx.now(), name=attrs["name"],
                                    editor_type=attrs["editor_type"], html=attrs.get("html"),
                                    text=attrs.get("text"), amp=attrs.get("amp"), definition=attrs.get("definition"))
    return _created(template_resource(ctx, row, definition=True))


@api.get("/api/templates/{id}", "get_template", scopes=READ, rate=TEMPLATES_RATE, query=_TEMPLATE_QUERY)
def get_template(ctx: Ctx) -> dict[str, Any]:
    """Get Template."""
    with ctx.db.read() as conn:
        row = rules.get_template(conn, ctx.account_id, ctx.path_params["id"])
    return single_document(template_resource(ctx, row, definition=True), links={"self": ctx.url})


@api.patch("/api/templates/{id}", "update_template", scopes=WRITE, rate=TEMPLATES_RATE, query=_TEMPLATE_QUERY)
def update_template(ctx: Ctx) -> dict[str, Any]:
    """Update Template."""
    data = read_data(ctx, ExistingResource, "template")
    _expect_id(data, ctx)
    attrs = _attributes(data, ("name", "html", "definition", "text", "amp"))
    with ctx.db.write() as conn:
        row = rules.update_template(conn, ctx.account_id, ctx.path_params["id"], ctx.now(), attrs)
    return single_document(template_resource(ctx, row, definition=True), links={"self": ctx.url})


@api.delete("/api/templates/{id}", "delete_template", scopes=WRITE, rate=TEMPLATES_RATE, success=204)
def delete_template(ctx: Ctx) -> None:
    """Delete Template."""
    with ctx.db.write() as conn:
        rules.delete_template(conn, ctx.account_id, ctx.path_params["id"])


@api.post("/api/template-render", "render_template", scopes=READ, rate=RENDER_RATE, success=201,
          query=QuerySpec(fields={"template": RENDERED_FIELDS}))
def render_template(ctx: Ctx) -> Reply:
    """Render Template with a context: its AMP, HTML and text versions."""
    data = read_data(ctx, ExistingResource, "template")
    attrs = _attributes(data, ("context", "return_fields"))
    context = attrs.get("context")
    if "context" not in attrs:
        raise errors.invalid("'context' is a required field.", pointer="/data/attributes/context")
    if not isinstance(context, dict):
        raise errors.invalid("'context' must be a JSON object.", pointer="/data/attributes/context")
    with ctx.db.read() as conn:
        row, message = rules.render_preview(conn, ctx.account_id, data.id, context, ctx.now(), ctx.base_url)
    attributes = template_attributes(row, definition=False)
    attributes.update(html=message.html, text=message.text, amp=message.amp)
    assert ctx.query is not None
    resource = resource_object(TEMPLATE, row.id, attributes, ctx.links, fields=ctx.query.fields_for("template"))
    return _created(resource)


@api.post("/api/template-clone", "clone_template", scopes=WRITE, rate=TEMPLATES_RATE, success=201,
          query=QuerySpec(fields={"template": RENDERED_FIELDS}))
def clone_template(ctx: Ctx) -> Reply:
    """Clone Template."""
    data = read_data(ctx, ExistingResource, "template")
    attrs = _attributes(data, ("name",))
    with ctx.db.write() as conn:
        row = rules.clone_template(conn, ctx.account_id, data.id, ctx.now(), attrs.get("name"))
    return _created(template_resource(ctx, row, definition=False))


# --------------------------------------------------------------------------- universal content

_UNIVERSAL_QUERY = QuerySpec(fields={"template-universal-content": UNIVERSAL_FIELDS})


@api.get("/api/template-universal-content", "get_all_universal_content", scopes=READ, rate=TEMPLATES_RATE,
         query=QuerySpec(fields={"template-universal-content": UNIVERSAL_FIELDS}, sort=_SORTS,
                         page=PageBounds(default=20, maximum=100), filters=UNIVERSAL_FILTERS))
def get_all_universal_content(ctx: Ctx) -> dict[str, Any]:
    """Get All Universal Content."""
    listing = Listing(select=store.universal_select(ctx.account_id), id_column=universal_table.c.id,
                      sort_columns={name: universal_table.c[name] for name in _SORTS})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: universal_resource(ctx, row))


@api.post("/api/template-universal-content", "create_universal_content", scopes=WRITE, rate=TEMPLATES_RATE,
          success=201, query=_UNIVERSAL_QUERY)
def create_universal_content(ctx: Ctx) -> Reply:
    """Create Universal Content (button, drop_shadow, horizontal_rule, html, image, spacer, text blocks)."""
    data = read_data(ctx, NewResource, "template-universal-content")
    attrs = _attributes(data, ("name", "definition"))
    for required in ("name", "definition"):
        if required not in attrs:
            raise errors.invalid(f"'{required}' is a required field.", pointer=f"/data/attributes/{required}")
    with ctx.db.write() as conn:
        row = rules.create_universal(conn, ctx.account_id, ctx.now(), name=attrs["name"],
                                     definition=attrs["definition"])
    return _created(universal_resource(ctx, row))


@api.get("/api/template-universal-content/{id}", "get_universal_content", scopes=READ, rate=TEMPLATES_RATE,
         query=_UNIVERSAL_QUERY)
def get_universal_content(ctx: Ctx) -> dict[str, Any]:
    """Get Universal Content."""
    with ctx.db.read() as conn:
        row = rules.get_universal(conn, ctx.account_id, ctx.path_params["id"])
    return single_document(universal_resource(ctx, row), links={"self": ctx.url})


@api.patch("/api/template-universal-content/{id}", "update_universal_content", scopes=WRITE,
           rate=TEMPLATES_RATE, query=_UNIVERSAL_QUERY)
def update_universal_content(ctx: Ctx) -> dict[str, Any]:
    """Update Universal Content."""
    data = read_data(ctx, ExistingResource, "template-universal-content")
    _expect_id(data, ctx)
    attrs = _attributes(data, ("name", "definition"))
    with ctx.db.write() as conn:
        row = rules.update_universal(conn, ctx.account_id, ctx.path_params["id"], ctx.now(), attrs)
    return single_document(universal_resource(ctx, row), links={"self": ctx.url})


@api.delete("/api/template-universal-content/{id}", "delete_universal_content", scopes=WRITE,
            rate=TEMPLATES_RATE, success=204)
def delete_universal_content(ctx: Ctx) -> None:
    """Delete Universal Content."""
    with ctx.db.write() as conn:
        rules.delete_universal(conn, ctx.account_id, ctx.path_params["id"])


__all__ = ["api", "dnd"]
