"""Marketing consent conditions (email, SMS, push): which statuses exist and which filters each allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from menura.domain.segment_conditions.conditions import ConsentCondition, ConsentFilter
from menura.domain.segment_conditions.filter_parsing import STATUS_DATE_FILTERS, SUPPRESSION_DATE_FILTERS, parse_filter
from menura.domain.segment_conditions.filters import Filter, ValueFilter
from menura.domain.segment_conditions.parsing import bad, expect_bool, expect_object, expect_one_of

EMAIL_SUBSCRIBED_METHODS = ("form", "preference_page", "api", "inbound_message", "back_in_stock", "sftp",
                            "manual_import", "manual_add", "integration")
EMAIL_UNSUBSCRIBED_METHODS = ("api", "inbound_message", "preference_page", "manual_remove", "spam_complaint",
                              "mailbox_provider", "one_click_unsubscribe", "manual_import", "sftp",
                              "data_warehouse_import", "profile_modification", "integration")
SMS_SUBSCRIBED_METHODS = ("form", "manual_import", "manual_add", "checkout", "inbound_message", "preference_page",
                          "sftp", "integration")
SMS_UNSUBSCRIBED_METHODS = ("form", "manual_import", "manual_add", "manual_remove", "bulk_remove", "checkout",
                            "inbound_message", "preference_page", "sftp", "carrier_deactivation",
                            "provided_landline", "message_blocked", "provided_no_age", "failed_age_gate",
                            "integration")
# Method filters that narrow by method_detail, and how: "in" (a list) or "equals".
METHOD_DETAIL = {"form": "in", "api": "in", "manual_import": "in", "manual_add": "in", "preference_page": "equals",
                 "integration": "in"}
INTEGRATION_VALUES = {"email_subscribed": ("shopify",), "email_unsubscribed": ("constant_contact",),
                      "sms_subscribed": ("shopify",), "sms_unsubscribed": ("shopify",)}
SUPPRESSION_FIELDS = ("bounce_date", "manual_suppression_date", "invalid_email_date")
PERMISSION_FILTERS = ("effective_date", "recorded_date", "subscribe_method")


@dataclass(frozen=True)
class _ConsentShape:
    fields: tuple[str, ...]  # allowed filter fields
    methods: tuple[str, ...] = ()
    methods_with_detail: tuple[str, ...] = ()  # which methods may carry a detail filter
    integration: tuple[str, ...] = ()
    filters_required: bool = False


_SUBSCRIBED_EMAIL = _ConsentShape(("is_double_opt_in", "status_date", "custom_source", "method"),
                                  EMAIL_SUBSCRIBED_METHODS, ("form", "preference_page", "api", "manual_import",
                                                             "manual_add", "integration"), ("shopify",))
_UNSUBSCRIBED_EMAIL = _ConsentShape(("status_date", "method", *SUPPRESSION_FIELDS), EMAIL_UNSUBSCRIBED_METHODS,
                                    ("integration",), ("constant_contact",))
_SUBSCRIBED_SMS = _ConsentShape(("status_date", "method", "is_rcs_capable"), SMS_SUBSCRIBED_METHODS,
                                ("form", "manual_import", "manual_add", "integration"), ("shopify",))
_UNSUBSCRIBED_SMS = _ConsentShape(("status_date", "method"), SMS_UNSUBSCRIBED_METHODS,
                                  ("form", "manual_import", "manual_add", "integration"), ("shopify",))
_SUPPRESSION_ONLY = _ConsentShape(SUPPRESSION_FIELDS)
_NO_FILTERS = _ConsentShape(())
_PUSH = _ConsentShape(("status_date",))

# (channel, can_receive, subscription) -> what its filters may be; missing = not in the spec.
CONSENT_SHAPES: dict[tuple[str, bool, str], _ConsentShape] = {
    ("email", True, "any"): _NO_FILTERS,
    ("email", True, "subscribed"): _SUBSCRIBED_EMAIL,
    ("email", True, "never_subscribed"): _NO_FILTERS,
    ("email", False, "any"): _SUPPRESSION_ONLY,
    ("email", False, "unsubscribed"): _UNSUBSCRIBED_EMAIL,
    ("email", False, "never_subscribed"): _ConsentShape(SUPPRESSION_FIELDS, filters_required=True),
    ("email", False, "subscribed"): _ConsentShape(SUPPRESSION_FIELDS, filters_required=True),
    ("sms", True, "subscribed"): _SUBSCRIBED_SMS,
    ("sms", False, "any"): _NO_FILTERS,
    ("sms", False, "unsubscribed"): _UNSUBSCRIBED_SMS,
    ("sms", False, "never_subscribed"): _NO_FILTERS,
    ("push", True, "any"): _PUSH,
    ("push", False, "any"): _NO_FILTERS,
}


def consent_condition(raw: dict[str, Any], pointer: str) -> ConsentCondition:
    obj = expect_object(raw, pointer, ("type", "consent"))
    at = f"{pointer}/consent"
    consent = expect_object(obj["consent"], at, ("channel", "can_receive_marketing", "consent_status"))
    channel = expect_one_of(consent["channel"], ("email", "push", "sms"), f"{at}/channel")
    can_receive = expect_bool(consent["can_receive_marketing"], f"{at}/can_receive_marketing")
    status_at = f"{at}/consent_status"
    status = consent["consent_status"]
    allowed = sorted({s for (c, r, s) in CONSENT_SHAPES if c == channel and r == can_receive})
    subscription = expect_one_of(status.get("subscription") if isinstance(status, dict) else None, tuple(allowed),
                                 f"{status_at}/subscription")
    shape = CONSENT_SHAPES[(channel, can_receive, subscription)]
    required = ("subscription", "filters") if shape.filters_required else ("subscription",)
    status = expect_object(status, status_at, required, ("filters",))
    raw_filters = status.get("filters")
    if raw_filters and not shape.fields:
        raise bad("No filters can be given for this consent status.", f"{status_at}/filters")
    filters: list[ConsentFilter] = []
    if raw_filters is not None:
        if not isinstance(raw_filters, list):
            raise bad("Expected a list of filters.", f"{status_at}/filters")
        for index, item in enumerate(raw_filters):
            filters.append(consent_filter(item, f"{status_at}/filters/{index}", shape.fields, shape))
    return ConsentCondition(channel, can_receive, subscription, tuple(filters))


def consent_filter(raw: Any, pointer: str, fields: tuple[str, ...], shape: _ConsentShape | None = None
                   ) -> ConsentFilter:
    if not isinstance(raw, dict):
        raise bad("Expected a filter object.", pointer)
    field = expect_one_of(raw.get("field"), fields, f"{pointer}/field")
    if field in ("method", "subscribe_method"):
        methods = shape.methods if shape is not None else ("form", *_PERMISSION_METHODS)
        obj = expect_object(raw, pointer, ("field", "method"), ("filter",))
        method = expect_one_of(obj["method"], methods, f"{pointer}/method")
        flt = obj.get("filter")
        detail: Filter | None = None
        with_detail = shape.methods_with_detail if shape is not None else ("form",)
        if method == "integration" and flt is None:
            raise bad("'filter' is a required field.", f"{pointer}/filter")
        if flt is not None:
            if method not in with_detail:
                raise bad(f"The method '{method}' takes no filter.", f"{pointer}/filter")
            how = METHOD_DETAIL.get(method, "in")
            detail = parse_filter(flt, ("string_array",) if how == "in" else ("string",), f"{pointer}/filter")
            assert isinstance(detail, ValueFilter)
            if detail.operator not in ("in", "equals"):
                raise bad(f"Only '{how}' can filter this method.", f"{pointer}/filter/operator")
            if method == "integration" and shape is not None:
                for index, item in enumerate(detail.value):
                    if item not in shape.integration:
                        raise bad(f"'{item}' is not an integration allowed here.", f"{pointer}/filter/value/{index}")
        return ConsentFilter(field, method, detail)
    obj = expect_object(raw, pointer, ("field", "filter"))
    if field in ("is_double_opt_in", "is_rcs_capable"):
        return ConsentFilter(field, None, parse_filter(obj["filter"], ("boolean",), f"{pointer}/filter"))
    if field == "custom_source":
        flt = parse_filter(obj["filter"], ("string",), f"{pointer}/filter")
        assert isinstance(flt, ValueFilter)
        if flt.operator != "equals":
            raise bad("Only 'equals' can filter the custom source.", f"{pointer}/filter/operator")
        return ConsentFilter(field, None, flt)
    allowed = SUPPRESSION_DATE_FILTERS if field in SUPPRESSION_FIELDS else STATUS_DATE_FILTERS
    return ConsentFilter(field, None, parse_filter(obj["filter"], allowed, f"{pointer}/filter"))


_PERMISSION_METHODS = ("api", "back_in_stock", "bigcommerce", "bulk_remove", "campaign_monitor",
                       "carrier_deactivation", "checkout", "constant_contact", "exact_target", "facebook",
                       "failed_age_gate", "inbound_message", "integration", "mad_mimi", "magento_two",
                       "mailbox_provider", "manual_add", "manual_import", "manual_remove", "message_blocked",
                       "netsuite", "preference_page", "provided_landline", "provided_no_age", "sftp", "shopify",
                       "social_instagram_message", "spam_complaint", "square", "wix", "woocommerce")
