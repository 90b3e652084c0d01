"""Keeping segment membership fresh.

- Live: a profile change, a new event, a list membership change or another segment's membership
  change re-evaluates, for that one profile, only the active segments whose definition reads what
  changed (their `dependencies`), in the transaction that made the change.
- Full recompute (durable work `segment.recompute`) after a segment is created, its definition
  changes or it is reactivated; `is_processing` is true until it lands.
- Time-relative definitions are recomputed on a schedule (`segment.refresh`, every
  `dependencies.refresh_seconds`) so members age out of "in the last N days" windows.

Entering or leaving emits a signal (signals.py) in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from menura.clock import system_now
from menura.domain import segment_conditions as sc
from menura.engine.segments import signals
from menura.engine.segments.compiler import Compiler
from menura.store import segments as store
from menura.store import server_state, work
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler

log = logging.getLogger(__name__)

RECOMPUTE = "segment.recompute"
REFRESH = "segment.refresh"
# A batch of changes this large re-evaluates dependent segments in full rather than per profile.
CASCADE_PER_PROFILE_LIMIT = 50
_CACHE_KEY = "menura.segment_specs"
_MERGED_KEY = "menura.segment_merged_profiles"


@dataclass(frozen=True)
class Spec:
    id: str
    version: int
    definition: sc.Definition
    deps: sc.Dependencies


# (segment id, version, updated) -> parsed definition: the triple names one definition for good.
_parsed: dict[tuple[str, int, Any], sc.Definition] = {}


def spec_of(row: Any) -> Spec:
    key = (row.id, row.version, row.updated)
    definition = _parsed.get(key)
    if definition is None:
        definition = sc.parse_definition(row.definition)
        if len(_parsed) > 4096:
            _parsed.clear()
        _parsed[key] = definition
    return Spec(row.id, row.version, definition, sc.Dependencies.from_json(row.dependencies or {}))


@dataclass
class _AccountState:
    specs: list[Spec]
    kinds: dict[str, str]
    now: datetime


def current_time(conn: Connection) -> datetime:
    """The time segment windows are measured from: the virtual clock when one is kept in the
    database (see menura.clock), the machine's otherwise."""
    value = server_state.get_value(conn, "virtual_clock")
    return datetime.fromisoformat(value).astimezone(UTC) if value else system_now()


def _state(conn: Connection, account_id: str) -> _AccountState:
    """The account's active segments, loaded once per transaction (a bulk ingest batch calls the
    hooks thousands of times in one transaction)."""
    transaction = conn.get_transaction()
    cache = conn.info.get(_CACHE_KEY)
    if cache is None or cache[0] is not transaction:
        cache = (transaction, {})
        conn.info[_CACHE_KEY] = cache
    states: dict[str, _AccountState] = cache[1]
    state = states.get(account_id)
    if state is None:
        specs = [spec_of(row) for row in store.active_segments(conn, account_id)]
        groups = {g for spec in specs for g in spec.deps.groups}
        state = _AccountState(specs, group_kinds(conn, account_id, groups), current_time(conn))
        states[account_id] = state
    return state


def forget_cached_state(conn: Connection) -> None:
    conn.info.pop(_CACHE_KEY, None)


def group_kinds(conn: Connection, account_id: str, ids: Iterable[str]) -> dict[str, str]:
    ids = set(ids)
    kinds = dict.fromkeys(store.existing_list_ids(conn, account_id, ids), "list")
    kinds.update(dict.fromkeys(store.existing_segment_ids(conn, account_id, ids), "segment"))
    return kinds


# --------------------------------------------------------------------------- live re-evaluation


def reevaluate(conn: Connection, account_id: str, profile_id: str, specs: Sequence[Spec]) -> None:
    """Re-evaluate one profile against `specs` and apply entries and exits."""
    if not specs or not store.profile_exists(conn, account_id, profile_id):
        return
    state = _state(conn, account_id)
    compiler = Compiler(conn.dialect.name, account_id, state.now, state.kinds)
    results = store.evaluate_profile(conn, account_id, profile_id,
                                     {spec.id: compiler.definition(spec.definition) for spec in specs})
    current = store.memberships_of(conn, account_id, profile_id)
    changes = []
    for segment_id, member in results.items():
        if member and segment_id not in current:
            store.add_members(conn, account_id, segment_id, [profile_id], state.now)
            changes.append(signals.MembershipChange(account_id, segment_id, profile_id, True, state.now))
        elif not member and segment_id in current:
            store.remove_members(conn, account_id, segment_id, [profile_id], state.now)
            changes.append(signals.MembershipChange(account_id, segment_id, profile_id, False, state.now))
    signals.emit(conn, changes)


def on_event(conn: Connection, account_id: str, profile_id: str, metric_id: str) -> None:
    specs = [s for s in _state(conn, account_id).specs if metric_id in s.deps.metrics]
    reevaluate(conn, account_id, profile_id, specs)


def on_profile_changed(conn: Connection, account_id: str, profile_id: str) -> None:
    merged_into = conn.info.get(_MERGED_KEY, set())
    if profile_id in merged_into:
        # A merge brought events and memberships along: every segment may have changed its mind.
        merged_into.discard(profile_id)
        specs = _state(conn, account_id).specs
    else:
        specs = [s for s in _state(conn, account_id).specs if s.deps.profile]
    reevaluate(conn, account_id, profile_id, specs)


def on_list_membership_changed(conn: Connection, account_id: str, list_id: str, profile_ids: Sequence[str]) -> None:
    specs = [s for s in _state(conn, account_id).specs if list_id in s.deps.groups]
    for profile_id in profile_ids:
        reevaluate(conn, account_id, profile_id, specs)


def on_segment_changes(conn: Connection, changes: Sequence[signals.MembershipChange]) -> None:
    """Segments built on segments follow their inputs."""
    by_account: dict[str, list[signals.MembershipChange]] = {}
    for change in changes:
        by_account.setdefault(change.account_id, []).append(change)
    for account_id, items in by_account.items():
        changed = {c.segment_id for c in items}
        dependents = [s for s in _state(conn, account_id).specs if s.deps.groups & changed]
        if not dependents:
            continue
        if len(items) > CASCADE_PER_PROFILE_LIMIT:
            for spec in dependents:
                enqueue_recompute(conn, account_id, spec.id, spec.version, items[0].at)
            continue
        for profile_id in dict.fromkeys(c.profile_id for c in items):
            reevaluate(conn, account_id, profile_id, dependents)


def on_profile_deleted(conn: Connection, account_id: str, profile_id: str) -> None:
    store.forget_profile(conn, account_id, profile_id)


def on_profiles_merged(conn: Connection, account_id: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    """The merged profiles leave their segments (recorded, signalled); the survivor is
    re-evaluated against every segment by the profile change that ends the merge."""
    conn.info.setdefault(_MERGED_KEY, set()).add(survivor_id)
    now = current_time(conn)
    changes = []
    for profile_id in merged_ids:
        for segment_id in sorted(store.memberships_of(conn, account_id, profile_id)):
            store.remove_members(conn, account_id, segment_id, [profile_id], now)
            changes.append(signals.MembershipChange(account_id, segment_id, profile_id, False, now))
    signals.emit(conn, changes)


# --------------------------------------------------------------------------- full recompute


def enqueue_recompute(conn: Connection, account_id: str, segment_id: str, version: int, now: datetime) -> None:
    work.enqueue(conn, kind=RECOMPUTE, payload={"segment_id": segment_id, "version": version},
                 now=now, account_id=account_id)


def recompute(conn: Connection, row: Any, now: datetime) -> list[signals.MembershipChange]:
    """Materialize the segment's membership for its current definition; returns the changes."""
    spec = spec_of(row)
    kinds = group_kinds(conn, row.account_id, spec.deps.groups)
    condition = Compiler(conn.dialect.name, row.account_id, now, kinds).definition(spec.definition)
    if conn.dialect.name == "sqlite" and not store.has_members(conn, row.id):
        # A first compute only adds: let SQLite write the members straight from the query. (PostgreSQL
        # runs INSERT ... SELECT without parallel workers; a plain SELECT then one array insert is faster.)
        entering, leaving = store.add_matching_members(conn, row.account_id, row.id, condition, now), []
    else:
        wanted = store.matching_profile_ids(conn, row.account_id, condition)
        current = store.member_ids(conn, row.id)
        entering = sorted(wanted - current)
        leaving = sorted(current - wanted)
        store.add_members(conn, row.account_id, row.id, entering, now)
        store.remove_members(conn, row.account_id, row.id, leaving, now)
    changes = [signals.MembershipChange(row.account_id, row.id, pid, True, now) for pid in entering]
    changes += [signals.MembershipChange(row.account_id, row.id, pid, False, now) for pid in leaving]
    forget_cached_state(conn)
    signals.emit(conn, changes)
    return changes


def _schedule_refresh(conn: Connection, row: Any, now: datetime) -> None:
    seconds = (row.dependencies or {}).get("refresh_seconds")
    if not seconds or not row.is_active:
        return
    run_at = now + timedelta(seconds=seconds)
    slot = int(run_at.timestamp()) // int(seconds)
    work.enqueue(conn, kind=REFRESH, payload={"segment_id": row.id, "version": row.version}, now=now,
                 run_at=run_at, account_id=row.account_id, dedupe_key=f"{row.id}:{row.version}:{slot}")


@work_handler(RECOMPUTE)
def handle_recompute(ctx: WorkContext, item: WorkItem) -> None:
    _run(ctx, item, refresh=False)


@work_handler(REFRESH)
def handle_refresh(ctx: WorkContext, item: WorkItem) -> None:
    _run(ctx, item, refresh=True)


def _run(ctx: WorkContext, item: WorkItem, *, refresh: bool) -> None:
    segment_id, version = item.payload["segment_id"], int(item.payload["version"])
    now = ctx.now()
    with ctx.db.write() as conn:
        row = store.get_segment(conn, item.account_id or "", segment_id, lock="update")
        if row is None or row.version != version:
            ctx.complete(conn)  # deleted, or a newer definition has its own job
            return
        if row.is_active:
            changes = recompute(conn, row, now)
            log.info("segment %s: %d entered, %d left", segment_id, sum(c.entered for c in changes),
                     sum(not c.entered for c in changes))
        if not refresh:
            store.set_processing(conn, segment_id, version, processing=False, now=now)
        _schedule_refresh(conn, row, now)
        ctx.complete(conn)


# --------------------------------------------------------------------------- wiring


def register_hooks() -> None:
    """Plug into the other areas' hooks; idempotent."""
    from menura.domain import events as event_rules
    from menura.domain import lists as list_rules
    from menura.domain import profiles as profile_rules

    if on_event not in event_rules.EVENT_HOOKS:
        event_rules.EVENT_HOOKS.append(on_event)
    for name, hook in (("PROFILE_CHANGE_HOOKS", on_profile_changed), ("PROFILE_DELETE_HOOKS", on_profile_deleted),
                       ("PROFILE_MERGE_HOOKS", on_profiles_merged)):
        hooks = getattr(profile_rules, name, None)
        if hooks is not None and hook not in hooks:
            hooks.append(hook)
    profile_rules.PROFILE_SEGMENT_IDS = store.segment_ids_for_profile
    list_hooks = getattr(list_rules, "LIST_MEMBERSHIP_HOOKS", None)
    if list_hooks is not None and on_list_membership_changed not in list_hooks:
        list_hooks.append(on_list_membership_changed)
    signals.subscribe(on_segment_changes)


register_hooks()
