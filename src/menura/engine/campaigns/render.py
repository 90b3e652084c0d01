"""One recipient's campaign message, rendered once with their profile: the email (subject, preview
text, HTML and text from the message's own template) or the SMS body (with the render options)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import OutgoingEmail, OutgoingSms, TrackingOptions, UtmContext
from menura.domain import templates as template_rules
from menura.templating import RenderEnv, compile_template

OPT_OUT_LANGUAGE = "Reply STOP to opt out."


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


def email_for(conn: Connection, account_id: str, campaign: Row[Any], message: Row[Any], template: Row[Any],
              profile: Row[Any], setup: RenderSetup, links: Mapping[str, str]) -> OutgoingEmail:
    content = message.content or {}
    env = dataclasses.replace(setup.env, links=dict(links))
    context = template_rules.profile_context(profile_dict(profile))
    rendered = template_rules.render_row(conn, account_id, template, context, env, setup.organization,
                                         subject=content.get("subject") or "")
    preview = _render_text(content.get("preview_text"), {"organization": setup.organization, **context}, env)
    from_email = content.get("from_email") or setup.organization.get("email") or ""
    from_label = content.get("from_label") or setup.organization.get("name") or ""
    name = " ".join(part for part in (profile.first_name, profile.last_name) if part)
    return OutgoingEmail(subject=rendered.subject or "", from_email=from_email, html=rendered.html,
                         from_label=from_label, text=rendered.text, preview_text=preview,
                         reply_to=content.get("reply_to_email") or None, to_name=name,
                         tracking=_tracking(campaign), utm=_utm(campaign, "email", setup, profile, rendered.subject))


def sms_for(conn: Connection, account_id: str, campaign: Row[Any], message: Row[Any], template: Row[Any] | None,
            profile: Row[Any], setup: RenderSetup) -> OutgoingSms:
    content = message.content or {}
    options = message.render_options or {}
    context = {"organization": setup.organization, **template_rules.profile_context(profile_dict(profile))}
    source = content.get("body") or (template.text if template is not None else None) or ""
    body = _render_text(source, context, setup.env).strip()
    if options.get("add_org_prefix", True) and setup.organization.get("name"):
        body = f"{setup.organization['name']}: {body}"
    if options.get("add_opt_out_language", False):
        body = f"{body}\n{OPT_OUT_LANGUAGE}"
    media = [content["media_url"]] if content.get("media_url") else []
    return OutgoingSms(body=body, media_urls=media, tracking=_tracking(campaign),
                       utm=_utm(campaign, "sms", setup, profile, None))
