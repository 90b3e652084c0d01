"""Imports every table module so `metadata` knows the whole schema (migrations, tests).
Each area keeps its tables in its own module and adds one import line here."""

from menura.store import (
    campaign_tables,
    delivery_tables,
    event_tables,
    list_tables,
    profile_tables,
    segment_tables,
    tables,
    template_tables,
)
from menura.store.tables import metadata

__all__ = [
    "campaign_tables",
    "delivery_tables",
    "event_tables",
    "list_tables",
    "metadata",
    "profile_tables",
    "segment_tables",
    "tables",
    "template_tables",
]
