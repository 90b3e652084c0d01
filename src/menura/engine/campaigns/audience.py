"""A campaign's audience, resolved at send time and streamed by profile-id cursor.

Recipients are the profiles in any included list or segment and in no excluded one. They are read
in id order, a batch at a time: each source is read with a primary-key range scan from the cursor
(`member_ids_after`) and the sources are merged, so memory holds a few batches however large the
audience is. A batch is then narrowed to the profiles that may receive the channel:

* email: an address, not unsubscribed, not suppressed (Klaviyo: consent is implicit for email, so
  "never subscribed" members of a list or segment receive campaigns);
* sms: a phone number and explicit SMS marketing consent;
* list suppressions: a profile suppressed from a list is not reached through that list (it still is
  through another included list or a segment).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row

from menura.domain import consent
from menura.store import campaigns as store

LIST, SEGMENT = "list", "segment"


@dataclass(frozen=True)
class Audience:
    account_id: str
    included: dict[str, tuple[str, ...]]  # kind -> ids
    excluded: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, conn: Connection, account_id: str, included: Sequence[str], excluded: Sequence[str]) -> Audience:
        kinds = store.audience_kinds(conn, account_id, [*included, *excluded])

        def split(ids_: Sequence[str]) -> dict[str, tuple[str, ...]]:
            # Ids whose list or segment was deleted since the campaign was made are simply gone.
            return {kind: tuple(i for i in ids_ if kinds.get(i) == kind) for kind in (LIST, SEGMENT)}

        return cls(account_id, split(included), split(excluded))

    @property
    def empty(self) -> bool:
        return not any(self.included.values())


@dataclass(frozen=True)
class Batch:
    ids: list[str]  # candidate profile ids of this batch, in order
    cursor: str | None  # resume after this id; None when the audience is exhausted
    done: bool


def next_batch(conn: Connection, audience: Audience, after: str | None, limit: int) -> Batch:
    """The next candidates after `after`: in an included source, in no excluded one."""
    fetched: list[list[str]] = []
    bound: str | None = None  # beyond it some source may still hold ids we have not read
    for kind, group_ids in audience.included.items():
        for group_id in group_ids:
            ids_ = store.member_ids_after(conn, kind, group_id, after, limit)
            fetched.append(ids_)
            if len(ids_) == limit and (bound is None or ids_[-1] < bound):
                bound = ids_[-1]
    merged = sorted({pid for ids_ in fetched for pid in ids_ if bound is None or pid <= bound})
    if not merged:
        return Batch([], None, True)
    excluded: set[str] = set()
    for kind, group_ids in audience.excluded.items():
        excluded |= store.members_among(conn, kind, group_ids, merged)
    return Batch([pid for pid in merged if pid not in excluded], merged[-1], bound is None)


def iterate(conn: Connection, audience: Audience, limit: int) -> Iterator[list[str]]:
    cursor: str | None = None
    while True:
        batch = next_batch(conn, audience, cursor, limit)
        if batch.ids:
            yield batch.ids
        if batch.done:
            return
        cursor = batch.cursor


def count_candidates(conn: Connection, audience: Audience) -> int:
    return store.count_audience(conn, audience.included, audience.excluded)


def can_receive(row: Any, channel: str) -> str | None:
    """None if the profile may receive marketing on `channel`, else why not."""
    if channel == "email":
        if not row.email:
            return "no_email"
        if row.email_suppression_reason is not None:
            return "suppressed"
        if row.email_consent == consent.UNSUBSCRIBED:
            return "unsubscribed"
        return None
    if channel == "sms":
        if not row.phone_number:
            return "no_phone_number"
        if row.sms_consent != consent.SUBSCRIBED:
            return "no_sms_consent"
        return None
    return "channel_not_configured"


def list_suppressed(conn: Connection, audience: Audience, profile_ids: Collection[str]) -> set[str]:
    """Profiles reached only through included lists they are suppressed from."""
    lists = audience.included.get(LIST, ())
    if not lists:
        return set()
    suppressions = store.list_suppressions_among(conn, audience.account_id, lists, profile_ids)
    if not suppressions:
        return set()
    candidates = set(suppressions)
    via_segment = store.members_among(conn, SEGMENT, audience.included.get(SEGMENT, ()), candidates)
    memberships = store.memberships_among(conn, LIST, lists, candidates)
    return {pid for pid in candidates - via_segment
            if not (memberships.get(pid, set()) - suppressions[pid])}


def eligible(conn: Connection, audience: Audience, channel: str, profile_ids: Sequence[str], *,
             full: bool = True) -> tuple[list[Row[Any]], dict[str, str]]:
    """(profiles that may receive the campaign, in order; skipped id -> reason). Without `full` the
    rows hold only what the check and scheduling read (`store.CHECK_COLUMNS`)."""
    rows = store.profiles_for_send(conn, audience.account_id, profile_ids, full=full)
    skipped: dict[str, str] = {}
    ok: list[Row[Any]] = []
    for pid in profile_ids:
        row = rows.get(pid)
        reason = "deleted" if row is None else can_receive(row, channel)
        if reason:
            skipped[pid] = reason
        else:
            ok.append(row)  # type: ignore[arg-type]
    for pid in list_suppressed(conn, audience, [r.id for r in ok]):
        skipped[pid] = "list_suppressed"
    return [r for r in ok if r.id not in skipped], skipped


def groups_of(conn: Connection, audience: Audience, order: Sequence[str], profile_ids: Collection[str]
              ) -> dict[str, str]:
    """profile id -> the included list or segment the campaign reaches it through: the first of the
    campaign's audiences (in the order given) that holds it. Reports group by it."""
    member_of: dict[str, set[str]] = {}
    for kind, group_ids in audience.included.items():
        for pid, groups in store.memberships_among(conn, kind, group_ids, profile_ids).items():
            member_of.setdefault(pid, set()).update(groups)
    return {pid: next(g for g in order if g in groups) for pid, groups in member_of.items()
            if any(g in groups for g in order)}
