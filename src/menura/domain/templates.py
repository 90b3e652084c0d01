"""Templates and universal content: the rules for creating, changing and rendering them.

Editor types (Klaviyo's):
- CODE: custom HTML, stored and returned exactly as given;
- USER_DRAGGABLE: hybrid HTML with editable-region markup, also stored byte for byte;
- SYSTEM_DRAGGABLE: a drag-and-drop `definition`; its HTML is rendered from the definition.
Every HTML/text/AMP part must compile in the template language, or the request fails with 400,
naming the line and the reason."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Row

from menura import ids
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import accounts as account_store
from menura.store import templates as store
from menura.store import web_feeds as feed_store
from menura.templating import RenderEnv, TemplateError, compile_template, dnd, hybrid
from menura.templating.inline import inline_css
from menura.templating.text import html_to_text

EDITOR_TYPES = ("CODE", "USER_DRAGGABLE", "SYSTEM_DRAGGABLE")
MAX_TEMPLATES = 1000  # Klaviyo's limit on templates created through the API
MAX_NAME = 255
_FEED_REF = re.compile(r"\bfeeds\.([A-Za-z][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class RenderedMessage:
    html: str
    text: str
    amp: str | None = None
    subject: str | None = None


# --------------------------------------------------------------------------- checks

def _check_source(source: str | None, pointer: str) -> None:
    if source is None:
        return
    try:
        compile_template(source)
    except TemplateError as exc:
        raise template_error(exc, pointer) from None


def template_error(exc: TemplateError, pointer: str | None = None) -> ApiError:
    where = f" on line {exc.line}" if exc.line else ""
    return errors.invalid(f"Template error{where}: {exc.reason}", pointer=pointer)


def _check_name(name: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid("'name' must be a non-empty string.", pointer=pointer)
    if len(name) > MAX_NAME:
        raise errors.invalid(f"'name' must be at most {MAX_NAME} characters.", pointer=pointer)
    return name


def _check_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise errors.invalid(f"'{name}' must be a string.", pointer=f"/data/attributes/{name}")
    return value


def _definition(value: Any, template_id: str) -> tuple[dict[str, Any], str]:
    """Validated definition with fresh read-only ids, and the HTML rendered from it."""
    try:
        definition = dnd.validate_definition(copy.deepcopy(value))
    except dnd.DefinitionError as exc:
        raise errors.invalid(exc.detail, pointer="/data/attributes/definition" + exc.pointer) from None
    definition = dnd.assign_ids(definition, template_id)
    html = dnd.render_definition(definition)
    _check_source(html, "/data/attributes/definition")
    return definition, html


# --------------------------------------------------------------------------- templates

def get_template(conn: Connection, account_id: str, template_id: str) -> Row[Any]:
    row = store.get_template(conn, account_id, template_id)
    if row is None:
        raise errors.not_found(f"A template with id '{template_id}' does not exist.")
    return row


def _new_template_id(conn: Connection) -> str:
    template_id = ids.short_id(6)
    while store.template_exists(conn, template_id):
        template_id = ids.short_id(6)
    return template_id


def _check_room(conn: Connection, account_id: str) -> None:
    if store.count_templates(conn, account_id) >= MAX_TEMPLATES:
        raise errors.invalid(f"This account has reached the limit of {MAX_TEMPLATES:,} templates created "
                             "through the API.", pointer="/data")


def create_template(conn: Connection, account_id: str, now: datetime, *, name: Any, editor_type: Any,
                    html: Any = None, text: Any = None, amp: Any = None, definition: Any = None) -> Row[Any]:
    name = _check_name(name)
    if editor_type not in EDITOR_TYPES:
        raise errors.invalid(f"'editor_type' must be one of {', '.join(EDITOR_TYPES)}.",
                             pointer="/data/attributes/editor_type")
    text = _check_text(text, "text")
    amp = _check_text(amp, "amp")
    html = _check_text(html, "html")
    _check_room(conn, account_id)
    template_id = _new_template_id(conn)
    stored_definition = None
    if editor_type == "SYSTEM_DRAGGABLE":
        if html is not None:
            raise errors.invalid("'html' is not allowed for SYSTEM_DRAGGABLE templates; send a 'definition'.",
                                 pointer="/data/attributes/html")
        if amp is not None:
            raise errors.invalid("'amp' is not allowed for SYSTEM_DRAGGABLE templates.",
                                 pointer="/data/attributes/amp")
        if definition is None:
            raise errors.invalid("'definition' is required for SYSTEM_DRAGGABLE templates.",
                                 pointer="/data/attributes/definition")
        stored_definition, html = _definition(definition, template_id)
    else:
        if html is None:
            raise errors.invalid(f"'html' is required for {editor_type} templates.", pointer="/data/attributes/html")
        _check_source(html, "/data/attributes/html")
    _check_source(text, "/data/attributes/text")
    _check_source(amp, "/data/attributes/amp")
    store.insert_template(conn, {"id": template_id, "account_id": account_id, "name": name,
                                 "editor_type": editor_type, "html": html, "text": text, "amp": amp,
                                 "definition": stored_definition, "created": now, "updated": now})
    return get_template(conn, account_id, template_id)


def update_template(conn: Connection, account_id: str, template_id: str, now: datetime,
                    changes: Mapping[str, Any]) -> Row[Any]:
    row = store.get_template(conn, account_id, template_id, for_update=True)
    if row is None:
        raise errors.not_found(f"A template with id '{template_id}' does not exist.")
    values: dict[str, Any] = {}
    if changes.get("name") is not None:
        values["name"] = _check_name(changes["name"])
    draggable = row.editor_type == "SYSTEM_DRAGGABLE"
    for part in ("html", "amp"):
        if changes.get(part) is not None:
            if draggable:
                raise errors.invalid(f"'{part}' is not allowed for SYSTEM_DRAGGABLE templates.",
                                     pointer=f"/data/attributes/{part}")
            values[part] = _check_text(changes[part], part)
            _check_source(values[part], f"/data/attributes/{part}")
    if changes.get("text") is not None:
        values["text"] = _check_text(changes["text"], "text")
        _check_source(values["text"], "/data/attributes/text")
    if changes.get("definition") is not None:
        if not draggable:
            raise errors.invalid(f"'definition' is not allowed for {row.editor_type} templates.",
                                 pointer="/data/attributes/definition")
        values["definition"], values["html"] = _definition(changes["definition"], template_id)
    if values:
        values["updated"] = now
        store.update_template(conn, account_id, template_id, values)
    return get_template(conn, account_id, template_id)


def delete_template(conn: Connection, account_id: str, template_id: str) -> None:
    if not store.delete_template(conn, account_id, template_id):
        raise errors.not_found(f"A template with id '{template_id}' does not exist.")


def clone_template(conn: Connection, account_id: str, template_id: str, now: datetime, name: Any = None) -> Row[Any]:
    source = get_template(conn, account_id, template_id)
    new_name = _check_name(name) if name is not None else f"{source.name} (Clone)"[:MAX_NAME]
    _check_room(conn, account_id)
    clone_id = _new_template_id(conn)
    definition = None
    if source.definition is not None:
        definition = copy.deepcopy(source.definition)
        definition["template_id"] = clone_id
    store.insert_template(conn, {"id": clone_id, "account_id": account_id, "name": new_name,
                                 "editor_type": source.editor_type, "html": source.html, "text": source.text,
                                 "amp": source.amp, "definition": definition, "created": now, "updated": now})
    return get_template(conn, account_id, clone_id)


# --------------------------------------------------------------------------- rendering

def account_env(conn: Connection, account_id: str, now: datetime, *, links: Mapping[str, str] | None = None,
                coupon_code: Any = None) -> tuple[RenderEnv, dict[str, Any]]:
    """The render environment and the `organization` variables of an account."""
    account = account_store.get_account(conn, account_id)
    info = (account.contact_information if account is not None else {}) or {}
    try:
        zone: Any = ZoneInfo(account.timezone) if account is not None else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    address = info.get("street_address") or {}
    parts = [address.get(k) for k in ("address1", "address2", "city", "region", "zip", "country")]
    organization = {
        "name": info.get("organization_name") or (account.name if account is not None else ""),
        "url": info.get("website_url") or "",
        "full_address": ", ".join(p for p in parts if p),
        "email": info.get("default_sender_email") or "",
    }
    env = RenderEnv(now=now, timezone=zone, currency=account.preferred_currency if account is not None else "USD",
                    links=dict(links or {}), coupon_code=coupon_code)
    return env, organization


def _source_html(conn: Connection, account_id: str, row: Row[Any]) -> str:
    html = row.html
    if row.editor_type != "SYSTEM_DRAGGABLE" and "data-klaviyo-universal-block" in html:
        blocks = {b.id: b for b in store.get_universal_many(conn, account_id, hybrid.universal_block_ids(html))}

        def content_for(block_id: str) -> str | None:
            block = blocks.get(block_id)
            return universal_html(block.definition) if block is not None else None

        html = hybrid.expand_universal_blocks(html, content_for)
    return html


def _feeds(conn: Connection, account_id: str, *sources: str | None) -> dict[str, Any]:
    names = {m.group(1) for source in sources if source for m in _FEED_REF.finditer(source)}
    return feed_store.feed_contents(conn, account_id, names)


def render_row(conn: Connection, account_id: str, row: Row[Any], context: Mapping[str, Any], env: RenderEnv,
               organization: Mapping[str, Any], *, subject: str | None = None) -> RenderedMessage:
    html_source = _source_html(conn, account_id, row)
    full: dict[str, Any] = {"organization": organization}
    feeds = _feeds(conn, account_id, html_source, row.text, row.amp, subject)
    if feeds:
        full["feeds"] = feeds
    full.update(context)
    try:
        html = compile_template(html_source).render(full, env)
        text = compile_template(row.text).render(full, env) if row.text is not None else html_to_text(html)
        amp = compile_template(row.amp).render(full, env) if row.amp is not None else None
        rendered_subject = compile_template(subject).render(full, env) if subject is not None else None
    except TemplateError as exc:
        raise template_error(exc) from None
    return RenderedMessage(html=html, text=text, amp=amp, subject=rendered_subject)


def preview_links(base_url: str, template_id: str) -> dict[str, str]:
    """Links in a preview render; real sends get per-recipient links from the dispatcher."""
    base = base_url.rstrip("/")
    return {kind: f"{base}/menura/preview/{kind}?template={template_id}"
            for kind in ("unsubscribe", "manage_preferences", "web_view")}


def _preview_coupon(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "", name).upper()[:12] or "COUPON"
    return f"{slug}-PREVIEW"


def render_preview(conn: Connection, account_id: str, template_id: str, context: Mapping[str, Any],
                   now: datetime, base_url: str) -> tuple[Row[Any], RenderedMessage]:
    """`template-render`: the template rendered with a caller-given context."""
    row = get_template(conn, account_id, template_id)
    env, organization = account_env(conn, account_id, now, links=preview_links(base_url, template_id),
                                    coupon_code=_preview_coupon)
    return row, render_row(conn, account_id, row, context, env, organization)


def profile_context(profile: Mapping[str, Any], event: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Klaviyo's variables for one recipient: `first_name`, `email`, ..., `person` (standard fields
    plus custom properties, for `person|lookup:'...'`), `event` and anything in `extra`."""
    attributes = dict(profile.get("attributes") or profile)
    properties = attributes.pop("properties", None) or {}
    person: dict[str, Any] = {**attributes, **properties}
    if "id" in profile:
        person.setdefault("id", profile["id"])
    first, last = attributes.get("first_name") or "", attributes.get("last_name") or ""
    person.setdefault("full_name", f"{first} {last}".strip())
    context: dict[str, Any] = {
        "person": person,
        "profile": person,
        "first_name": first,
        "last_name": last,
        "full_name": person["full_name"],
        "email": attributes.get("email") or "",
        "phone_number": attributes.get("phone_number") or "",
    }
    if event is not None:
        props = event.get("properties") if isinstance(event.get("properties"), Mapping) else event
        context["event"] = dict(props or {})
    if extra:
        context.update(extra)
    return context


def render_for_profile(conn: Connection, account_id: str, template_id: str, profile: Mapping[str, Any],
                       event: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None, *,
                       now: datetime, subject: str | None = None, links: Mapping[str, str] | None = None,
                       coupon_code: Any = None, inline: bool = True) -> RenderedMessage:
    """One recipient's message: HTML (CSS inlined for email clients), text, AMP and subject."""
    row = get_template(conn, account_id, template_id)
    env, organization = account_env(conn, account_id, now, links=links, coupon_code=coupon_code)
    message = render_row(conn, account_id, row, profile_context(profile, event, extra), env, organization,
                         subject=subject)
    if inline:
        message = RenderedMessage(html=inline_css(message.html), text=message.text, amp=message.amp,
                                  subject=message.subject)
    return message


# --------------------------------------------------------------------------- universal content

def universal_html(definition: Mapping[str, Any] | None) -> str:
    if not definition or definition.get("content_type") != "block":
        return ""
    return dnd.render_block(definition)


def get_universal(conn: Connection, account_id: str, content_id: str) -> Row[Any]:
    row = store.get_universal(conn, account_id, content_id)
    if row is None:
        raise errors.not_found(f"A universal content with id '{content_id}' does not exist.")
    return row


def _universal_definition(value: Any) -> dict[str, Any]:
    try:
        definition = dnd.validate_block(copy.deepcopy(value), "", allowed=dnd.UNIVERSAL_WRITABLE)
    except dnd.DefinitionError as exc:
        raise errors.invalid(exc.detail, pointer="/data/attributes/definition" + exc.pointer) from None
    _check_source(universal_html(definition), "/data/attributes/definition")
    return definition


def create_universal(conn: Connection, account_id: str, now: datetime, *, name: Any, definition: Any) -> Row[Any]:
    name = _check_name(name)
    block = _universal_definition(definition)
    content_id = ids.ulid()
    store.insert_universal(conn, {"id": content_id, "account_id": account_id, "name": name, "definition": block,
                                  "content_type": block["content_type"], "block_type": block["type"],
                                  "created": now, "updated": now})
    return get_universal(conn, account_id, content_id)


def update_universal(conn: Connection, account_id: str, content_id: str, now: datetime,
                     changes: Mapping[str, Any]) -> Row[Any]:
    row = get_universal(conn, account_id, content_id)
    values: dict[str, Any] = {}
    if changes.get("name") is not None:
        values["name"] = _check_name(changes["name"])
    if changes.get("definition") is not None:
        if row.block_type not in dnd.UNIVERSAL_WRITABLE:
            raise errors.invalid(f"The definition of '{row.block_type}' universal content cannot be updated.",
                                 pointer="/data/attributes/definition")
        block = _universal_definition(changes["definition"])
        values.update(definition=block, content_type=block["content_type"], block_type=block["type"])
    if values:
        values["updated"] = now
        store.update_universal(conn, account_id, content_id, values)
    return get_universal(conn, account_id, content_id)


def delete_universal(conn: Connection, account_id: str, content_id: str) -> None:
    if not store.delete_universal(conn, account_id, content_id):
        raise errors.not_found(f"A universal content with id '{content_id}' does not exist.")
