"""The `revision` header: which published Klaviyo revisions are accepted.

Where a later revision changed a shape, code asks `at_least(revision, "YYYY-MM-DD")`, so all
per-revision differences are found by searching for that call.
"""

from __future__ import annotations

import re

from menura.jsonapi.errors import ApiError

# Generally available revisions from 2024 on, as published in Klaviyo's changelog.
GA_REVISIONS: tuple[str, ...] = (
    "2024-02-15",
    "2024-05-15",
    "2024-06-15",
    "2024-07-15",
    "2024-10-15",
    "2025-01-15",
    "2025-04-15",
    "2025-07-15",
    "2025-10-15",
    "2026-01-15",
    "2026-04-15",
    "2026-07-15",
    "2026-10-15",
)
DEFAULT_REVISION = "2026-07-15"
_FORMAT = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z0-9]+)?$")


_parsed: dict[str, str] = {}  # accepted header values -> their revision (few distinct ones)


def parse_revision(header: str | None) -> str:
    """Return the revision date a request asked for, or raise the 400 Klaviyo answers."""
    known = _parsed.get(header) if header is not None else None
    if known is not None:
        return known
    date = _parse_revision(header)
    if len(_parsed) < 1000:
        _parsed[header] = date  # type: ignore[index]
    return date


def _parse_revision(header: str | None) -> str:
    if header is None or not header.strip():
        raise ApiError(400, "revision_header_missing", "Missing revision header.",
                       "The 'revision' header is required. Use a date such as "
                       f"'{DEFAULT_REVISION}'.", parameter="revision")
    match = _FORMAT.match(header.strip())
    if not match:
        raise ApiError(400, "invalid_revision", "Invalid revision header.",
                       f"'{header}' is not a valid revision. The format is YYYY-MM-DD[.suffix].",
                       parameter="revision")
    date = match.group(1)
    if date not in GA_REVISIONS:
        raise ApiError(400, "invalid_revision", "Invalid revision header.",
                       f"Revision '{date}' does not exist. Valid revisions: {', '.join(GA_REVISIONS)}.",
                       parameter="revision")
    return date


def at_least(revision: str, since: str) -> bool:
    return revision >= since


# Shape changes between revisions, named for what changed -> the first revision with the new shape.
# Handlers ask `changed(ctx.revision, NAME)`; every per-revision difference is listed here.
CHANGES: dict[str, str] = {
    # update_tag_group / delete_tag_group answered 200 with the tag group (still so at 2026-01-15);
    # 2026-07-15 is the earliest revision known to answer 204 with no body.
    "tag_group_writes_no_content": "2026-07-15",
    # Campaign tracking options is_add_utm/utm_params became add_tracking_params/custom_tracking_params.
    "campaign_tracking_params": "2024-10-15",
    # Campaign messages moved channel/label/content under `definition` (push support); send strategies
    # lost their options_static/options_throttled/options_sto wrappers.
    "campaign_message_definition": "2025-04-15",
    # assign_template_to_campaign_message answered 201 Created (2024-10-15 spec); 200 in later specs.
    # Assumed to change with the message definition overhaul.
    "campaign_assign_template_ok": "2025-04-15",
    # Campaigns became multi-channel: a campaign `definition`, audiences and messages as resources.
    "campaign_audience_resources": "2026-10-15",
}


def changed(revision: str, change: str) -> bool:
    """Whether a request at `revision` gets the newer shape of `change`."""
    return at_least(revision, CHANGES[change])
