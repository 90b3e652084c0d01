"""Imports every table module so `metadata` knows the whole schema (migrations, tests).
Each area keeps its tables in its own module and adds one import line here."""

from menura.store import tables
from menura.store.tables import metadata

__all__ = ["metadata", "tables"]
