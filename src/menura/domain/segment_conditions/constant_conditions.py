"""Conditions on data that does not exist here (predictive analytics, custom objects, WhatsApp
permissions): validated as Klaviyo validates them, then answered with a constant."""

from __future__ import annotations

from typing import Any

from menura.domain.segment_conditions.conditions import ConstantCondition
from menura.domain.segment_conditions.consent import PERMISSION_FILTERS, consent_filter
from menura.domain.segment_conditions.filter_parsing import STATUS_DATE_FILTERS, parse_filter
from menura.domain.segment_conditions.parsing import bad, expect_int, expect_object, expect_one_of, expect_string

PREDICTIVE_NUMERIC = ("average_days_between_orders", "average_order_value", "churn_probability", "historic_clv",
                      "historic_number_of_orders", "predicted_clv", "predicted_number_of_orders", "total_clv")


def predictive_condition(raw: dict[str, Any], pointer: str) -> ConstantCondition:
    dimension = raw.get("dimension")
    at = f"{pointer}/filter"
    if dimension == "expected_date_of_next_purchase":
        obj = expect_object(raw, pointer, ("type", "dimension", "filter"))
        parse_filter(obj["filter"], STATUS_DATE_FILTERS, at)
    elif dimension in PREDICTIVE_NUMERIC:
        obj = expect_object(raw, pointer, ("type", "dimension", "filter"))
        parse_filter(obj["filter"], ("numeric",), at)
    elif dimension == "predicted_gender":
        obj = expect_object(raw, pointer, ("type", "dimension", "filter"))
        flt = expect_object(obj["filter"], at, ("type", "operator", "value"))
        expect_one_of(flt["type"], ("string",), f"{at}/type")
        expect_one_of(flt["operator"], ("equals", "not-equals"), f"{at}/operator")
        expect_one_of(flt["value"], ("likely_female", "likely_male", "uncertain"), f"{at}/value")
    elif dimension == "channel_affinity":
        obj = expect_object(raw, pointer, ("type", "dimension", "measurement", "predicted_channel", "filter"))
        measurement = expect_one_of(obj["measurement"], ("priority", "rank"), f"{pointer}/measurement")
        expect_one_of(obj["predicted_channel"], ("email", "push", "sms", "whatsapp"), f"{pointer}/predicted_channel")
        flt = expect_object(obj["filter"], at, ("type", "operator", "value"))
        if measurement == "priority":
            expect_one_of(flt["type"], ("numeric",), f"{at}/type")
            expect_one_of(flt["operator"], ("equals",), f"{at}/operator")
            expect_int(flt["value"], f"{at}/value")
        else:
            expect_one_of(flt["type"], ("string",), f"{at}/type")
            expect_one_of(flt["operator"], ("equals", "not-equals"), f"{at}/operator")
            expect_one_of(flt["value"], ("high", "low", "medium"), f"{at}/value")
    else:
        expect_one_of(dimension, ("average_days_between_orders", "average_order_value", "channel_affinity",
                                  "churn_probability", "expected_date_of_next_purchase", "historic_clv",
                                  "historic_number_of_orders", "predicted_clv", "predicted_gender",
                                  "predicted_number_of_orders", "total_clv"), f"{pointer}/dimension")
    # Predictive figures exist on a profile only once a model has scored it; none has here.
    return ConstantCondition(False, "predictive analytics have not been computed for any profile")


def custom_object_condition(raw: dict[str, Any], pointer: str) -> ConstantCondition:
    obj = expect_object(raw, pointer, ("type", "object_type_id", "object_type_relationship_id", "filter", "filters"))
    expect_string(obj["object_type_id"], f"{pointer}/object_type_id")
    expect_string(obj["object_type_relationship_id"], f"{pointer}/object_type_relationship_id")
    parse_filter(obj["filter"], ("integer",), f"{pointer}/filter")
    if not isinstance(obj["filters"], list):
        raise bad("Expected a list of filters.", f"{pointer}/filters")
    for index, item in enumerate(obj["filters"]):
        at = f"{pointer}/filters/{index}"
        entry = expect_object(item, at, ("property_id", "filter"))
        expect_int(entry["property_id"], f"{at}/property_id")
        parse_filter(entry["filter"], ("string", "string_array", "numeric", "numeric_range", "boolean",
                                       "date_static", "date_static_range", "date_relative",
                                       "date_anniversary_relative", "date_range", "list_contains", "list_length",
                                       "existence"), f"{at}/filter")
    raise bad(f"The custom object type '{obj['object_type_id']}' does not exist.", f"{pointer}/object_type_id")


REACHABILITY = ("explicitly_reachable", "implicitly_reachable", "implicitly_or_explicitly_reachable",
                "explicitly_unreachable", "implicitly_unreachable", "implicitly_or_explicitly_unreachable")


def permissions_condition(raw: dict[str, Any], pointer: str) -> ConstantCondition:
    obj = expect_object(raw, pointer, ("type", "permission", "channel"))
    expect_one_of(obj["channel"], ("whatsapp_marketing", "whatsapp_transactional"), f"{pointer}/channel")
    at = f"{pointer}/permission"
    status = obj["permission"].get("reachable_status") if isinstance(obj["permission"], dict) else None
    status = expect_one_of(status, REACHABILITY, f"{at}/reachable_status")
    explicit = status in ("explicitly_reachable", "explicitly_unreachable")
    perm = expect_object(obj["permission"], at, ("reachable_status", "filters") if explicit else ("reachable_status",))
    if explicit:
        if not isinstance(perm["filters"], list):
            raise bad("Expected a list of filters.", f"{at}/filters")
        for index, item in enumerate(perm["filters"]):
            consent_filter(item, f"{at}/filters/{index}", PERMISSION_FILTERS)
    # No WhatsApp permission has been recorded for any profile: nobody is reachable on WhatsApp
    # and nobody is explicitly unreachable, so everyone is (only) implicitly unreachable.
    return ConstantCondition(status in ("implicitly_unreachable", "implicitly_or_explicitly_unreachable"),
                             "no WhatsApp permission is recorded for any profile")
