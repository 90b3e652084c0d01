"""Request bodies of the Campaigns category, one set of types per revision shape, decoded with
msgspec so a wrong type or a missing field answers 400 with a pointer at the culprit.

Shapes: "legacy" (before 2025-04-15: message channel/label/content at the top of the attributes,
`options_static`/`options_throttled`/`options_sto` send strategies), "current" (2025-04-15 on:
message `definition`, flat send strategies) and "omni" (2026-10-15 on: campaign `definition`,
inline audiences and messages with variations). `menura.api.campaign_revisions` picks the set.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType, field


class Strict(Struct, forbid_unknown_fields=True):
    pass


class Identifier(Strict):
    type: str
    id: str


class Linkage(Strict):
    data: Identifier | None = None


class TrackingParam(Strict):
    type: str
    value: str
    name: str


class LegacyUtmParam(Strict):
    name: str
    value: str


class TrackingOptions(Strict):
    add_tracking_params: bool | None = None
    custom_tracking_params: list[TrackingParam] | None = None
    is_tracking_clicks: bool | None = None
    is_tracking_opens: bool | None = None
    # Before 2024-10-15 the same options were named is_add_utm / utm_params.
    is_add_utm: bool | None = None
    utm_params: list[LegacyUtmParam] | None = None


class SendOptions(Strict):
    use_smart_sending: bool | None = None
    ignore_unsubscribes: bool | None = None  # accepted by old revisions, never honoured for marketing


class StaticOptions(Strict):
    is_local: bool
    send_past_recipients_immediately: bool | None = None


# A flat union of the strategy shapes: `method` says which fields apply (checked by the domain).
class SendStrategy(Strict):
    method: str
    datetime: str | None = None
    options: StaticOptions | None = None
    throttle_percentage: int | None = None
    date: str | None = None


class LegacyStaticOptions(Strict):
    datetime: str
    is_local: bool | None = None
    send_past_recipients_immediately: bool | None = None


class LegacyThrottledOptions(Strict):
    datetime: str
    throttle_percentage: int


class LegacyStoOptions(Strict):
    date: str


class LegacySendStrategy(Strict):
    method: str
    options_static: LegacyStaticOptions | None = None
    options_throttled: LegacyThrottledOptions | None = None
    options_sto: LegacyStoOptions | None = None


class Audiences(Strict):
    included: list[str] | None = None
    excluded: list[str] | None = None


class PushButton(Strict):
    label: str
    action_type: str
    position: int | None = None
    url: str | None = None


class Content(Strict):
    """Every channel's content fields; the domain keeps the message's channel's own."""

    subject: str | UnsetType | None = UNSET
    preview_text: str | UnsetType | None = UNSET
    from_email: str | UnsetType | None = UNSET
    from_label: str | UnsetType | None = UNSET
    reply_to_email: str | UnsetType | None = UNSET
    cc_email: str | UnsetType | None = UNSET
    bcc_email: str | UnsetType | None = UNSET
    body: str | UnsetType | None = UNSET
    media_url: str | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET
    dynamic_image: str | UnsetType | None = UNSET
    action_buttons: list[PushButton] | UnsetType | None = UNSET


class RenderOptions(Strict):
    shorten_links: bool | None = None
    add_org_prefix: bool | None = None
    add_info_link: bool | None = None
    add_opt_out_language: bool | None = None


class Definition(Strict):
    channel: str
    label: str | None = None
    content: Content | None = None
    render_options: RenderOptions | None = None
    kv_pairs: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    notification_type: str | None = None


class ImageRelationship(Strict):
    image: Linkage | None = None


class MessageAttributes(Strict):
    definition: Definition


class NewMessage(Strict):
    type: str
    attributes: MessageAttributes
    relationships: ImageRelationship | None = None


class NewMessages(Strict):
    data: list[NewMessage]


class NewCampaignAttributes(Strict):
    name: str
    audiences: Audiences
    campaign_messages: NewMessages = field(name="campaign-messages")
    send_strategy: SendStrategy | None = None
    send_options: SendOptions | None = None
    tracking_options: TrackingOptions | None = None


class NewCampaign(Strict):
    type: str
    attributes: NewCampaignAttributes


class NewCampaignBody(Strict):
    data: NewCampaign


class CampaignChangeAttributes(Strict):
    name: str | None = None
    audiences: Audiences | None = None
    send_strategy: SendStrategy | None = None
    send_options: SendOptions | None = None
    tracking_options: TrackingOptions | None = None


class CampaignChange(Strict):
    type: str
    id: str
    attributes: CampaignChangeAttributes


class CampaignChangeBody(Strict):
    data: CampaignChange


class MessageChangeAttributes(Strict):
    definition: Definition | None = None


class MessageChange(Strict):
    type: str
    id: str
    attributes: MessageChangeAttributes | None = None
    relationships: ImageRelationship | None = None


class MessageChangeBody(Strict):
    data: MessageChange


# --------------------------------------------------------------------------- legacy (< 2025-04-15)


class LegacyMessageAttributes(Strict):
    channel: str
    label: str | None = None
    content: Content | None = None
    render_options: RenderOptions | None = None


class LegacyNewMessage(Strict):
    type: str
    attributes: LegacyMessageAttributes


class LegacyNewMessages(Strict):
    data: list[LegacyNewMessage]


class LegacyNewCampaignAttributes(Strict):
    name: str
    audiences: Audiences
    campaign_messages: LegacyNewMessages = field(name="campaign-messages")
    send_strategy: LegacySendStrategy | None = None
    send_options: SendOptions | None = None
    tracking_options: TrackingOptions | None = None


class LegacyNewCampaign(Strict):
    type: str
    attributes: LegacyNewCampaignAttributes


class LegacyNewCampaignBody(Strict):
    data: LegacyNewCampaign


class LegacyCampaignChangeAttributes(Strict):
    name: str | None = None
    audiences: Audiences | None = None
    send_strategy: LegacySendStrategy | None = None
    send_options: SendOptions | None = None
    tracking_options: TrackingOptions | None = None


class LegacyCampaignChange(Strict):
    type: str
    id: str
    attributes: LegacyCampaignChangeAttributes


class LegacyCampaignChangeBody(Strict):
    data: LegacyCampaignChange


class LegacyMessageChangeAttributes(Strict):
    label: str | None = None
    content: Content | None = None
    render_options: RenderOptions | None = None


class LegacyMessageChange(Strict):
    type: str
    id: str
    attributes: LegacyMessageChangeAttributes


class LegacyMessageChangeBody(Strict):
    data: LegacyMessageChange


# --------------------------------------------------------------------------- omni (2026-10-15 on)


class SendSettings(Strict):
    send_timezone: str | None = None
    send_strategy: str | None = None
    send_passed_rltz_immediately: bool | None = None
    exit_condition_enabled: bool | None = None
    exit_condition_conversion_metric_id: str | None = None


class OmniDefinition(Strict):
    name: str | None = None
    builder: str | None = None
    archived: bool | None = None
    color: str | None = None
    description: str | None = None
    send_settings: SendSettings | None = None


class VariationDefinition(Strict):
    name: str | None = None
    details: dict[str, Any] | None = None


class VariationInline(Strict):
    definition: VariationDefinition


class MessageInline(Strict):
    audience_temporary_id: str
    name: str | None = None
    is_add_utm: bool | None = None
    throttling_type: str | None = None
    variations: list[VariationInline] | None = None


class AudienceInline(Strict):
    temporary_id: str
    name: str | None = None
    included: list[str] | None = None
    excluded: list[str] | None = None


class OmniNewCampaignAttributes(Strict):
    definition: OmniDefinition
    messages: list[MessageInline] | None = None
    audiences: list[AudienceInline] | None = None


class IdentifierList(Strict):
    data: list[Identifier] | None = None


class OmniRelationships(Strict):
    campaign_audiences: IdentifierList | None = field(default=None, name="campaign-audiences")
    campaign_messages: IdentifierList | None = field(default=None, name="campaign-messages")
    tags: IdentifierList | None = None


class OmniNewCampaign(Strict):
    type: str
    attributes: OmniNewCampaignAttributes
    relationships: OmniRelationships | None = None


class OmniNewCampaignBody(Strict):
    data: OmniNewCampaign


class OmniCampaignChangeAttributes(Strict):
    definition: OmniDefinition


class OmniCampaignChange(Strict):
    type: str
    id: str
    attributes: OmniCampaignChangeAttributes


class OmniCampaignChangeBody(Strict):
    data: OmniCampaignChange


class OmniMessageTracking(Strict):
    is_add_utm: bool | None = None
    is_tracking_clicks: bool | None = None
    is_tracking_opens: bool | None = None


class OmniMessageDefinition(Strict):
    name: str | None = None
    status: str | None = None
    tracking_options: OmniMessageTracking | None = None
    send_options: dict[str, Any] | None = None
    ab_test: dict[str, Any] | None = None


class OmniMessageChangeAttributes(Strict):
    definition: OmniMessageDefinition | None = None


class OmniMessageChange(Strict):
    type: str
    id: str
    attributes: OmniMessageChangeAttributes | None = None


class OmniMessageChangeBody(Strict):
    data: OmniMessageChange


# --------------------------------------------------------------------------- every revision


class CloneAttributes(Strict):
    new_name: str | None = None
    name: str | None = None  # 2026-10-15 renamed new_name


class Clone(Strict):
    type: str
    id: str
    attributes: CloneAttributes | None = None


class CloneBody(Strict):
    data: Clone


class TemplateRelationship(Strict):
    template: Linkage


class AssignTemplate(Strict):
    type: str
    id: str
    relationships: TemplateRelationship


class AssignTemplateBody(Strict):
    data: AssignTemplate


class JobRef(Strict):
    type: str
    id: str


class JobRefBody(Strict):
    data: JobRef


class JobActionAttributes(Strict):
    action: str


class JobAction(Strict):
    type: str
    id: str
    attributes: JobActionAttributes


class JobActionBody(Strict):
    data: JobAction


class ImageBody(Strict):
    data: Identifier


def content_dict(content: Content | None) -> dict[str, Any]:
    """The content fields that were given (explicit nulls included)."""
    if content is None:
        return {}
    out: dict[str, Any] = {}
    for name in content.__struct_fields__:
        value = getattr(content, name)
        if value is UNSET:
            continue
        if name == "action_buttons" and value is not None:
            value = [msgspec.to_builtins(button) for button in value]
        out[name] = value
    return out
