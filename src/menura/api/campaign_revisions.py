"""Every per-revision difference of the Campaigns category, in one place.

Campaigns are stored once, in the shapes of the current revision (2025-04-15 through 2026-07-15).
Requests of other revisions are translated into those shapes on the way in and answers are
translated back on the way out:

* before 2024-10-15, tracking options were `is_add_utm` / `utm_params` ("campaign_tracking_params");
* before 2025-04-15, a message's channel, label, content and render options sat at the top of its
  attributes and send strategies wrapped their fields in `options_static` / `options_throttled` /
  `options_sto` ("campaign_message_definition");
* from 2026-10-15, a campaign has a `definition` (name, archived, ...), its audiences and messages
  are resources of their own, and a message's channel content lives in its variations
  ("campaign_audience_resources"). Menura keeps one audience and one message (with one variation)
  per campaign, so each has a stable id derived from the stored campaign.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Row

from menura.api import campaign_bodies as bodies
from menura.api.bodies import expect_id, expect_type
from menura.api.operation import Ctx
from menura.domain import campaigns as rules
from menura.jsonapi import errors
from menura.jsonapi.revisions import changed

LEGACY, CURRENT, OMNI = "legacy", "current", "omni"


def shape(revision: str) -> str:
    if changed(revision, "campaign_audience_resources"):
        return OMNI
    if changed(revision, "campaign_message_definition"):
        return CURRENT
    return LEGACY


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _expect(actual: str, expected: str, pointer: str = "/data/type") -> None:
    expect_type(actual, expected, pointer)


def _builtins(value: Any) -> Any:
    return None if value is None else msgspec.to_builtins(value)


# --------------------------------------------------------------------------- request bodies


def _tracking_in(value: bodies.TrackingOptions | None, revision: str) -> dict[str, Any] | None:
    if value is None:
        return None
    options = {k: v for k, v in msgspec.to_builtins(value).items()
               if k not in ("is_add_utm", "utm_params")}
    if not changed(revision, "campaign_tracking_params"):
        if value.is_add_utm is not None:
            options["add_tracking_params"] = value.is_add_utm
        if value.utm_params is not None:
            options["custom_tracking_params"] = [{"type": "static", "name": p.name, "value": p.value}
                                                 for p in value.utm_params]
    return options


def _legacy_strategy_in(value: bodies.LegacySendStrategy | None) -> dict[str, Any] | None:
    if value is None:
        return None
    method = value.method
    if method == "static" and value.options_static is not None:
        o = value.options_static
        options = ({"is_local": True, "send_past_recipients_immediately": o.send_past_recipients_immediately}
                   if o.is_local else {"is_local": False})
        return {"method": method, "datetime": o.datetime, "options": options}
    if method == "throttled" and value.options_throttled is not None:
        o2 = value.options_throttled
        return {"method": method, "datetime": o2.datetime, "throttle_percentage": o2.throttle_percentage}
    if method == "smart_send_time" and value.options_sto is not None:
        return {"method": method, "date": value.options_sto.date}
    return {"method": method}


def _strategy_in(value: bodies.SendStrategy | None) -> dict[str, Any] | None:
    return _builtins(value)


def _message_in(definition: bodies.Definition, image_id: str | None) -> rules.MessageInput:
    push = None
    if definition.channel == rules.PUSH:
        push = {"notification_type": definition.notification_type or "standard",
                "kv_pairs": definition.kv_pairs, "options": definition.options}
    return rules.MessageInput(
        channel=definition.channel, label=definition.label, content=bodies.content_dict(definition.content),
        render_options=_builtins(definition.render_options), push=push, image_id=image_id)


def campaign_input(ctx: Ctx) -> rules.CampaignInput:
    """The create_campaign body of the request's revision, as the domain's input."""
    era = shape(ctx.revision)
    if era == OMNI:
        return _omni_campaign_input(ctx)
    if era == LEGACY:
        legacy = ctx.body(bodies.LegacyNewCampaignBody).data
        _expect(legacy.type, "campaign")
        la = legacy.attributes
        messages = []
        for index, item in enumerate(la.campaign_messages.data):
            _expect(item.type, "campaign-message", f"/data/attributes/campaign-messages/data/{index}/type")
            a = item.attributes
            messages.append(rules.MessageInput(a.channel, a.label, bodies.content_dict(a.content),
                                               _builtins(a.render_options)))
        return rules.CampaignInput(la.name, la.audiences.included or [], la.audiences.excluded or [], messages,
                                   _legacy_strategy_in(la.send_strategy), _builtins(la.send_options),
                                   _tracking_in(la.tracking_options, ctx.revision))
    data = ctx.body(bodies.NewCampaignBody).data
    _expect(data.type, "campaign")
    attrs = data.attributes
    messages = []
    for index, message in enumerate(attrs.campaign_messages.data):
        _expect(message.type, "campaign-message", f"/data/attributes/campaign-messages/data/{index}/type")
        image = message.relationships.image if message.relationships else None
        image_id = image.data.id if image is not None and image.data is not None else None
        messages.append(_message_in(message.attributes.definition, image_id))
    return rules.CampaignInput(attrs.name, attrs.audiences.included or [], attrs.audiences.excluded or [],
                               messages, _strategy_in(attrs.send_strategy), _builtins(attrs.send_options),
                               _tracking_in(attrs.tracking_options, ctx.revision))


def _omni_campaign_input(ctx: Ctx) -> rules.CampaignInput:
    data = ctx.body(bodies.OmniNewCampaignBody).data
    _expect(data.type, "campaign")
    attrs = data.attributes
    definition = attrs.definition
    if definition.name is None:
        raise errors.invalid("'name' is a required field.", pointer="/data/attributes/definition/name")
    audiences = attrs.audiences or []
    messages = attrs.messages or []
    if len(audiences) != 1:
        raise errors.invalid("Menura campaigns have exactly one audience; give one in 'audiences'.",
                             pointer="/data/attributes/audiences")
    if len(messages) != 1:
        raise errors.invalid("Menura campaigns have exactly one message; give one in 'messages'.",
                             pointer="/data/attributes/messages")
    audience, message = audiences[0], messages[0]
    if message.audience_temporary_id != audience.temporary_id:
        raise errors.invalid(f"No audience has the temporary id '{message.audience_temporary_id}'.",
                             pointer="/data/attributes/messages/0/audience_temporary_id")
    variations = message.variations or []
    if len(variations) != 1:
        raise errors.invalid("A message needs exactly one variation, holding its channel content.",
                             pointer="/data/attributes/messages/0/variations")
    variation = variations[0].definition
    details = dict(variation.details or {})
    pointer = "/data/attributes/messages/0/variations/0/definition/details"
    try:
        content = msgspec.convert({k: v for k, v in details.items()
                                   if k not in ("channel", "label", "render_options")}, bodies.Content)
        render = msgspec.convert(details.get("render_options"), bodies.RenderOptions | None)
    except msgspec.ValidationError as exc:
        raise errors.invalid(f"Invalid variation details: {exc}", pointer=pointer) from None
    channel = details.get("channel")
    if not isinstance(channel, str):
        raise errors.invalid("The variation's details need a 'channel' (email, sms or mobile_push).",
                             pointer=f"{pointer}/channel")
    spec = rules.MessageInput(channel, details.get("label") or variation.name, bodies.content_dict(content),
                              _builtins(render),
                              {"notification_type": "standard"} if channel == rules.PUSH else None,
                              details={"name": message.name, "variation_name": variation.name,
                                       "throttling_type": message.throttling_type})
    tracking = {"add_tracking_params": message.is_add_utm} if message.is_add_utm is not None else None
    send_options = None
    if message.throttling_type is not None:
        if message.throttling_type not in _SMART_SENDING_IN:
            raise errors.invalid(f"'{message.throttling_type}' is not a throttling type.",
                                 pointer="/data/attributes/messages/0/throttling_type")
        send_options = {"use_smart_sending": _SMART_SENDING_IN[message.throttling_type]}
    extra = {k: v for k, v in msgspec.to_builtins(definition).items() if k != "name"}
    extra["audience"] = {"name": audience.name}
    return rules.CampaignInput(definition.name, audience.included or [], audience.excluded or [], [spec],
                               None, send_options, tracking, extra)


def campaign_change(ctx: Ctx) -> rules.CampaignChange:
    era = shape(ctx.revision)
    if era == OMNI:
        omni = ctx.body(bodies.OmniCampaignChangeBody).data
        _check_target(ctx, omni.type, omni.id, "campaign")
        d = omni.attributes.definition
        extra = {k: v for k, v in msgspec.to_builtins(d).items() if k not in ("name", "archived")}
        return rules.CampaignChange(name=d.name, archived=d.archived, details=extra or None)
    if era == LEGACY:
        legacy = ctx.body(bodies.LegacyCampaignChangeBody).data
        _check_target(ctx, legacy.type, legacy.id, "campaign")
        la = legacy.attributes
        return rules.CampaignChange(
            name=la.name, included=la.audiences.included if la.audiences else None,
            excluded=la.audiences.excluded if la.audiences else None,
            send_strategy=_legacy_strategy_in(la.send_strategy), send_options=_builtins(la.send_options),
            tracking_options=_tracking_in(la.tracking_options, ctx.revision))
    data = ctx.body(bodies.CampaignChangeBody).data
    _check_target(ctx, data.type, data.id, "campaign")
    a = data.attributes
    return rules.CampaignChange(
        name=a.name, included=a.audiences.included if a.audiences else None,
        excluded=a.audiences.excluded if a.audiences else None, send_strategy=_strategy_in(a.send_strategy),
        send_options=_builtins(a.send_options), tracking_options=_tracking_in(a.tracking_options, ctx.revision))


def message_change(ctx: Ctx, stored_channel: str) -> tuple[rules.MessageInput | None, str | None]:
    """(content change, image id) of an update_campaign_message body."""
    era = shape(ctx.revision)
    if era == OMNI:
        omni = ctx.body(bodies.OmniMessageChangeBody).data
        _check_target(ctx, omni.type, omni.id, "campaign-message")
        d = omni.attributes.definition if omni.attributes else None
        if d is None:
            return None, None
        details = {"name": d.name} if d.name is not None else None
        return rules.MessageInput(stored_channel, details=details), None
    if era == LEGACY:
        legacy = ctx.body(bodies.LegacyMessageChangeBody).data
        _check_target(ctx, legacy.type, legacy.id, "campaign-message")
        la = legacy.attributes
        return rules.MessageInput(stored_channel, la.label, bodies.content_dict(la.content),
                                  _builtins(la.render_options)), None
    data = ctx.body(bodies.MessageChangeBody).data
    _check_target(ctx, data.type, data.id, "campaign-message")
    image = data.relationships.image if data.relationships else None
    image_id = image.data.id if image is not None and image.data is not None else None
    definition = data.attributes.definition if data.attributes else None
    if definition is None:
        return None, image_id
    return _message_in(definition, None), image_id


def clone_name(data: bodies.Clone) -> str | None:
    if data.attributes is None:
        return None
    return data.attributes.new_name if data.attributes.new_name is not None else data.attributes.name


def _check_target(ctx: Ctx, rtype: str, rid: str, expected: str) -> None:
    expect_type(rtype, expected)
    expect_id(rid, ctx.path_params["id"])


# --------------------------------------------------------------------------- answers: campaigns


def campaign_relationships(revision: str) -> tuple[str, ...]:
    if shape(revision) == OMNI:
        return ("campaign-audiences", "campaign-messages", "tags")
    return ("campaign-messages", "tags")


def _tracking_out(row: Row[Any], revision: str) -> dict[str, Any] | None:
    options = row.tracking_options
    if options is None:
        return None
    out = dict(options)
    if out.get("custom_tracking_params") is None:
        out["custom_tracking_params"] = []
    if not changed(revision, "campaign_tracking_params"):
        params = out.pop("custom_tracking_params") or []
        legacy = {"is_add_utm": out.pop("add_tracking_params", False),
                  "utm_params": [{"name": p["name"], "value": p["value"]} for p in params]}
        legacy.update(out)
        return legacy
    return out


def _legacy_strategy_out(strategy: dict[str, Any]) -> dict[str, Any]:
    method = strategy["method"]
    out: dict[str, Any] = {"method": method, "options_static": None, "options_throttled": None, "options_sto": None}
    if method == "static":
        options = strategy.get("options") or {}
        out["options_static"] = {"datetime": strategy["datetime"], "is_local": bool(options.get("is_local")),
                                 "send_past_recipients_immediately":
                                     bool(options.get("send_past_recipients_immediately"))}
    elif method == "throttled":
        out["options_throttled"] = {"datetime": strategy["datetime"],
                                    "throttle_percentage": strategy["throttle_percentage"]}
    elif method == "smart_send_time":
        out["options_sto"] = {"date": strategy["date"]}
    return out


def campaign_attributes(row: Row[Any], revision: str) -> dict[str, Any]:
    if shape(revision) == OMNI:
        return _omni_campaign_attributes(row)
    strategy = dict(row.send_strategy)
    attributes: dict[str, Any] = {
        "name": row.name,
        "status": row.status,
        "archived": bool(row.archived),
        "audiences": {"included": list(row.included), "excluded": list(row.excluded)},
        "send_options": dict(row.send_options),
        "tracking_options": _tracking_out(row, revision),
        "send_strategy": _legacy_strategy_out(strategy) if shape(revision) == LEGACY else strategy,
        "created_at": _iso(row.created),
        "scheduled_at": _iso(row.scheduled_at),
        "updated_at": _iso(row.updated),
        "send_time": _iso(row.send_time),
    }
    return attributes


def _omni_campaign_attributes(row: Row[Any]) -> dict[str, Any]:
    details = dict(row.details or {})
    settings = dict(details.get("send_settings") or {})
    settings.setdefault("send_strategy", row.send_strategy["method"])
    definition = {"name": row.name, "builder": details.get("builder"), "archived": bool(row.archived),
                  "color": details.get("color"), "description": details.get("description"),
                  "send_settings": settings}
    return {"created_at": _iso(row.created), "updated_at": _iso(row.updated), "definition": definition}


def audience_id(campaign: Row[Any]) -> str:
    """The one audience of a campaign at 2026-10-15: a stable id derived from the campaign's."""
    return f"{campaign.id}A"


def audience_attributes(campaign: Row[Any]) -> dict[str, Any]:
    name = (campaign.details or {}).get("audience", {}).get("name") or campaign.name
    return {"created": _iso(campaign.created), "updated": _iso(campaign.updated),
            "definition": {"name": name, "included": list(campaign.included), "excluded": list(campaign.excluded),
                           "priority": 0}}


# --------------------------------------------------------------------------- answers: messages


def message_relationships(revision: str) -> tuple[str, ...]:
    if shape(revision) == OMNI:
        return ("campaign", "campaign-audience", "campaign-variations")
    return ("campaign", "template", "image")


def send_times(message: Row[Any], campaign: Row[Any]) -> list[dict[str, Any]]:
    strategy = campaign.send_strategy
    method = strategy["method"]
    if method in ("static", "throttled"):
        local = bool((strategy.get("options") or {}).get("is_local"))
        return [{"datetime": strategy["datetime"], "is_local": local}]
    if campaign.send_time is not None:
        return [{"datetime": _iso(campaign.send_time), "is_local": False}]
    return []


def _content_out(message: Row[Any]) -> dict[str, Any]:
    content = dict(message.content or {})
    fields = {rules.EMAIL: rules.EMAIL_CONTENT_FIELDS, rules.SMS: rules.SMS_CONTENT_FIELDS,
              rules.PUSH: rules.PUSH_CONTENT_FIELDS}[message.channel]
    return {name: content.get(name) for name in fields}


def definition_out(message: Row[Any]) -> dict[str, Any]:
    channel = message.channel
    if channel == rules.EMAIL:
        return {"channel": channel, "label": message.label, "content": _content_out(message)}
    if channel == rules.SMS:
        return {"channel": channel, "content": _content_out(message),
                "render_options": dict(message.render_options or rules.RENDER_OPTION_DEFAULTS)}
    push = dict(message.push or {})
    notification = push.get("notification_type") or "standard"
    if notification == "silent":
        return {"channel": channel, "notification_type": "silent", "kv_pairs": push.get("kv_pairs")}
    return {"channel": channel, "notification_type": "standard", "content": _content_out(message),
            "kv_pairs": push.get("kv_pairs"), "options": push.get("options") or {}}


def legacy_message_attributes(message: Row[Any], campaign: Row[Any]) -> dict[str, Any]:
    """The pre-2025-04-15 message shape (also what assign_template answers at every revision)."""
    content = _content_out(message) if message.channel != rules.PUSH else {}
    attributes: dict[str, Any] = {
        "label": message.label or "", "channel": message.channel, "content": content,
        "send_times": send_times(message, campaign),
    }
    if message.channel == rules.SMS:
        attributes["render_options"] = dict(message.render_options or rules.RENDER_OPTION_DEFAULTS)
    attributes["created_at"] = _iso(message.created)
    attributes["updated_at"] = _iso(message.updated)
    return attributes


def message_attributes(message: Row[Any], campaign: Row[Any], revision: str) -> dict[str, Any]:
    era = shape(revision)
    if era == LEGACY:
        return legacy_message_attributes(message, campaign)
    if era == OMNI:
        return _omni_message_attributes(message, campaign)
    return {"definition": definition_out(message), "send_times": send_times(message, campaign),
            "created_at": _iso(message.created), "updated_at": _iso(message.updated)}


# 2026-10-15 names: a message's status, its send strategy, and smart sending ("throttling type").
_OMNI_STATUS = {rules.DRAFT: "draft", rules.SCHEDULED: "scheduled", rules.SENDING: "sending", rules.SENT: "sent"}
_SMART_SENDING_IN = {"NONE": False, "FOR_CAMPAIGNS": True, "FOR_CAMPAIGNS_AND_FLOWS": True, "FOR_FLOWS": True}


def _omni_strategy(strategy: dict[str, Any]) -> str:
    method = strategy["method"]
    if method == "static" and (strategy.get("options") or {}).get("is_local"):
        return "local_timezone"
    return {"throttled": "throttled", "smart_send_time": "send_time_optimization"}.get(method, "static")


def _omni_message_attributes(message: Row[Any], campaign: Row[Any]) -> dict[str, Any]:
    details = dict(message.details or {})
    tracking = campaign.tracking_options or {}
    status = _OMNI_STATUS.get(campaign.status, "cancelled" if campaign.status.startswith("Cancelled") else "sending")
    strategy = campaign.send_strategy
    send_options: dict[str, Any] = {
        "send_time": _iso(campaign.send_time), "send_strategy": _omni_strategy(strategy),
        "throttling_type": "throttle-for-campaigns-and-flows" if (campaign.send_options or {}).get(
            "use_smart_sending", True) else "none"}
    if strategy["method"] == "throttled":
        send_options.update(recipient_percentage=strategy["throttle_percentage"], throttle_unit="hour")
    definition = {
        "name": details.get("name") or message.label or campaign.name,
        "status": status,
        "tracking_options": {"is_add_utm": bool(tracking.get("add_tracking_params")),
                             "is_tracking_clicks": tracking.get("is_tracking_clicks"),
                             "is_tracking_opens": tracking.get("is_tracking_opens")},
        "send_options": send_options,
    }
    return {"created": _iso(message.created), "updated": _iso(message.updated), "definition": definition}


def variation_id(message: Row[Any]) -> str:
    return f"{message.id}V"
