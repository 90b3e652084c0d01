"""The public side of two SMS render options: short tracked links (`shorten_links`) and the company
info link (`add_info_link`).

A short link names the message and the link's place in it; its destination is read from the message
as sent, so only links that were in the message redirect. The info link leads to the sender's contact
information (name, postal address, email, website), which some jurisdictions require in every
commercial message (Klaviyo help center, "Understanding the company information link for an SMS":
Canada and New Zealand); a click on it is not a click on the message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from menura.delivery import tracking
from menura.delivery.sms_billing import destination_country
from menura.delivery.sms_flow import load_payload
from menura.domain import templates as template_rules
from menura.store import accounts as account_store
from menura.store import delivery as store

# Where Klaviyo adds the company info link by default.
INFO_LINK_COUNTRIES = frozenset({"CA", "NZ"})


def needs_info_link(phone_number: str | None) -> bool:
    return destination_country(phone_number) in INFO_LINK_COUNTRIES


def resolve_short_link(conn: Connection, signer: tracking.TokenSigner, code: str) -> tuple[Row[Any], str] | None:
    """(the message, the destination URL) of a short link; None when forged or the message is gone."""
    try:
        delivery_id, index = signer.parse_short_code(code)
    except tracking.InvalidToken:
        return None
    row = store.get_message(conn, delivery_id)
    if row is None:
        return None
    destinations = load_payload(row).get("links") or []
    if index >= len(destinations) or not isinstance(destinations[index], str):
        return None
    return row, destinations[index]


def organization_info(conn: Connection, signer: tracking.TokenSigner, token: str,
                      now: datetime) -> dict[str, Any] | None:
    """The contact information an info link shows (None when the token is forged or the account gone)."""
    try:
        fields = signer.verify(tracking.INFO, token)
    except tracking.InvalidToken:
        return None
    if len(fields) != 1 or not isinstance(fields[0], str) or account_store.get_account(conn, fields[0]) is None:
        return None
    _, organization = template_rules.account_env(conn, fields[0], now)
    return organization
