"""Accounts: the tenant every row belongs to. The account id doubles as its public API key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from menura import ids
from menura.domain import keys
from menura.store import accounts as store
from menura.store.db import Database


@dataclass(frozen=True)
class NewAccount:
    account_id: str
    private_api_key: str
    public_api_key: str


def create_account(db: Database, now: datetime, *, name: str, timezone: str = "UTC",
                   currency: str = "USD", locale: str = "en-US", sender_email: str = "",
                   test_account: bool = False) -> NewAccount:
    account_id = ids.short_id(6)
    with db.write() as conn:
        while store.account_exists(conn, account_id):
            account_id = ids.short_id(6)
        store.insert_account(conn, {
            "id": account_id, "name": name, "test_account": test_account,
            "contact_information": {
                "default_sender_name": name,
                "default_sender_email": sender_email or f"hello@{_slug(name)}.example",
                "website_url": "",
                "organization_name": name,
                "street_address": {"address1": "", "address2": "", "city": "", "region": "",
                                   "country": "", "zip": ""},
            },
            "industry": None, "timezone": timezone, "preferred_currency": currency, "locale": locale,
            "created": now, "updated": now,
        })
    _, private = keys.create_key(db, account_id, now, label="default")
    return NewAccount(account_id, private, account_id)


def attributes(row: Any) -> dict[str, Any]:
    return {
        "test_account": row.test_account,
        "contact_information": row.contact_information,
        "industry": row.industry,
        "timezone": row.timezone,
        "preferred_currency": row.preferred_currency,
        "public_api_key": row.id,
        "locale": row.locale,
    }


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum()) or "shop"
