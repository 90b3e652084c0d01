"""Campaign rules: statuses, audiences, send strategies, send and tracking options, messages and
their content, templates and images, clone and delete.

Inputs arrive already translated from the request's revision into the current revision's shapes
(`menura.api.campaign_revisions`), so every rule here is written once. Documented Klaviyo facts
used: a campaign is created as a Draft with its message(s); only drafts change; assigning a template
"creates a non-reusable version of the template"; send strategies immediate / static (optionally in
each recipient's local time) / throttled (percentage of recipients per hour) / smart send time;
smart sending defaults to on; tracking options left unset take the account's tracking settings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura import ids
from menura.domain import tags as tag_rules
from menura.domain import templates as template_rules
from menura.domain import tracking_settings
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.store import campaigns as store
from menura.store import images as image_store
from menura.store import work
from menura.store.db import Database

# Statuses (Klaviyo's display strings).
DRAFT = "Draft"
SCHEDULED = "Scheduled"
SENDING = "Sending"
SENT = "Sent"
CANCELLED = "Cancelled"
CANCELLED_NO_RECIPIENTS = "Cancelled: No Recipients"
CANCELLED_MISCONFIGURED = "Cancelled: Misconfigured"
STATUSES = ("Scheduled", "Sent", "Draft", "Cancelled", "Adding Recipients", "Sending", "Variations Sent",
            "Sending Segments", "Cancelled: Smart Sending", "Preparing to send", "Cancelled: Account Disabled",
            "Cancelled: No Recipients", "Preparing to schedule", "Cancelled: Internal Error",
            "Queued without Recipients", "Cancelled: Billing Limit", "Cancelled: Misconfigured", "Unknown")

EMAIL, SMS, PUSH = "email", "sms", "mobile_push"
CHANNELS = (EMAIL, SMS, PUSH)
STRATEGIES = ("immediate", "static", "throttled", "smart_send_time")
THROTTLE_PERCENTAGES = (1, 2, 5, 10, 11, 13, 14, 17, 20, 25, 33, 50)
DYNAMIC_PARAM_VALUES = ("campaign_id", "campaign_name", "campaign_name_id", "campaign_name_send_day",
                        "email_subject", "group_id", "group_name", "group_name_id", "link_alt_text",
                        "message_type", "profile_external_id", "profile_id")
EMAIL_CONTENT_FIELDS = ("subject", "preview_text", "from_email", "from_label", "reply_to_email", "cc_email",
                        "bcc_email")
SMS_CONTENT_FIELDS = ("body", "media_url")
PUSH_CONTENT_FIELDS = ("title", "body", "dynamic_image", "action_buttons")
RENDER_OPTION_DEFAULTS = {"shorten_links": True, "add_org_prefix": True, "add_info_link": True,
                          "add_opt_out_language": False}
MAX_NAME = 255
ESTIMATE_KIND = "campaign.estimate"
MAX_AUDIENCES = 100
MAX_PUSH_BUTTONS = 3
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# --------------------------------------------------------------------------- inputs


@dataclass
class MessageInput:
    channel: str
    label: str | None = None
    content: dict[str, Any] = field(default_factory=dict)
    render_options: dict[str, Any] | None = None
    # mobile_push: {"notification_type", "kv_pairs", "options"}
    push: dict[str, Any] | None = None
    image_id: str | None = None
    details: dict[str, Any] | None = None


@dataclass
class CampaignInput:
    name: str
    included: list[str]
    excluded: list[str]
    messages: list[MessageInput]
    send_strategy: dict[str, Any] | None = None
    send_options: dict[str, Any] | None = None
    tracking_options: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


@dataclass
class CampaignChange:
    """Fields of an update; None means "not given"."""

    name: str | None = None
    included: list[str] | None = None
    excluded: list[str] | None = None
    send_strategy: dict[str, Any] | None = None
    send_options: dict[str, Any] | None = None
    tracking_options: dict[str, Any] | None = None
    archived: bool | None = None
    details: dict[str, Any] | None = None


# --------------------------------------------------------------------------- errors


def campaign_not_found(campaign_id: str) -> ApiError:
    return errors.not_found(f"A campaign with id '{campaign_id}' does not exist.")


def message_not_found(message_id: str) -> ApiError:
    return errors.not_found(f"A campaign message with id '{message_id}' does not exist.")


def not_draft(row: Row[Any], action: str) -> ApiError:
    return errors.invalid(f"The campaign '{row.id}' cannot be {action}: its status is '{row.status}', "
                          "and only Draft campaigns can be changed.")


# --------------------------------------------------------------------------- checks


def check_name(name: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid("A campaign name cannot be blank.", pointer=pointer)
    if len(name) > MAX_NAME:
        raise errors.invalid(f"A campaign name cannot be longer than {MAX_NAME} characters.", pointer=pointer)
    return name


def check_audiences(conn: Connection, account_id: str, included: Sequence[str], excluded: Sequence[str],
                    pointer: str = "/data/attributes/audiences") -> tuple[list[str], list[str]]:
    """Unique ids, each a list or segment of the account, none both included and excluded."""
    inc, exc = list(dict.fromkeys(included)), list(dict.fromkeys(excluded))
    if len(inc) + len(exc) > MAX_AUDIENCES:
        raise errors.invalid(f"A campaign can have at most {MAX_AUDIENCES} audiences.", pointer=pointer)
    known = store.audience_kinds(conn, account_id, inc + exc)
    for name, ids_ in (("included", included), ("excluded", excluded)):
        for index, group_id in enumerate(ids_):
            if group_id not in known:
                err = errors.not_found(f"No list or segment with id '{group_id}' exists.")
                err.pointer = f"{pointer}/{name}/{index}"
                raise err
    both = set(inc) & set(exc)
    if both:
        group_id = sorted(both)[0]
        raise errors.invalid(f"The audience '{group_id}' cannot be both included and excluded.",
                             pointer=f"{pointer}/excluded/{excluded.index(group_id)}")
    return inc, exc


def _aware(value: Any, pointer: str) -> datetime:
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise errors.invalid(f"'{value}' is not a valid datetime.", pointer=pointer) from None
    if when.tzinfo is None:
        raise errors.invalid("The datetime needs a UTC offset (for example 2025-01-01T10:00:00+00:00).",
                             pointer=pointer)
    return when


def check_send_strategy(value: dict[str, Any] | None, pointer: str = "/data/attributes/send_strategy"
                        ) -> dict[str, Any]:
    """The canonical strategy; None means Klaviyo's default, an immediate send."""
    if value is None:
        return {"method": "immediate"}
    method = value.get("method")
    if method not in STRATEGIES:
        raise errors.invalid(f"'{method}' is not a send strategy; use one of {', '.join(STRATEGIES)}.",
                             pointer=f"{pointer}/method")
    if method == "immediate":
        return {"method": "immediate"}
    if method == "smart_send_time":
        raw = value.get("date")
        if raw is None:
            raise errors.invalid("A smart send time strategy needs a 'date'.", pointer=f"{pointer}/date")
        try:
            day = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
        except ValueError:
            raise errors.invalid(f"'{raw}' is not a valid date.", pointer=f"{pointer}/date") from None
        return {"method": "smart_send_time", "date": day.isoformat()}
    if value.get("datetime") is None:
        raise errors.invalid(f"A {method} send strategy needs a 'datetime'.", pointer=f"{pointer}/datetime")
    when = _aware(value["datetime"], f"{pointer}/datetime")
    if method == "throttled":
        percentage = value.get("throttle_percentage")
        if percentage not in THROTTLE_PERCENTAGES:
            raise errors.invalid(f"throttle_percentage must be one of {list(THROTTLE_PERCENTAGES)}.",
                                 pointer=f"{pointer}/throttle_percentage")
        return {"method": "throttled", "datetime": iso(when), "throttle_percentage": percentage}
    options = value.get("options")
    strategy: dict[str, Any] = {"method": "static", "datetime": iso(when), "options": None}
    if options is not None:
        if options.get("is_local"):
            strategy["options"] = {"is_local": True, "send_past_recipients_immediately":
                                   bool(options.get("send_past_recipients_immediately") or False)}
        else:
            strategy["options"] = {"is_local": False}
    return strategy


def check_send_options(value: dict[str, Any] | None) -> dict[str, Any]:
    use = None if value is None else value.get("use_smart_sending")
    return {"use_smart_sending": True if use is None else bool(use)}


def check_tracking_options(value: dict[str, Any] | None, channel: str, defaults: TrackingDefaults,
                           pointer: str = "/data/attributes/tracking_options") -> dict[str, Any] | None:
    """Given options, with what is left unset taken from the account's tracking settings."""
    if channel == PUSH:
        return None
    value = dict(value or {})
    if channel == SMS:
        for name in ("is_tracking_clicks", "is_tracking_opens"):
            if value.get(name) is not None:
                raise errors.invalid(f"'{name}' applies to email campaigns only.", pointer=f"{pointer}/{name}")
    params = value.get("custom_tracking_params")
    if params is not None:
        for index, param in enumerate(params):
            where = f"{pointer}/custom_tracking_params/{index}"
            if not str(param.get("name") or "").strip():
                raise errors.invalid("A tracking parameter needs a name.", pointer=f"{where}/name")
            if param.get("type") == "dynamic" and param.get("value") not in DYNAMIC_PARAM_VALUES:
                raise errors.invalid(f"'{param.get('value')}' is not a dynamic tracking value.",
                                     pointer=f"{where}/value")
    add = value.get("add_tracking_params")
    options: dict[str, Any] = {
        "add_tracking_params": defaults.auto_add_parameters if add is None else bool(add),
        "custom_tracking_params": [dict(p) for p in params] if params is not None else None,
    }
    if channel == EMAIL:
        for name in ("is_tracking_clicks", "is_tracking_opens"):
            given = value.get(name)
            options[name] = True if given is None else bool(given)
    return options


@dataclass(frozen=True)
class TrackingDefaults:
    """What a campaign's unset tracking options default to: the account's tracking settings."""

    auto_add_parameters: bool = False


def tracking_defaults(conn: Connection, account_id: str) -> TrackingDefaults:
    return TrackingDefaults(tracking_settings.get_setting(conn, account_id).auto_add_parameters)


def _check_email(value: Any, pointer: str) -> None:
    if value is not None and (not isinstance(value, str) or not _EMAIL.match(value)):
        raise errors.invalid(f"'{value}' is not a valid email address.", pointer=pointer)


def check_message(message: MessageInput, pointer: str) -> MessageInput:
    """Content fields of the message's channel only; addresses well formed; push buttons in range."""
    if message.channel not in CHANNELS:
        raise errors.invalid(f"'{message.channel}' is not a channel; use email, sms or mobile_push.",
                             pointer=f"{pointer}/channel")
    allowed = {EMAIL: EMAIL_CONTENT_FIELDS, SMS: SMS_CONTENT_FIELDS, PUSH: PUSH_CONTENT_FIELDS}[message.channel]
    content = {k: v for k, v in message.content.items() if v is not None or k in allowed}
    for key in content:
        if key not in allowed:
            raise errors.invalid(f"'{key}' is not content of a {message.channel} message.",
                                 pointer=f"{pointer}/content/{key}")
    if message.channel == EMAIL:
        for name in ("from_email", "reply_to_email", "cc_email", "bcc_email"):
            _check_email(content.get(name), f"{pointer}/content/{name}")
        if message.render_options:
            raise errors.invalid("Render options apply to SMS messages only.", pointer=f"{pointer}/render_options")
    if message.channel == PUSH:
        buttons = content.get("action_buttons") or []
        if len(buttons) > MAX_PUSH_BUTTONS:
            raise errors.invalid(f"A push message can have at most {MAX_PUSH_BUTTONS} action buttons.",
                                 pointer=f"{pointer}/content/action_buttons")
    render = None
    if message.channel == SMS:
        render = {**RENDER_OPTION_DEFAULTS,
                  **{k: v for k, v in (message.render_options or {}).items() if v is not None}}
    label = message.label if message.channel == EMAIL else None
    return MessageInput(message.channel, label, content, render, message.push, message.image_id,
                        message.details)


def _image_id(conn: Connection, account_id: str, image_id: str | None, channel: str, pointer: str) -> int | None:
    if image_id is None:
        return None
    if channel == EMAIL:
        raise errors.invalid("Images can be attached to SMS and push messages only.", pointer=pointer)
    if not image_id.isdigit() or image_store.get_image(conn, account_id, int(image_id)) is None:
        err = errors.not_found(f"An image with id '{image_id}' does not exist.")
        err.pointer = pointer
        raise err
    return int(image_id)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


# --------------------------------------------------------------------------- reading


def get_campaign(conn: Connection, account_id: str, campaign_id: str, *, for_update: bool = False) -> Row[Any]:
    row = store.get_campaign(conn, account_id, campaign_id, for_update=for_update)
    if row is None:
        raise campaign_not_found(campaign_id)
    return row


def get_message(conn: Connection, account_id: str, message_id: str) -> Row[Any]:
    row = store.get_message(conn, account_id, message_id)
    if row is None:
        raise message_not_found(message_id)
    return row


def messages_of(conn: Connection, account_id: str, campaign_ids: Collection[str]) -> dict[str, list[Row[Any]]]:
    return store.messages_of(conn, account_id, campaign_ids)


# --------------------------------------------------------------------------- writing


def create_campaign(db: Database, account_id: str, now: datetime, spec: CampaignInput,
                    defaults: TrackingDefaults) -> str:
    check_name(spec.name)
    if not spec.messages:
        raise errors.invalid("A campaign needs one message.", pointer="/data/attributes/campaign-messages/data")
    if len(spec.messages) > 1:
        raise errors.invalid("A campaign created through the API has exactly one message.",
                             pointer="/data/attributes/campaign-messages/data/1")
    base = "/data/attributes/campaign-messages/data/0/attributes/definition"
    message = check_message(spec.messages[0], base)
    strategy = check_send_strategy(spec.send_strategy)
    campaign_id = ids.ulid()
    with db.write() as conn:
        included, excluded = check_audiences(conn, account_id, spec.included, spec.excluded)
        image_id = _image_id(conn, account_id, message.image_id, message.channel,
                             "/data/attributes/campaign-messages/data/0/relationships/image/data/id")
        store.insert_campaign(conn, {
            "id": campaign_id, "account_id": account_id, "name": spec.name, "channel": message.channel,
            "status": DRAFT, "archived": False, "included": included, "excluded": excluded,
            "send_strategy": strategy, "send_options": check_send_options(spec.send_options),
            "tracking_options": check_tracking_options(spec.tracking_options, message.channel, defaults),
            "details": spec.details, "created": now, "updated": now, "scheduled_at": None, "send_time": None,
        })
        _insert_message(conn, account_id, campaign_id, 0, message, image_id, now)
        refresh_estimation(conn, account_id, campaign_id, now)
    return campaign_id


def _insert_message(conn: Connection, account_id: str, campaign_id: str, position: int, message: MessageInput,
                    image_id: int | None, now: datetime, template_id: str | None = None) -> str:
    message_id = ids.ulid()
    store.insert_message(conn, {
        "id": message_id, "account_id": account_id, "campaign_id": campaign_id, "position": position,
        "channel": message.channel, "label": message.label, "content": message.content,
        "render_options": message.render_options, "push": message.push, "template_id": template_id,
        "image_id": image_id, "details": message.details, "created": now, "updated": now,
    })
    return message_id


def update_campaign(db: Database, account_id: str, campaign_id: str, now: datetime, change: CampaignChange,
                    defaults: TrackingDefaults) -> None:
    with db.write() as conn:
        row = get_campaign(conn, account_id, campaign_id, for_update=True)
        only_archive = change.archived is not None and all(
            getattr(change, name) is None for name in ("name", "included", "excluded", "send_strategy",
                                                       "send_options", "tracking_options"))
        if row.status != DRAFT and not only_archive:
            raise not_draft(row, "updated")
        values: dict[str, Any] = {"updated": now}
        if change.name is not None:
            values["name"] = check_name(change.name)
        if change.included is not None or change.excluded is not None:
            included = change.included if change.included is not None else list(row.included)
            excluded = change.excluded if change.excluded is not None else list(row.excluded)
            values["included"], values["excluded"] = check_audiences(conn, account_id, included, excluded)
            refresh_estimation(conn, account_id, campaign_id, now)
        if change.send_strategy is not None:
            values["send_strategy"] = check_send_strategy(change.send_strategy)
        if change.send_options is not None:
            values["send_options"] = check_send_options(change.send_options)
        if change.tracking_options is not None:
            merged = {**(row.tracking_options or {}),
                      **{k: v for k, v in change.tracking_options.items() if v is not None}}
            values["tracking_options"] = check_tracking_options(merged, row.channel, defaults)
        if change.archived is not None:
            values["archived"] = change.archived
        if change.details is not None:
            values["details"] = {**(row.details or {}), **change.details}
        store.update_campaign(conn, account_id, campaign_id, values)


def delete_campaign(db: Database, account_id: str, campaign_id: str) -> None:
    """Deleting a campaign that is sending is refused (cancel it first); a scheduled one is dropped
    with its send job, whose queued work then finds nothing to do."""
    with db.write() as conn:
        row = get_campaign(conn, account_id, campaign_id, for_update=True)
        if row.status == SENDING:
            raise errors.invalid(f"The campaign '{campaign_id}' is sending; cancel its send job before deleting it.")
        store.delete_campaign(conn, account_id, campaign_id)
        tag_rules.forget_resources(conn, account_id, "campaign", [campaign_id])


def clone_campaign(db: Database, account_id: str, campaign_id: str, now: datetime, new_name: str | None) -> str:
    """A Draft copy: audiences, strategy, options, messages, message templates and images; not its
    send history, schedule or tags."""
    with db.write() as conn:
        source = get_campaign(conn, account_id, campaign_id)
        name = check_name(new_name) if new_name is not None else f"{source.name} (Clone)"[:MAX_NAME]
        clone_id = ids.ulid()
        store.insert_campaign(conn, {
            "id": clone_id, "account_id": account_id, "name": name, "channel": source.channel, "status": DRAFT,
            "archived": False, "included": list(source.included), "excluded": list(source.excluded),
            "send_strategy": copy.deepcopy(source.send_strategy), "send_options": dict(source.send_options),
            "tracking_options": copy.deepcopy(source.tracking_options), "details": copy.deepcopy(source.details),
            "created": now, "updated": now, "scheduled_at": None, "send_time": None,
        })
        for message in store.messages_of(conn, account_id, [campaign_id])[campaign_id]:
            template_id = None
            if message.template_id is not None:
                template = store.get_message_template(conn, account_id, message.template_id)
                if template is not None:
                    template_id = _copy_template(conn, account_id, template, now, template.source_template_id)
            spec = MessageInput(message.channel, message.label, copy.deepcopy(message.content),
                                copy.deepcopy(message.render_options), copy.deepcopy(message.push), None,
                                copy.deepcopy(message.details))
            _insert_message(conn, account_id, clone_id, message.position, spec, message.image_id, now, template_id)
        refresh_estimation(conn, account_id, clone_id, now)
    return clone_id


def update_message(db: Database, account_id: str, message_id: str, now: datetime, message: MessageInput | None,
                   *, image_id: str | None = None, pointer: str = "/data/attributes/definition") -> None:
    """Content fields given replace the stored ones; the channel cannot change."""
    with db.write() as conn:
        row = get_message(conn, account_id, message_id)
        campaign = get_campaign(conn, account_id, row.campaign_id, for_update=True)
        if campaign.status != DRAFT:
            raise not_draft(campaign, "updated")
        values: dict[str, Any] = {"updated": now}
        if message is not None:
            if message.channel != row.channel:
                raise errors.invalid(f"The message's channel is '{row.channel}'; it cannot change to "
                                     f"'{message.channel}'.", pointer=f"{pointer}/channel")
            merged = MessageInput(row.channel,
                                  message.label if message.label is not None else row.label,
                                  {**(row.content or {}), **message.content},
                                  {**(row.render_options or {}), **(message.render_options or {})} or None,
                                  {**(row.push or {}), **(message.push or {})} or None,
                                  None, message.details if message.details is not None else row.details)
            if row.channel != SMS:
                merged.render_options = None
            checked = check_message(merged, pointer)
            values.update(label=checked.label, content=checked.content, render_options=checked.render_options,
                          push=checked.push, details=checked.details)
        if image_id is not None:
            values["image_id"] = _image_id(conn, account_id, image_id, row.channel,
                                           "/data/relationships/image/data/id")
        store.update_message(conn, message_id, values)
        store.update_campaign(conn, account_id, campaign.id, {"updated": now})


def set_message_image(db: Database, account_id: str, message_id: str, now: datetime, image_id: str) -> None:
    with db.write() as conn:
        row = get_message(conn, account_id, message_id)
        campaign = get_campaign(conn, account_id, row.campaign_id, for_update=True)
        if campaign.status != DRAFT:
            raise not_draft(campaign, "updated")
        store.update_message(conn, message_id, {
            "image_id": _image_id(conn, account_id, image_id, row.channel, "/data/id"), "updated": now})


def _copy_template(conn: Connection, account_id: str, source: Row[Any], now: datetime, source_id: str | None) -> str:
    copy_id = ids.short_id(6)
    while store.message_template_exists(conn, copy_id):
        copy_id = ids.short_id(6)
    store.insert_message_template(conn, {
        "id": copy_id, "account_id": account_id, "source_template_id": source_id, "name": source.name,
        "editor_type": source.editor_type, "html": source.html, "text": source.text, "amp": source.amp,
        "definition": copy.deepcopy(source.definition), "created": now, "updated": now,
    })
    return copy_id


def assign_template(db: Database, account_id: str, message_id: str, template_id: str, now: datetime) -> None:
    """The message gets its own copy of the template (replacing any earlier copy)."""
    with db.write() as conn:
        row = get_message(conn, account_id, message_id)
        campaign = get_campaign(conn, account_id, row.campaign_id, for_update=True)
        if campaign.status != DRAFT:
            raise not_draft(campaign, "updated")
        if row.channel == PUSH:
            raise errors.invalid("Templates can be assigned to email and SMS messages only.", pointer="/data/id")
        try:
            source = template_rules.get_template(conn, account_id, template_id)
        except ApiError as err:
            err.pointer = "/data/relationships/template/data/id"
            raise
        copy_id = _copy_template(conn, account_id, source, now, source.id)
        store.update_message(conn, message_id, {"template_id": copy_id, "updated": now})
        if row.template_id is not None:
            store.delete_message_template(conn, row.template_id)
        store.update_campaign(conn, account_id, campaign.id, {"updated": now})


def message_template(conn: Connection, account_id: str, message: Row[Any]) -> Row[Any] | None:
    if message.template_id is None:
        return None
    return store.get_message_template(conn, account_id, message.template_id)


def refresh_estimation(conn: Connection, account_id: str, campaign_id: str, now: datetime) -> None:
    """Queue a recount of the campaign's recipients (in the caller's transaction)."""
    item_id = work.enqueue(conn, kind=ESTIMATE_KIND, payload={"campaign_id": campaign_id}, now=now,
                           account_id=account_id)
    store.upsert_estimation(conn, {"id": campaign_id, "account_id": account_id, "status": "queued",
                                   "estimated_recipient_count": 0, "work_item_id": item_id, "created": now,
                                   "updated": now})



@tag_rules.resource_checker("campaign")
def campaigns_exist(conn: Connection, account_id: str, candidates: Collection[str]) -> set[str]:
    return store.existing_campaign_ids(conn, account_id, candidates)
