"""UTM tracking settings of an account, and the UTM parameters a message's links get.

Klaviyo (help center, "UTM tracking in Klaviyo"): utm_source and utm_medium are always on; utm_campaign,
utm_id and utm_term may be switched off (null here); up to 5 custom parameters; each parameter has a
campaign value and a flow value, static (typed text) or dynamic (a built-in such as the campaign
name); "automatically add UTM parameters to links" applies them to every message unless a campaign
says otherwise. Defaults: source "Klaviyo", medium the message type, campaign the campaign name (flow:
the message name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from menura.jsonapi import errors
from menura.store import delivery as store

PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_id", "utm_term")
ALWAYS_ON = ("utm_source", "utm_medium")
MAX_CUSTOM = 5
MAX_VALUE_CHARS = 255

CAMPAIGN_DYNAMIC = frozenset({
    "campaign_id", "campaign_name", "campaign_name_id", "campaign_name_send_day", "email_subject", "group_id",
    "group_name", "group_name_id", "link_alt_text", "message_type", "profile_external_id", "profile_id",
})
FLOW_DYNAMIC = frozenset({
    "email_subject", "flow_id", "flow_name", "link_alt_text", "message_name", "message_name_id", "message_type",
    "profile_external_id", "profile_id",
})
_DYNAMIC = {"campaign": CAMPAIGN_DYNAMIC, "flow": FLOW_DYNAMIC}

DEFAULT_AUTO_ADD = False
DEFAULT_PARAMETERS: dict[str, Any] = {
    "utm_source": {"campaign": {"type": "static", "value": "Klaviyo"},
                   "flow": {"type": "static", "value": "Klaviyo"}},
    "utm_medium": {"campaign": {"type": "dynamic", "value": "message_type"},
                   "flow": {"type": "dynamic", "value": "message_type"}},
    "utm_campaign": {"campaign": {"type": "dynamic", "value": "campaign_name"},
                     "flow": {"type": "dynamic", "value": "message_name"}},
    "utm_id": None,
    "utm_term": None,
    "custom_parameters": None,
}


@dataclass(frozen=True)
class TrackingSetting:
    account_id: str
    auto_add_parameters: bool
    parameters: Mapping[str, Any]

    def attributes(self) -> dict[str, Any]:
        return {"auto_add_parameters": self.auto_add_parameters,
                **{name: self.parameters.get(name) for name in (*PARAMETERS, "custom_parameters")}}


def get_setting(conn: Connection, account_id: str) -> TrackingSetting:
    row = store.get_tracking_settings(conn, account_id)
    if row is None:
        return TrackingSetting(account_id, DEFAULT_AUTO_ADD, DEFAULT_PARAMETERS)
    return TrackingSetting(account_id, row.auto_add_parameters, {**DEFAULT_PARAMETERS, **row.parameters})


# --- validating an update ---------------------------------------------------------------------


def _check_value(spec: Any, context: str, pointer: str) -> dict[str, str] | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise errors.invalid("Expected an object with 'type' and 'value'.", pointer=pointer)
    unknown = set(spec) - {"type", "value"}
    if unknown:
        name = sorted(unknown)[0]
        raise errors.invalid(f"'{name}' is not a valid field.", pointer=f"{pointer}/{name}")
    kind, value = spec.get("type"), spec.get("value")
    if kind not in ("static", "dynamic"):
        raise errors.invalid("'type' must be 'static' or 'dynamic'.", pointer=f"{pointer}/type")
    if not isinstance(value, str) or not value.strip():
        raise errors.invalid("'value' must be a non-empty string.", pointer=f"{pointer}/value")
    if len(value) > MAX_VALUE_CHARS:
        raise errors.invalid(f"'value' must be at most {MAX_VALUE_CHARS} characters.", pointer=f"{pointer}/value")
    if kind == "dynamic" and value not in _DYNAMIC[context]:
        allowed = ", ".join(sorted(_DYNAMIC[context]))
        raise errors.invalid(f"'{value}' is not a valid dynamic {context} value; expected one of {allowed}.",
                             pointer=f"{pointer}/value")
    return {"type": kind, "value": value}


def _check_param(raw: Any, pointer: str, *, custom: bool) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise errors.invalid("Expected an object.", pointer=pointer)
    allowed = {"campaign", "flow", "name"} if custom else {"campaign", "flow"}
    unknown = set(raw) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise errors.invalid(f"'{name}' is not a valid field.", pointer=f"{pointer}/{name}")
    param: dict[str, Any] = {
        "campaign": _check_value(raw.get("campaign"), "campaign", f"{pointer}/campaign"),
        "flow": _check_value(raw.get("flow"), "flow", f"{pointer}/flow"),
    }
    if custom:
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise errors.invalid("'name' is a required field.", pointer=f"{pointer}/name")
        if name.strip().lower() in PARAMETERS:
            raise errors.invalid(f"'{name}' is a built-in parameter; set it with its own attribute.",
                                 pointer=f"{pointer}/name")
        param = {"name": name.strip(), **param}
    return param


def apply_update(current: TrackingSetting, attributes: Mapping[str, Any]) -> TrackingSetting:
    """The setting after a PATCH: only the attributes given change; null switches a parameter off."""
    base = "/data/attributes"
    auto_add = current.auto_add_parameters
    parameters = dict(current.parameters)
    for name, raw in attributes.items():
        pointer = f"{base}/{name}"
        if name == "auto_add_parameters":
            if raw is None:
                continue
            if not isinstance(raw, bool):
                raise errors.invalid("'auto_add_parameters' must be a boolean.", pointer=pointer)
            auto_add = raw
        elif name in PARAMETERS:
            if raw is None:
                if name in ALWAYS_ON:
                    continue  # utm_source and utm_medium cannot be switched off; null leaves them as they are
                parameters[name] = None
            else:
                parameters[name] = _merge_param(parameters.get(name), _check_param(raw, pointer, custom=False),
                                                raw)
        elif name == "custom_parameters":
            parameters[name] = _check_custom(raw, pointer)
        else:
            raise errors.invalid(f"'{name}' is not a valid field for this resource.", pointer=pointer)
    return TrackingSetting(current.account_id, auto_add, parameters)


def _merge_param(current: Mapping[str, Any] | None, checked: dict[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    # A parameter object names the contexts it changes; a context left out keeps its value.
    merged = dict(current or {"campaign": None, "flow": None})
    for context in ("campaign", "flow"):
        if context in raw:
            merged[context] = checked[context]
    return merged


def _check_custom(raw: Any, pointer: str) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise errors.invalid("'custom_parameters' must be a list.", pointer=pointer)
    if len(raw) > MAX_CUSTOM:
        raise errors.invalid(f"At most {MAX_CUSTOM} custom parameters are allowed.", pointer=pointer)
    checked = [_check_param(item, f"{pointer}/{i}", custom=True) for i, item in enumerate(raw)]
    names = [p["name"].lower() for p in checked]
    if len(set(names)) != len(names):
        raise errors.invalid("Custom parameter names must be unique.", pointer=pointer)
    return checked or None


def save(conn: Connection, setting: TrackingSetting, now: datetime) -> None:
    store.upsert_tracking_settings(conn, setting.account_id, setting.auto_add_parameters,
                                   {k: v for k, v in setting.parameters.items()}, now)


# --- parameters for one message ------------------------------------------------------------------


@dataclass(frozen=True)
class UtmContext:
    """What dynamic values are made of. `kind` is "campaign" or "flow"."""

    kind: str = "campaign"
    message_type: str = "email"
    campaign_id: str | None = None
    campaign_name: str | None = None
    send_time: datetime | None = None
    group_id: str | None = None
    group_name: str | None = None
    flow_id: str | None = None
    flow_name: str | None = None
    message_id: str | None = None
    message_name: str | None = None
    subject: str | None = None
    profile_id: str | None = None
    profile_external_id: str | None = None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    value: str


def message_params(setting: TrackingSetting, context: UtmContext, *, add: bool | None = None,
                   custom: Sequence[Mapping[str, Any]] | None = None) -> list[ParamSpec]:
    """The parameters a message's links get. `add` and `custom` are the campaign's tracking options
    (`add_tracking_params`, `custom_tracking_params`): add=None follows the account's auto-add switch; a
    non-empty custom list replaces the account's parameters, an empty one means "account defaults"."""
    if not (setting.auto_add_parameters if add is None else add):
        return []
    if custom:
        return [ParamSpec(str(p["name"]), str(p["type"]), str(p["value"])) for p in custom]
    specs: list[ParamSpec] = []
    for name in PARAMETERS:
        param = setting.parameters.get(name)
        value = param.get(context.kind) if param else None
        if value:
            specs.append(ParamSpec(name, value["type"], value["value"]))
    for param in setting.parameters.get("custom_parameters") or ():
        value = param.get(context.kind)
        if value:
            specs.append(ParamSpec(param["name"], value["type"], value["value"]))
    return specs


def _named(name: str | None, ident: str | None) -> str | None:
    if name and ident:
        return f"{name} ({ident})"
    return name or ident


def dynamic_value(value: str, context: UtmContext, link_text: str | None) -> str | None:
    send_day = context.send_time.strftime("%Y-%m-%d") if context.send_time else None
    return {
        "campaign_id": context.campaign_id,
        "campaign_name": context.campaign_name,
        "campaign_name_id": _named(context.campaign_name, context.campaign_id),
        "campaign_name_send_day": _named(context.campaign_name, send_day),
        "email_subject": context.subject,
        "group_id": context.group_id,
        "group_name": context.group_name,
        "group_name_id": _named(context.group_name, context.group_id),
        "link_alt_text": link_text,
        "message_type": context.message_type,
        "profile_external_id": context.profile_external_id,
        "profile_id": context.profile_id,
        "flow_id": context.flow_id,
        "flow_name": context.flow_name,
        "message_name": context.message_name,
        "message_name_id": _named(context.message_name, context.message_id),
    }.get(value)


def param_values(specs: Sequence[ParamSpec], context: UtmContext, link_text: str | None) -> list[tuple[str, str]]:
    """(name, value) pairs for one link; parameters whose value is unknown are left out."""
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        value = spec.value if spec.type == "static" else dynamic_value(spec.value, context, link_text)
        if value:
            pairs.append((spec.name, value))
    return pairs
