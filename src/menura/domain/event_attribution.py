"""Which message an event is attributed to (an event's `attributions`): the campaign message the
profile last opened or clicked before the event, at most the attribution window earlier — the same
last-touch rule campaign reports count conversions with. Events that are themselves outcomes of a
message (they carry its `$message`) are not attributed."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from menura.domain.campaign_reports import ATTRIBUTION_WINDOW, ENGAGEMENT
from menura.store import events as store


@dataclass(frozen=True)
class Attribution:
    id: str
    event_id: str
    attributed_event_id: str
    campaign_id: str
    message_id: str | None


def attributions_for(conn: Connection, account_id: str, rows: Sequence[Any]) -> dict[str, list[Attribution]]:
    """Attributions of each event row (`id`, `profile_id`, `occurred_at`, `properties`)."""
    out: dict[str, list[Attribution]] = {row.id: [] for row in rows}
    candidates = [row for row in rows if "$message" not in (row.properties or {})]
    if not candidates:
        return out
    earliest = min(row.occurred_at for row in candidates) - ATTRIBUTION_WINDOW
    latest = max(row.occurred_at for row in candidates)
    touches: dict[str, list[Any]] = defaultdict(list)
    for touch in store.campaign_touches(conn, account_id, ENGAGEMENT, {row.profile_id for row in candidates},
                                        earliest, latest):
        touches[touch.profile_id].append(touch)
    for row in candidates:
        touch = _last_touch(touches.get(row.profile_id, ()), row.occurred_at)
        if touch is not None and touch.id != row.id:
            out[row.id].append(Attribution(_attribution_id(row.id, touch.id), row.id, touch.id, touch.campaign_id,
                                           touch.message_id))
    return out


def _last_touch(timeline: Sequence[Any], when: datetime) -> Any:
    """The latest engagement at or before `when` within the window (the timeline is time-ordered)."""
    found = None
    for touch in timeline:
        if touch.occurred_at > when:
            break
        found = touch
    if found is None or when - found.occurred_at > ATTRIBUTION_WINDOW:
        return None
    return found


def _attribution_id(event_id: str, attributed_event_id: str) -> str:
    return hashlib.sha256(f"{event_id}:{attributed_event_id}".encode()).hexdigest()[:32]
