"""Campaign values reports (`query_campaign_values`), computed from the outcome events delivery
records for each campaign send (attributed by their `$campaign` and `$message` properties).

Documented Klaviyo facts used: campaign performance "is calculated based on send date" (Reporting
API overview), so a report covers the campaigns sent in its time frame with all their outcomes;
rate statistics are fractions in [0, 1]; the default grouping is campaign_id, campaign_message_id,
send_channel and campaign_id and campaign_message_id are always part of it; filters combine with
AND only, `equals`/`contains-any` on scalar attributes and `contains-any`/`contains-all` on tags.

Definitions (Klaviyo's metric names): recipients = the profiles a message was received by, bounced
for or failed for; delivered = those that received it (Received Email / Received SMS) and did not
bounce or fail; opens, clicks, unsubscribes, spam complaints count events and their
`_unique` forms count profiles. A conversion (an event of the conversion metric) belongs to a
campaign when the profile's last opened/clicked message before it was that campaign's, at most
`ATTRIBUTION_WINDOW` earlier (last touch).

Group (`group`, `group_name`): the included list or segment the campaign reached the recipient
through (the first of the campaign's audiences that held them at send time, as recorded with each
message) and its name; it is also what Klaviyo's UTM values `group_id`/`group_name` mean. Grouping
by it splits each message's figures by those lists and segments; messages sent before it was
recorded answer one row with null group.

SMS billing (`delivery.sms_billing`): message_segment_count_sum adds up the segments of the bodies
actually sent to the recipients (GSM-7 160/153, UCS-2 70/67; an MMS is one); the credit usage
applies Klaviyo's credits per segment by destination country (MMS per message). Klaviyo bills failed
deliveries too, so both delivered and failed texts count. Spend is credits x the operator's price
per credit (`credit_price`, setting `sms_credit_price`; 0 when not set, as a self-hosted sender pays
its provider directly), and ROI is conversion value per unit of spend (Klaviyo: revenue for every
dollar spent), 0 without spend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import outcomes, tracking
from menura.delivery.sms_billing import text_cost
from menura.delivery.sms_flow import load_payload
from menura.domain import campaigns as campaign_rules
from menura.domain import segment_reports
from menura.domain import tags as tag_rules
from menura.domain.segment_reports import Timeframe
from menura.jsonapi import errors
from menura.jsonapi.filters import BoolOp, Condition, FilterField, validate_filter
from menura.store import campaigns as store
from menura.store import delivery as delivery_store
from menura.store import lists as list_store
from menura.store import metrics as metric_store
from menura.store import segments as segment_store

STATISTICS = ("average_order_value", "bounce_rate", "bounced", "bounced_or_failed", "bounced_or_failed_rate",
              "click_rate", "click_to_open_rate", "clicks", "clicks_unique", "conversion_rate", "conversion_uniques",
              "conversion_value", "conversions", "delivered", "delivery_rate", "failed", "failed_rate",
              "message_segment_count_sum", "open_rate", "opens", "opens_unique", "recipients",
              "revenue_per_recipient", "spam_complaint_rate", "spam_complaints", "text_message_credit_usage_amount",
              "text_message_roi", "text_message_spend", "unsubscribe_rate", "unsubscribe_uniques", "unsubscribes")
GROUP_BYS = ("campaign_id", "campaign_message_id", "campaign_message_name", "group", "group_name", "send_channel",
             "tag_id", "tag_name", "text_message_format", "variation", "variation_name")
BILLING_STATISTICS = ("message_segment_count_sum", "text_message_credit_usage_amount", "text_message_spend",
                      "text_message_roi")
DEFAULT_GROUP_BY = ("campaign_id", "campaign_message_id", "send_channel")
REQUIRED_GROUP_BY = ("campaign_id", "campaign_message_id")
ATTRIBUTION_WINDOW = timedelta(days=5)
ATTRIBUTES = "/data/attributes"

# Outcome metric -> what it counts, per channel.
EMAIL_METRICS = {"Received Email": "delivered", "Bounced Email": "bounced", "Opened Email": "opens",
                 "Clicked Email": "clicks", "Unsubscribed": "unsubscribes", "Marked Email as Spam": "spam"}
SMS_METRICS = {"Received SMS": "delivered", "Failed to Deliver SMS": "failed", "Clicked SMS": "clicks",
               "Unsubscribed from SMS": "unsubscribes"}
ENGAGEMENT = ("Opened Email", "Clicked Email", "Clicked SMS")
DELIVERY_OUTCOMES = ("delivered", "bounced", "failed")
CHANNEL_NAMES = {"email": "email", "sms": "sms", "mobile_push": "push-notification"}

_SCALAR = FilterField("string", single=frozenset({"equals"}), list=frozenset({"contains-any"}))
_LIST = FilterField("string", list=frozenset({"contains-any", "contains-all"}))
FILTER_SPEC = {name: _SCALAR for name in ("send_channel", "campaign_id", "campaign_message_id",
                                          "campaign_message_name", "variation", "variation_name",
                                          "text_message_format")}
FILTER_SPEC.update({"tag_id": _LIST, "tag_name": _LIST})


@dataclass
class Counts:
    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    uniques: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    conversions: int = 0
    conversion_profiles: set[str] = field(default_factory=set)
    conversion_value: float = 0.0
    segments: int = 0  # SMS segments sent
    credits: int = 0  # SMS credits they cost


# --------------------------------------------------------------------------- request checks


def check_statistics(raw: Any) -> list[str]:
    return segment_reports.check_statistics(raw, STATISTICS)


def check_group_by(raw: Any) -> list[str]:
    pointer = f"{ATTRIBUTES}/group_by"
    if raw is None:
        return list(DEFAULT_GROUP_BY)
    if not isinstance(raw, list):
        raise errors.invalid("'group_by' must be a list.", pointer=pointer)
    for index, item in enumerate(raw):
        if item not in GROUP_BYS:
            raise errors.invalid(f"'{item}' is not a valid group_by attribute.", pointer=f"{pointer}/{index}")
    for required in REQUIRED_GROUP_BY:
        if required not in raw:
            raise errors.invalid(f"group_by must include '{required}'.", pointer=pointer)
    return list(dict.fromkeys(raw))


def check_conversion_metric(conn: Connection, account_id: str, metric_id: Any) -> str:
    pointer = f"{ATTRIBUTES}/conversion_metric_id"
    if not isinstance(metric_id, str) or not metric_id:
        raise errors.invalid("'conversion_metric_id' is a required field.", pointer=pointer)
    if metric_store.get_metric(conn, account_id, metric_id) is None:
        err = errors.not_found(f"A metric with id '{metric_id}' does not exist.")
        err.pointer = pointer
        raise err
    return metric_id


def parse_filter(raw: Any) -> list[Condition]:
    if raw is None:
        return []
    if not isinstance(raw, str):
        raise errors.invalid("'filter' must be a string.", pointer=f"{ATTRIBUTES}/filter")
    try:
        node = validate_filter(raw, FILTER_SPEC)
    except errors.ApiError as err:
        err.parameter, err.pointer = None, f"{ATTRIBUTES}/filter"
        raise
    if node is None:
        return []
    parts = node.children if isinstance(node, BoolOp) and node.op == "and" else (node,)
    conditions: list[Condition] = []
    for part in parts:
        if not isinstance(part, Condition):
            raise errors.invalid("Only AND can combine campaign report filters.", pointer=f"{ATTRIBUTES}/filter")
        if any(c.field == part.field for c in conditions):
            raise errors.invalid(f"Only one filter can be used per attribute ('{part.field}').",
                                 pointer=f"{ATTRIBUTES}/filter")
        conditions.append(part)
    return conditions


def _matches(groupings: dict[str, Any], tags: dict[str, list[str]], condition: Condition) -> bool:
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    if condition.field in ("tag_id", "tag_name"):
        have = set(tags[condition.field])
        return bool(have & set(values)) if condition.op == "contains-any" else set(values) <= have
    value = groupings.get(condition.field)
    return value in values


# --------------------------------------------------------------------------- the report

Key = tuple[str, str, str | None]  # campaign, message, group (None unless grouping by group)


@dataclass(frozen=True)
class Group:
    campaign: Row[Any]
    message: Row[Any]
    group: str | None = None
    group_name: str | None = None

    def groupings(self, tag: Row[Any] | None = None) -> dict[str, Any]:
        name = self.message.label or self.campaign.name
        media = (self.message.content or {}).get("media_url")
        return {"campaign_id": self.campaign.id, "campaign_message_id": self.message.id,
                "campaign_message_name": name, "send_channel": CHANNEL_NAMES.get(self.campaign.channel),
                "variation": self.message.id, "variation_name": name, "group": self.group,
                "group_name": self.group_name,
                "text_message_format": ("MMS" if media else "SMS") if self.campaign.channel == "sms" else None,
                "tag_id": tag.id if tag is not None else None, "tag_name": tag.name if tag is not None else None}


def values_report(conn: Connection, account_id: str, frame: Timeframe, statistics: Sequence[str],
                  group_by: Sequence[str], conversion_metric_id: str, conditions: Sequence[Condition],
                  credit_price: float = 0.0) -> list[dict[str, Any]]:
    """`credit_price`: what one SMS credit costs the account (text_message_spend = credits x price)."""
    campaigns = {c.id: c for c in store.campaigns_sent_between(conn, account_id, frame.start, frame.end)}
    if not campaigns:
        return []
    messages = campaign_rules.messages_of(conn, account_id, list(campaigns))
    by_group = "group" in group_by or "group_name" in group_by
    billing = any(name in BILLING_STATISTICS for name in statistics)
    recipients = Recipients(conn, account_id, by_group, billing)
    counts = _count_outcomes(conn, account_id, list(campaigns), recipients)
    _count_conversions(conn, account_id, counts, list(campaigns), conversion_metric_id,
                       min(c.send_time for c in campaigns.values()), recipients)
    names = _group_names(conn, account_id, {key[2] for key in counts if key[2]}) if by_group else {}
    groups: dict[Key, Group] = {}
    for cid, ms in messages.items():
        for m in ms:
            found = sorted((k for k in counts if k[:2] == (cid, m.id)), key=lambda k: k[2] or "") if by_group else []
            for key in found or [(cid, m.id, None)]:
                groups[key] = Group(campaigns[cid], m, key[2], names.get(key[2] or ""))
    tags = tag_rules.tags_of(conn, account_id, "campaign", list(campaigns))
    by_tag = "tag_id" in group_by or "tag_name" in group_by
    results: list[dict[str, Any]] = []
    for key, group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")):
        campaign_tags = tags.get(group.campaign.id, [])
        tag_values = {"tag_id": [t.id for t in campaign_tags], "tag_name": [t.name for t in campaign_tags]}
        if not all(_matches(group.groupings(), tag_values, c) for c in conditions):
            continue
        stats = _statistics(counts.get(key, Counts()), statistics, credit_price)
        for tag in (campaign_tags if by_tag else [None]):
            groupings = group.groupings(tag)
            results.append({"groupings": {name: groupings[name] for name in group_by}, "statistics": stats})
    return results


class Recipients:
    """What delivery kept about each recipient's message, read only when a report needs it: the list
    or segment the campaign reached them through (grouping by group) and, for SMS, what was sent
    (billing statistics). A campaign message's send key is `campaign:<message id>:<profile id>`."""

    def __init__(self, conn: Connection, account_id: str, by_group: bool, billing: bool) -> None:
        self.conn, self.account_id, self.by_group, self.billing = conn, account_id, by_group, billing
        self._groups: dict[tuple[str, str], str | None] = {}

    def load(self, message_id: str, profile_ids: Collection[str], *, bodies: bool = False) -> dict[str, Row[Any]]:
        ids = {tracking.delivery_id(self.account_id, f"campaign:{message_id}:{pid}"): pid for pid in profile_ids}
        rows = delivery_store.messages_by_ids(self.conn, list(ids), bodies=bodies)
        found = {ids[did]: row for did, row in rows.items()}
        for pid in profile_ids:
            row = found.get(pid)
            self._groups[(message_id, pid)] = (row.attribution or {}).get(outcomes.GROUP) if row is not None else None
        return found

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Read the groups of these (message, profile) pairs in one go per message (not one by one)."""
        if not self.by_group:
            return
        missing: dict[str, set[str]] = defaultdict(set)
        for message_id, profile_id in pairs:
            if (message_id, profile_id) not in self._groups:
                missing[message_id].add(profile_id)
        for message_id, profile_ids in missing.items():
            self.load(message_id, profile_ids)

    def group_of(self, message_id: str, profile_id: str) -> str | None:
        if not self.by_group:
            return None
        if (message_id, profile_id) not in self._groups:
            self.load(message_id, [profile_id])
        return self._groups[(message_id, profile_id)]

    def groups_of(self, message_id: str, profile_ids: Collection[str]) -> dict[str, str | None]:
        if not self.by_group:
            return dict.fromkeys(profile_ids)
        missing = [pid for pid in profile_ids if (message_id, pid) not in self._groups]
        if missing:
            self.load(message_id, missing)
        return {pid: self._groups[(message_id, pid)] for pid in profile_ids}


def _group_names(conn: Connection, account_id: str, ids: set[str]) -> dict[str, str]:
    names = {row.id: row.name for row in list_store.lists_by_ids(conn, account_id, ids)}
    names.update({row.id: row.name for row in segment_store.segments_by_ids(conn, account_id, ids)})
    return names


def _count_outcomes(conn: Connection, account_id: str, campaign_ids: list[str],
                    recipients: Recipients) -> dict[Key, Counts]:
    names = {**EMAIL_METRICS, **SMS_METRICS}
    metric_names = store.metric_ids_by_name(conn, account_id, names)
    counts: dict[Key, Counts] = defaultdict(Counts)
    delivery = [mid for mid, name in metric_names.items() if names[name] in DELIVERY_OUTCOMES]
    engagement = [mid for mid in metric_names if mid not in delivery]
    if recipients.by_group:
        # Events do not carry the group: count them per profile, each in its recipient's group.
        for metric_id in engagement:
            what = names[metric_names[metric_id]]
            profiles: dict[Key, set[str]] = defaultdict(set)
            rows = store.engagement_of(conn, account_id, [metric_id], campaign_ids)
            recipients.prefetch((row.message_id, row.profile_id) for row in rows)
            for row in rows:
                key = (row.campaign_id, row.message_id, recipients.group_of(row.message_id, row.profile_id))
                counts[key].events[what] += 1
                profiles[key].add(row.profile_id)
            for key, found in profiles.items():
                counts[key].uniques[what] += len(found)
    else:
        for row in store.campaign_event_totals(conn, account_id, engagement, campaign_ids):
            what = names[metric_names[row.metric_id]]
            entry = counts[(row.campaign_id, row.message_id, None)]
            entry.events[what] += int(row.events)
            entry.uniques[what] += int(row.profiles)
    # A message can be received and bounce later (a DSN): each recipient counts once, and delivered
    # means "received and never bounced or failed".
    reached: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    sms_metrics = {mid for mid, name in metric_names.items() if name in SMS_METRICS}
    texts: set[tuple[str, str]] = set()
    for row in store.campaign_delivery_profiles(conn, account_id, delivery, campaign_ids):
        reached[(row.campaign_id, row.message_id)][names[metric_names[row.metric_id]]].add(row.profile_id)
        if row.metric_id in sms_metrics:
            texts.add((row.campaign_id, row.message_id))
    for (campaign_id, message_id), seen in reached.items():
        everyone = seen["delivered"] | seen["bounced"] | seen["failed"]
        group_of = recipients.groups_of(message_id, everyone)
        for group in set(group_of.values()):
            members = {pid for pid in everyone if group_of[pid] == group}
            entry = counts[(campaign_id, message_id, group)]
            bounced, failed = seen["bounced"] & members, seen["failed"] & members
            entry.events["recipients"] = len(members)
            entry.events["bounced"], entry.events["failed"] = len(bounced), len(failed)
            entry.events["delivered"] = len(members - bounced - failed)
        if recipients.billing and (campaign_id, message_id) in texts:
            _count_texts(counts, recipients, campaign_id, message_id, group_of)
    return counts


def _count_texts(counts: dict[Key, Counts], recipients: Recipients, campaign_id: str, message_id: str,
                 group_of: dict[str, str | None]) -> None:
    """Segments and credits of the SMS each recipient was sent (delivered or failed: both are billed)."""
    for pid, row in recipients.load(message_id, list(group_of), bodies=True).items():
        sent = load_payload(row)
        cost = text_cost(str(sent.get("body") or ""), phone_number=row.to_address, has_media=bool(sent.get("media")))
        entry = counts[(campaign_id, message_id, group_of[pid])]
        entry.segments += cost.segments
        entry.credits += cost.credits


def _count_conversions(conn: Connection, account_id: str, counts: dict[Key, Counts],
                       campaign_ids: list[str], metric_id: str, since: datetime, recipients: Recipients) -> None:
    engagement = store.metric_ids_by_name(conn, account_id, ENGAGEMENT)
    touches = store.engagement_of(conn, account_id, list(engagement), campaign_ids)
    engaged = {row.profile_id for row in touches}
    if not engaged:
        return
    recipients.prefetch((row.message_id, row.profile_id) for row in touches)
    rows = store.profile_events(conn, account_id, [*engagement, metric_id], engaged, since - ATTRIBUTION_WINDOW)
    wanted = set(campaign_ids)
    for profile_id, timeline in _by_profile(rows).items():
        touch: Row[Any] | None = None
        for event in timeline:
            if event.metric_id in engagement:
                touch = event
                continue
            if touch is None or touch.campaign_id not in wanted or event.occurred_at - touch.occurred_at > \
                    ATTRIBUTION_WINDOW:
                continue
            entry = counts[(touch.campaign_id, touch.message_id, recipients.group_of(touch.message_id, profile_id))]
            entry.conversions += 1
            entry.conversion_profiles.add(profile_id)
            entry.conversion_value += float(event.value or 0.0)


def _by_profile(rows: Iterable[Row[Any]]) -> dict[str, list[Row[Any]]]:
    timelines: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        timelines[row.profile_id].append(row)
    for timeline in timelines.values():
        # An engagement and a conversion at the same instant: the engagement came first.
        timeline.sort(key=lambda r: (r.occurred_at, r.campaign_id is None and r.flow_id is None))
    return timelines


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def _statistics(counts: Counts, wanted: Sequence[str], credit_price: float = 0.0) -> dict[str, Any]:
    e, u = counts.events, counts.uniques
    delivered, recipients = e["delivered"], e["recipients"]
    bounced, failed = e["bounced"], e["failed"]
    conversions, value = counts.conversions, round(counts.conversion_value, 2)
    uniques = len(counts.conversion_profiles)
    spend = round(counts.credits * credit_price, 2)
    every: dict[str, Any] = {
        "recipients": recipients, "delivered": delivered, "bounced": bounced, "failed": failed,
        "bounced_or_failed": bounced + failed, "opens": e["opens"], "opens_unique": u["opens"],
        "clicks": e["clicks"], "clicks_unique": u["clicks"], "unsubscribes": e["unsubscribes"],
        "unsubscribe_uniques": u["unsubscribes"], "spam_complaints": e["spam"], "conversions": conversions,
        "conversion_uniques": uniques, "conversion_value": value,
        "delivery_rate": _ratio(delivered, recipients), "bounce_rate": _ratio(bounced, recipients),
        "failed_rate": _ratio(failed, recipients), "bounced_or_failed_rate": _ratio(bounced + failed, recipients),
        "open_rate": _ratio(u["opens"], delivered), "click_rate": _ratio(u["clicks"], delivered),
        "click_to_open_rate": _ratio(u["clicks"], u["opens"]),
        "unsubscribe_rate": _ratio(u["unsubscribes"], delivered), "spam_complaint_rate": _ratio(e["spam"], delivered),
        "conversion_rate": _ratio(uniques, delivered), "average_order_value": _ratio(value, conversions),
        "revenue_per_recipient": _ratio(value, recipients),
        "message_segment_count_sum": counts.segments, "text_message_credit_usage_amount": counts.credits,
        "text_message_spend": spend, "text_message_roi": _ratio(value, spend),
    }
    return {name: every[name] for name in wanted}
