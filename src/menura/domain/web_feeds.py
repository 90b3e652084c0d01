"""Web feeds: JSON or XML documents fetched from a URL on a schedule, cached, and exposed to
templates as `feeds.<name>` (`{% for item in feeds.Blog_posts.items %}`).

Refresh schedule (Klaviyo's): every 15 minutes, the feed must answer within 5 seconds; after three
hours of failures the feed is refreshed nightly with 30 seconds to answer; three failed nights in a
row make it critical. The last good content stays in use meanwhile."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from sqlalchemy import Connection, Row

from menura import ids
from menura.domain import remote_fetch
from menura.jsonapi import errors
from menura.store import web_feeds as store
from menura.store import work

REFRESH_KIND = "web_feed.refresh"
MAX_FEED_BYTES = int(3.3 * 1024 * 1024)
PERIODIC_INTERVAL = timedelta(minutes=15)
PERIODIC_TIMEOUT = 5.0
NIGHTLY_INTERVAL = timedelta(days=1)
NIGHTLY_TIMEOUT = 30.0
PERIODIC_FAILURES_BEFORE_NIGHTLY = 12  # three hours of 15-minute attempts
NIGHTLY_FAILURES_BEFORE_CRITICAL = 3
REQUEST_METHODS = ("get", "post")
CONTENT_TYPES = ("json", "xml")
# Feed names are template variables: letters, digits and underscores, not starting with "_".
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class FeedFormatError(ValueError):
    pass


# --------------------------------------------------------------------------- validation

def _check_name(conn: Connection, account_id: str, name: Any, except_id: str | None = None) -> str:
    pointer = "/data/attributes/name"
    if not isinstance(name, str) or not name:
        raise errors.invalid("'name' must be a non-empty string.", pointer=pointer)
    if len(name) > 255 or not _NAME.match(name):
        raise errors.invalid("A web feed name may contain only letters, digits and underscores, and must start "
                             "with a letter (templates refer to it as feeds.<name>).", pointer=pointer)
    if store.name_taken(conn, account_id, name, except_id=except_id):
        raise errors.conflict("duplicate_web_feed", f"A web feed named '{name}' already exists.", pointer=pointer)
    return name


def _check_url(url: Any, allowed_hosts: str) -> str:
    pointer = "/data/attributes/url"
    if not isinstance(url, str) or not url.strip():
        raise errors.invalid("'url' must be a non-empty string.", pointer=pointer)
    try:
        remote_fetch.check_url(url.strip(), remote_fetch.allowed_hosts(allowed_hosts))
    except remote_fetch.FetchError as exc:
        raise errors.invalid(str(exc), pointer=pointer) from None
    return url.strip()


def _check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise errors.invalid(f"'{name}' must be one of {', '.join(allowed)}.", pointer=f"/data/attributes/{name}")
    return str(value)


# --------------------------------------------------------------------------- CRUD

def get_feed(conn: Connection, account_id: str, feed_id: str) -> Row[Any]:
    row = store.get_feed(conn, account_id, feed_id)
    if row is None:
        raise errors.not_found(f"A web feed with id '{feed_id}' does not exist.")
    return row


def _schedule_refresh(conn: Connection, row: Row[Any], now: datetime) -> None:
    """Start a refresh chain for this version of the feed; a later update starts a new chain and
    the old one stops at its next run (its generation no longer matches)."""
    generation = row.updated.isoformat()
    work.enqueue(conn, kind=REFRESH_KIND, payload={"feed_id": row.id, "generation": generation}, now=now,
                 account_id=row.account_id, dedupe_key=f"{row.id}:{generation}:start")


def create_feed(conn: Connection, account_id: str, now: datetime, attributes: Mapping[str, Any],
                allowed_hosts: str) -> Row[Any]:
    for required in ("name", "url", "request_method", "content_type"):
        if attributes.get(required) is None:
            raise errors.invalid(f"'{required}' is a required field.", pointer=f"/data/attributes/{required}")
    values = {
        "name": _check_name(conn, account_id, attributes["name"]),
        "url": _check_url(attributes["url"], allowed_hosts),
        "request_method": _check_choice(attributes["request_method"], "request_method", REQUEST_METHODS),
        "content_type": _check_choice(attributes["content_type"], "content_type", CONTENT_TYPES),
    }
    feed_id = ids.token(6)
    while store.feed_exists(conn, feed_id):
        feed_id = ids.token(6)
    store.insert_feed(conn, {"id": feed_id, "account_id": account_id, **values, "status": "refreshing", "content": None,
                             "fetched_at": None, "last_error": None, "failures": 0, "created": now,
                             "updated": now})
    row = get_feed(conn, account_id, feed_id)
    _schedule_refresh(conn, row, now)
    return row


def update_feed(conn: Connection, account_id: str, feed_id: str, now: datetime, attributes: Mapping[str, Any],
                allowed_hosts: str) -> Row[Any]:
    row = get_feed(conn, account_id, feed_id)
    values: dict[str, Any] = {}
    if attributes.get("name") is not None:
        values["name"] = _check_name(conn, account_id, attributes["name"], except_id=feed_id)
    if attributes.get("url") is not None:
        values["url"] = _check_url(attributes["url"], allowed_hosts)
    if attributes.get("request_method") is not None:
        values["request_method"] = _check_choice(attributes["request_method"], "request_method", REQUEST_METHODS)
    if attributes.get("content_type") is not None:
        values["content_type"] = _check_choice(attributes["content_type"], "content_type", CONTENT_TYPES)
    if not values:
        return row
    refetch = any(values.get(k, row._mapping[k]) != row._mapping[k] for k in ("url", "request_method", "content_type"))
    values["updated"] = now
    if refetch:
        values.update(failures=0, last_error=None, status="refreshing")
    store.update_feed(conn, account_id, feed_id, values)
    row = get_feed(conn, account_id, feed_id)
    # A new version of the feed: its own refresh chain starts now and the old one stops.
    _schedule_refresh(conn, row, now)
    return row


def delete_feed(conn: Connection, account_id: str, feed_id: str) -> None:
    if not store.delete_feed(conn, account_id, feed_id):
        raise errors.not_found(f"A web feed with id '{feed_id}' does not exist.")


# --------------------------------------------------------------------------- content

def parse_feed(content: bytes, content_type: str) -> Any:
    """The feed as templates see it: JSON as is; XML as nested mappings (attributes as '@name',
    text beside attributes as '#text'), e.g. `feeds.Blog.rss.channel.item`."""
    if content_type == "json":
        try:
            return json.loads(content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedFormatError(f"the feed is not valid JSON: {exc}") from None
    try:
        # Entities are not expanded: no billion-laughs, no external entities.
        return xmltodict.parse(content, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise FeedFormatError(f"the feed is not valid XML: {exc}") from None


@dataclass(frozen=True)
class RefreshOutcome:
    values: dict[str, Any]  # columns to write on the feed
    next_run: datetime


def fetch_mode(failures: int) -> tuple[float, timedelta]:
    """(timeout, interval) for a feed with this many consecutive failures."""
    if failures >= PERIODIC_FAILURES_BEFORE_NIGHTLY:
        return NIGHTLY_TIMEOUT, NIGHTLY_INTERVAL
    return PERIODIC_TIMEOUT, PERIODIC_INTERVAL


def refresh(row: Row[Any], now: datetime, allowed_hosts: str) -> RefreshOutcome:
    """Fetch and parse one feed; what to store and when to try next. Never raises for a bad feed:
    failures are recorded on the feed, which keeps its last good content."""
    timeout, _interval = fetch_mode(row.failures)
    try:
        fetched = remote_fetch.fetch(row.url, remote_fetch.allowed_hosts(allowed_hosts),
                                     method=row.request_method, max_bytes=MAX_FEED_BYTES, timeout=timeout)
        content = parse_feed(fetched.content, row.content_type)
    except (remote_fetch.FetchError, FeedFormatError) as exc:
        failures = row.failures + 1
        if failures >= PERIODIC_FAILURES_BEFORE_NIGHTLY + NIGHTLY_FAILURES_BEFORE_CRITICAL:
            status = "critical_nightly_refresh_timeout"
        elif failures >= PERIODIC_FAILURES_BEFORE_NIGHTLY:
            status = "warning_nightly_refresh_timeout"
        else:
            status = "warning_periodic_refresh_timeout"
        return RefreshOutcome({"failures": failures, "status": status, "last_error": str(exc)[:1000]},
                              now + fetch_mode(failures)[1])
    return RefreshOutcome({"failures": 0, "status": "ok", "last_error": None, "content": content,
                           "fetched_at": now}, now + PERIODIC_INTERVAL)


def schedule_next(conn: Connection, row: Row[Any], generation: str, run_at: datetime, now: datetime) -> None:
    work.enqueue(conn, kind=REFRESH_KIND, payload={"feed_id": row.id, "generation": generation}, now=now,
                 run_at=run_at, account_id=row.account_id, dedupe_key=f"{row.id}:{generation}:{run_at.isoformat()}")
