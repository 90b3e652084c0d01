"""A profile's column values: computed from a request's input or from a merge, and read back as API
attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from menura import ids
from menura.domain.profile_input import IDENTIFIER_FIELDS, LOCATION_FIELDS, TEXT_FIELDS, ProfileInput


def merged_location(current: Mapping[str, Any] | None, data: ProfileInput) -> dict[str, Any] | None:
    if data.cleared("location"):
        return None
    location = dict(current or {})
    for key, value in (data.location or {}).items():
        if value is None:
            location.pop(key, None)
        else:
            location[key] = value
    return location or None


def merged_properties(current: Mapping[str, Any] | None, data: ProfileInput) -> dict[str, Any]:
    properties = {} if data.cleared("properties") else dict(current or {})
    properties.update(data.properties or {})
    patch = data.patch
    if patch is None:
        return properties
    for name, values in patch.append.items():
        existing = properties.get(name)
        base = list(existing) if isinstance(existing, list) else ([] if existing is None else [existing])
        properties[name] = base + list(values)
    for name, values in patch.unappend.items():
        existing = properties.get(name)
        if isinstance(existing, list):
            properties[name] = [item for item in existing if item not in values]
        elif existing is not None and existing in values:
            properties[name] = []
    for name in patch.unset:
        properties.pop(name, None)
    return properties


def attribute_values(current: Row[Any] | None, data: ProfileInput) -> dict[str, Any]:
    """Column values for the non-identifier attributes the input sets or clears."""
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if data.has(name):
            values[name] = getattr(data, name)
    if data.has("location"):
        values["location"] = merged_location(current.location if current is not None else None, data)
    if data.has("properties") or data.patch is not None:
        values["properties"] = merged_properties(current.properties if current is not None else None, data)
    return values


def new_profile_values(account_id: str, data: ProfileInput, now: datetime) -> dict[str, Any]:
    """The row of a profile created from the input (consent: never subscribed on every channel)."""
    values: dict[str, Any] = {"id": ids.ulid(), "account_id": account_id, "created": now, "updated": now,
                              "properties": {}, "location": None}
    values.update(data.identifiers())
    values.update(attribute_values(None, data))
    return values


# Consent states a merge takes from a source whose destination has none, with their details.
CONSENT_GROUPS = (
    ("email_consent", ("email_consent_timestamp", "email_method", "email_method_detail", "email_last_updated",
                       "email_custom_method_detail", "email_double_optin")),
    ("sms_consent", ("sms_consent_timestamp", "sms_method", "sms_method_detail", "sms_last_updated")),
    ("sms_transactional_consent", ("sms_transactional_consent_timestamp", "sms_transactional_method",
                                   "sms_transactional_method_detail", "sms_transactional_last_updated")),
    ("email_suppression_reason", ("email_suppression_timestamp",)),
)


def merged_values(destination: Row[Any], sources: Sequence[Row[Any]]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in (*IDENTIFIER_FIELDS, *TEXT_FIELDS):
        if getattr(destination, name) is None:
            for row in sources:
                if getattr(row, name) is not None:
                    changes[name] = getattr(row, name)
                    break
    location = dict(destination.location or {})
    properties = dict(destination.properties or {})
    for row in sources:
        for key, value in (row.location or {}).items():
            location.setdefault(key, value)
        for key, value in (row.properties or {}).items():
            properties.setdefault(key, value)
    changes["location"] = location or None
    changes["properties"] = properties
    changes["created"] = min([destination.created, *(row.created for row in sources)])
    event_dates = [d for d in [destination.last_event_date, *(row.last_event_date for row in sources)] if d]
    changes["last_event_date"] = max(event_dates) if event_dates else None
    for state, details in CONSENT_GROUPS:
        if getattr(destination, state) in (None, "NEVER_SUBSCRIBED"):
            donor = next((row for row in sources if getattr(row, state) not in (None, "NEVER_SUBSCRIBED")), None)
            if donor is not None:
                changes[state] = getattr(donor, state)
                changes.update({name: getattr(donor, name) for name in details})
    return changes


def historic_order_figures(history: tuple[int, float, datetime, datetime] | None) -> dict[str, Any]:
    if history is None:
        return {"historic_number_of_orders": 0, "historic_clv": 0.0}
    count, total, first, last = history
    figures: dict[str, Any] = {"historic_number_of_orders": count, "historic_clv": round(total, 2),
                               "average_order_value": round(total / count, 2) if count else None}
    if count >= 2:
        figures["average_days_between_orders"] = round((last - first).total_seconds() / 86400 / (count - 1), 2)
    return figures


def profile_attributes(row: Row[Any]) -> dict[str, Any]:
    """The profile's standard attributes, in Klaviyo's order and formats."""
    location = row.location or {}
    return {
        "email": row.email,
        "phone_number": row.phone_number,
        "external_id": row.external_id,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "organization": row.organization,
        "locale": row.locale,
        "title": row.title,
        "image": row.image,
        "created": _iso(row.created),
        "updated": _iso(row.updated),
        "last_event_date": _iso(row.last_event_date),
        "location": {key: location.get(key) for key in LOCATION_FIELDS},
        "properties": dict(row.properties or {}),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
