"""Custom metrics (conversion metrics built from other metrics' events) and mapped metrics (which
metric or custom metric stands for revenue, added-to-cart, ...).

A custom metric's definition is a list of metric groups. An event counts for the custom metric when
its metric is a group's metric and it passes every filter of that group; its value is the group's
`value_property` (default `$value`, the event value). Groups add up.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from menura.domain import events as event_rules
from menura.store import events as event_store
from menura.store import metrics as store

MAX_CUSTOM_METRICS = 50  # Klaviyo's limit on its analytics plans
MAX_NAME = 255
AGGREGATIONS = ("count", "value")
NUMERIC_OPS = ("equals", "greater-than", "greater-than-or-equal", "less-than", "less-than-or-equal", "not-equals")
STRING_OPS = ("contains", "ends-with", "equals", "not-contains", "not-ends-with", "not-equals", "not-starts-with",
              "nregex", "regex", "starts-with")
LIST_OPS = ("contains", "not-contains", "contains-ends-with", "contains-starts-with", "not-contains-ends-with",
            "not-contains-starts-with", "contains-substring", "not-contains-substring")


class DefinitionError(ValueError):
    """A definition that breaks a rule; `path` is the JSON pointer below the definition."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


# --- validation ------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    text = name.strip()
    if not text:
        raise DefinitionError("name", "The custom metric name must not be empty.")
    if len(text) > MAX_NAME:
        raise DefinitionError("name", f"The custom metric name must be at most {MAX_NAME} characters.")
    return text


def check_definition(conn: Connection, account_id: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a definition against the account's metrics; returns it in stored form."""
    method = definition.get("aggregation_method")
    if method not in AGGREGATIONS:
        raise DefinitionError("definition/aggregation_method", "aggregation_method must be 'count' or 'value'.")
    groups = definition.get("metric_groups")
    if not isinstance(groups, list) or not groups:
        raise DefinitionError("definition/metric_groups", "At least one metric group is required.")
    out_groups = []
    for n, group in enumerate(groups):
        where = f"definition/metric_groups/{n}"
        if not isinstance(group, dict):
            raise DefinitionError(where, "A metric group must be an object.")
        metric_id = group.get("metric_id")
        if not isinstance(metric_id, str) or store.get_metric(conn, account_id, metric_id) is None:
            raise DefinitionError(f"{where}/metric_id", f"A metric with id '{metric_id}' does not exist.")
        filters = group.get("metric_filters") or []
        if not isinstance(filters, list):
            raise DefinitionError(f"{where}/metric_filters", "metric_filters must be a list.")
        out_filters = [_check_condition(c, f"{where}/metric_filters/{m}") for m, c in enumerate(filters)]
        value_property = group.get("value_property")
        if value_property is not None and (not isinstance(value_property, str) or not value_property.strip()):
            raise DefinitionError(f"{where}/value_property", "value_property must be a property name.")
        out_groups.append({"metric_id": metric_id, "metric_filters": out_filters or None,
                           "value_property": value_property if method == "value" else None})
    return {"aggregation_method": method, "metric_groups": out_groups}


def _check_condition(condition: Any, where: str) -> dict[str, Any]:
    if not isinstance(condition, dict):
        raise DefinitionError(where, "A metric filter must be an object.")
    prop = condition.get("property")
    if not isinstance(prop, str) or not prop:
        raise DefinitionError(f"{where}/property", "A metric filter needs a property.")
    spec = condition.get("filter")
    if not isinstance(spec, dict):
        raise DefinitionError(f"{where}/filter", "A metric filter needs a filter object.")
    kind, op, value = spec.get("type"), spec.get("operator"), spec.get("value")
    path = f"{where}/filter"
    if kind == "numeric":
        _need(op in NUMERIC_OPS, path + "/operator", f"'{op}' is not a numeric operator.")
        _need(_is_number(value), path + "/value", "A numeric filter needs a number.")
    elif kind == "string" and op == "in":
        _need(isinstance(value, list) and all(isinstance(v, str) for v in value), path + "/value",
              "The 'in' operator needs a list of strings.")
    elif kind == "string":
        _need(op in STRING_OPS, path + "/operator", f"'{op}' is not a string operator.")
        _need(value is None or isinstance(value, str), path + "/value", "A string filter needs a string.")
        if op in ("regex", "nregex"):
            try:
                re.compile(value or "")
            except re.error:
                raise DefinitionError(path + "/value", "Invalid regular expression.") from None
    elif kind == "existence":
        _need(op in ("is-set", "not-set"), path + "/operator", f"'{op}' is not an existence operator.")
        return {"property": prop, "filter": {"type": kind, "operator": op}}
    elif kind == "boolean":
        _need(op == "equals", path + "/operator", f"'{op}' is not a boolean operator.")
        _need(isinstance(value, bool), path + "/value", "A boolean filter needs true or false.")
    elif kind == "list":
        _need(op in LIST_OPS, path + "/operator", f"'{op}' is not a list operator.")
        _need(value is None or isinstance(value, str) or _is_number(value), path + "/value",
              "A list filter needs a string or a number.")
    else:
        raise DefinitionError(path + "/type", f"'{kind}' is not a filter type.")
    return {"property": prop, "filter": {"type": kind, "operator": op, "value": value}}


def _need(ok: bool, path: str, detail: str) -> None:
    if not ok:
        raise DefinitionError(path, detail)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- evaluation ------------------------------------------------------------------------------------


def condition_holds(spec: Mapping[str, Any], present: bool, actual: Any) -> bool:
    """Whether an event property (`present`, `actual`) passes one filter."""
    kind, op, value = spec["type"], spec["operator"], spec.get("value")
    if kind == "existence":
        return present if op == "is-set" else not present
    if not present:
        return op.startswith("not-") or op == "nregex"
    if kind == "numeric":
        if not _is_number(actual):
            return op == "not-equals"
        return {"equals": actual == value, "not-equals": actual != value, "greater-than": actual > value,
                "greater-than-or-equal": actual >= value, "less-than": actual < value,
                "less-than-or-equal": actual <= value}[op]
    if kind == "boolean":
        return actual is value
    if kind == "string":
        text = actual if isinstance(actual, str) else _text(actual)
        if op == "in":
            return text in value
        return _string_op(op, text, value or "")
    # list
    items = actual if isinstance(actual, list) else [actual]
    return _list_op(op, items, value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string_op(op: str, text: str, value: str) -> bool:
    negated = op.startswith("not-") or op == "nregex"
    base = {"nregex": "regex"}.get(op, op.removeprefix("not-"))
    result = {"contains": value in text, "ends-with": text.endswith(value), "equals": text == value,
              "starts-with": text.startswith(value),
              "regex": bool(re.search(value, text))}[base]
    return not result if negated else result


def _list_op(op: str, items: list[Any], value: Any) -> bool:
    negated = op.startswith("not-")
    base = op.removeprefix("not-")
    texts = [_text(item) for item in items]
    needle = _text(value) if value is not None else ""
    if base == "contains":
        result = any(item == value or text == needle for item, text in zip(items, texts, strict=True))
    elif base == "contains-starts-with":
        result = any(text.startswith(needle) for text in texts)
    elif base == "contains-ends-with":
        result = any(text.endswith(needle) for text in texts)
    else:  # contains-substring
        result = any(needle in text for text in texts)
    return not result if negated else result


def event_contribution(definition: Mapping[str, Any], metric_id: str, properties: Mapping[str, Any],
                       value: float | None) -> tuple[int, float]:
    """(conversions, conversion value) one event adds to the custom metric."""
    count, total = 0, 0.0
    for group in definition["metric_groups"]:
        if group["metric_id"] != metric_id:
            continue
        if not all(condition_holds(c["filter"], c["property"] in properties, properties.get(c["property"]))
                   for c in group.get("metric_filters") or []):
            continue
        count += 1
        prop = group.get("value_property") or "$value"
        if prop == "$value":
            amount = value if value is not None else event_rules.value_of(None, properties)
        else:
            amount = properties.get(prop)
        if _is_number(amount):
            total += float(amount)  # type: ignore[arg-type]
    return count, total


@dataclass(frozen=True)
class Totals:
    count: int
    value: float


def totals(conn: Connection, account_id: str, definition: Mapping[str, Any], start: datetime,
           end: datetime) -> Totals:
    """The custom metric's conversions and conversion value over events in [start, end)."""
    metric_ids = sorted({g["metric_id"] for g in definition["metric_groups"]})
    count, value = 0, 0.0
    for row in event_store.events_of_metrics(conn, account_id, metric_ids, start, end):
        c, v = event_contribution(definition, row.metric_id, row.properties or {}, row.value)
        count += c
        value += v
    return Totals(count, value if definition["aggregation_method"] == "value" else 0.0)


def metric_ids_of(definition: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(g["metric_id"] for g in definition["metric_groups"]))


def definition_attributes(definition: Mapping[str, Any]) -> dict[str, Any]:
    return {"aggregation_method": definition["aggregation_method"],
            "metric_groups": [dict(g) for g in definition["metric_groups"]]}
