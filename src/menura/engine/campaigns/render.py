"""One recipient's campaign message, rendered once with their profile: the email (subject, preview
text, HTML and text from the message's own template) or the SMS body (with the render options)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import OutgoingEmail, OutgoingSms, TrackingOptions, UtmContext
from menura.delivery.sms_links import needs_info_link
from menura.domain import templates as template_rules
from menura.domain.campaigns import RENDER_OPTION_DEFAULTS
from menura.store import templates as template_store
from menura.store import web_feeds as feed_store
from menura.templating import CompiledTemplate, RenderEnv, compile_template, hybrid
from menura.templating.engine import freeze_context

OPT_OUT_LANGUAGE = "Reply STOP to opt out."
INFO_LINK_LABEL = "Info:"
_FEED_REF = re.compile(r"\bfeeds\.([A-Za-z][A-Za-z0-9_]*)")


@dataclass
class RenderSetup:
    """What every recipient of a send shares: the account's environment and sender defaults."""

    env: RenderEnv
    organization: Mapping[str, Any]
    send_time: datetime

    @classmethod
    def load(cls, conn: Connection, account_id: str, now: datetime) -> RenderSetup:
        env, organization = template_rules.account_env(conn, account_id, now)
        return cls(env, organization, now)


def profile_dict(row: Row[Any]) -> dict[str, Any]:
    """The profile as templates see it (`first_name`, `person|lookup:'x'`, ...)."""
    return {"id": row.id, "email": row.email, "phone_number": row.phone_number, "external_id": row.external_id,
            "first_name": row.first_name, "last_name": row.last_name, "organization": row.organization,
            "title": row.title, "locale": row.locale, "image": row.image, "location": row.location or {},
            "properties": dict(row.properties or {})}


def _render_text(source: str | None, context: Mapping[str, Any], env: RenderEnv) -> str:
    if not source:
        return ""
    return compile_template(source).render(context, env)


def _tracking(campaign: Row[Any]) -> TrackingOptions:
    options = campaign.tracking_options or {}
    return TrackingOptions(is_tracking_opens=options.get("is_tracking_opens"),
                           is_tracking_clicks=options.get("is_tracking_clicks"),
                           add_tracking_params=options.get("add_tracking_params"),
                           custom_tracking_params=options.get("custom_tracking_params") or None)


def _utm(campaign: Row[Any], channel: str, setup: RenderSetup, profile: Row[Any], subject: str | None) -> UtmContext:
    return UtmContext(kind="campaign", message_type=channel, campaign_id=campaign.id, campaign_name=campaign.name,
                      send_time=setup.send_time, subject=subject, profile_id=profile.id,
                      profile_external_id=profile.external_id)


@dataclass(frozen=True)
class PreparedEmail:
    """A message's template, subject and preview text compiled once per batch, with its universal
    content blocks expanded and the web feeds it reads loaded once (the same render as
    `domain.templates.render_row`, without redoing per recipient what every recipient shares)."""

    html: CompiledTemplate
    text: CompiledTemplate | None
    subject: CompiledTemplate
    preview: CompiledTemplate | None
    feeds: Mapping[str, Any]

    @classmethod
    def load(cls, conn: Connection, account_id: str, template: Row[Any], content: Mapping[str, Any]) -> PreparedEmail:
        html = template.html
        if template.editor_type != "SYSTEM_DRAGGABLE" and "data-klaviyo-universal-block" in html:
            blocks = {b.id: b for b in template_store.get_universal_many(conn, account_id,
                                                                         hybrid.universal_block_ids(html))}

            def content_for(block_id: str) -> str | None:
                block = blocks.get(block_id)
                return template_rules.universal_html(block.definition) if block is not None else None

            html = hybrid.expand_universal_blocks(html, content_for)
        subject, preview = content.get("subject") or "", content.get("preview_text") or ""
        names = {m.group(1) for source in (html, template.text, subject, preview) if source
                 for m in _FEED_REF.finditer(source)}
        return cls(compile_template(html), compile_template(template.text) if template.text else None,
                   compile_template(subject), compile_template(preview) if preview else None,
                   feed_store.feed_contents(conn, account_id, names))


def _render(template: CompiledTemplate, context: Mapping[str, Any], env: RenderEnv) -> str:
    # Text without "{" holds no tag, variable or comment: it renders as itself (a subject or preview
    # text often does), without a render per recipient.
    return template.source if "{" not in template.source else template.render(context, env)


def email_for(prepared: PreparedEmail, campaign: Row[Any], message: Row[Any], profile: Row[Any],
              setup: RenderSetup, links: Mapping[str, str]) -> OutgoingEmail:
    """Raises TemplateError when the message cannot be rendered for this profile."""
    content = message.content or {}
    env = dataclasses.replace(setup.env, links=dict(links))
    context: dict[str, Any] = {"organization": setup.organization}
    if prepared.feeds:
        context["feeds"] = prepared.feeds
    context.update(template_rules.profile_context(profile_dict(profile)))
    # Frozen once for the message's renders (HTML, subject, text, preview), which would each freeze it.
    context = freeze_context(context)
    html = prepared.html.render(context, env)
    subject = _render(prepared.subject, context, env)
    # No text template: delivery writes the text part from the final (tracked) HTML.
    text = prepared.text.render(context, env) if prepared.text is not None else None
    preview = _render(prepared.preview, context, env) if prepared.preview is not None else ""
    from_email = content.get("from_email") or setup.organization.get("email") or ""
    from_label = content.get("from_label") or setup.organization.get("name") or ""
    name = " ".join(part for part in (profile.first_name, profile.last_name) if part)
    cc, bcc = content.get("cc_email"), content.get("bcc_email")
    return OutgoingEmail(subject=subject, from_email=from_email, html=html, from_label=from_label, text=text,
                         preview_text=preview, reply_to=content.get("reply_to_email") or None, to_name=name,
                         cc=(cc,) if cc else (), bcc=(bcc,) if bcc else (),
                         tracking=_tracking(campaign), utm=_utm(campaign, "email", setup, profile, subject))


def sms_for(conn: Connection, account_id: str, campaign: Row[Any], message: Row[Any], template: Row[Any] | None,
            profile: Row[Any], setup: RenderSetup, info_link: str | None = None) -> OutgoingSms:
    """The SMS with Klaviyo's render options: the organization prefix before the body, opt-out language
    after it, the company info link last for recipients in a country that requires it, and links as
    short tracked links (or as written, untracked, when `shorten_links` is off)."""
    content = message.content or {}
    options = {**RENDER_OPTION_DEFAULTS, **{k: v for k, v in (message.render_options or {}).items() if v is not None}}
    context = {"organization": setup.organization, **template_rules.profile_context(profile_dict(profile))}
    source = content.get("body") or (template.text if template is not None else None) or ""
    body = _render_text(source, context, setup.env).strip()
    if options["add_org_prefix"] and setup.organization.get("name"):
        body = f"{setup.organization['name']}: {body}"
    if options["add_opt_out_language"]:
        body = f"{body}\n{OPT_OUT_LANGUAGE}"
    if options["add_info_link"] and info_link and needs_info_link(profile.phone_number):
        body = f"{body}\n{INFO_LINK_LABEL} {info_link}"
    media = [content["media_url"]] if content.get("media_url") else []
    return OutgoingSms(body=body, media_urls=media, tracking=_tracking(campaign),
                       utm=_utm(campaign, "sms", setup, profile, None), shorten_links=bool(options["shorten_links"]))
