"""The manage-preferences page's rules: what a recipient sees (channel consent, the lists they are on or
left) and what a submitted form changes — at once, with Klaviyo's events ("Unsubscribed",
"Unsubscribed from List", "Subscribed to List", SMS consent events)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import outcomes
from menura.domain import consent, subscriptions
from menura.domain.events import record_event
from menura.store import lists as list_store
from menura.store import profiles as profile_store

METHOD = "PREFERENCE_PAGE"


@dataclass(frozen=True)
class ListChoice:
    id: str
    name: str
    subscribed: bool


@dataclass(frozen=True)
class Preferences:
    email: str | None
    email_subscribed: bool
    phone_number: str | None
    sms_subscribed: bool
    lists: Sequence[ListChoice]


def view(conn: Connection, account_id: str, profile_id: str) -> Preferences | None:
    profile = profile_store.get_profile(conn, account_id, profile_id)
    if profile is None:
        return None
    member_of = set(list_store.list_ids_for_profile(conn, account_id, profile_id))
    suppressed = {s.list_id for s in profile_store.list_suppressions_for(conn, account_id, [profile_id]).get(
        profile_id, ())}
    rows = list_store.lists_by_ids(conn, account_id, sorted(member_of | suppressed))
    choices = [ListChoice(r.id, r.name, r.id in member_of and r.id not in suppressed) for r in rows]
    return Preferences(
        email=profile.email,
        email_subscribed=consent.can_receive_email_marketing(profile),
        phone_number=profile.phone_number,
        sms_subscribed=consent.can_receive_sms_marketing(profile),
        lists=sorted(choices, key=lambda c: c.name.lower()),
    )


def apply(conn: Connection, message: Row[Any], form: Mapping[str, Sequence[str]], now: datetime) -> None:
    """Apply a submitted preferences form for the message's profile. Checkboxes: `email_marketing`,
    `sms_marketing`, and one `list` value per list to stay on."""
    account_id, profile_id = message.account_id, message.profile_id
    current = view(conn, account_id, profile_id)
    if current is None:
        return
    wants_email = bool(form.get("email_marketing"))
    if current.email is not None and wants_email != current.email_subscribed:
        if wants_email:
            consent.set_email_marketing(conn, account_id=account_id, profile_id=profile_id, consent=consent.SUBSCRIBED,
                                        now=now, method=METHOD)
        else:
            outcomes.unsubscribe(conn, message, now=now, method_detail="preferences page", channel="email")
    wants_sms = bool(form.get("sms_marketing"))
    if current.phone_number is not None and wants_sms != current.sms_subscribed:
        if wants_sms:
            consent.set_sms_marketing(conn, account_id=account_id, profile_id=profile_id, consent=consent.SUBSCRIBED,
                                      now=now, method=METHOD)
        else:
            outcomes.unsubscribe_sms(conn, account_id, profile_id, now=now, method_detail="preferences page")
    keep = set(form.get("list", ()))
    rows = {r.id: r for r in list_store.lists_by_ids(conn, account_id, [c.id for c in current.lists])}
    for choice in current.lists:
        row = rows.get(choice.id)
        if row is None or (choice.id in keep) == choice.subscribed:
            continue
        if choice.id in keep:
            subscriptions.join_list(conn, account_id, row, profile_id, now, method=METHOD)
        else:
            _leave_list(conn, account_id, row, profile_id, now)


def _leave_list(conn: Connection, account_id: str, list_row: Row[Any], profile_id: str, now: datetime) -> None:
    consent.add_list_suppression(conn, account_id=account_id, profile_id=profile_id, list_id=list_row.id,
                                 reason=consent.UNSUBSCRIBE, now=now)
    list_store.remove_members(conn, list_row.id, [profile_id])
    record_event(conn, account_id=account_id, profile_id=profile_id, metric_name=subscriptions.UNSUBSCRIBED_FROM_LIST,
                 properties={"List": list_row.name, "list_id": list_row.id, "method": METHOD}, time=now, now=now)
