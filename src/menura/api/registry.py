"""Every category module, in one list: adding a category is adding it here."""

from __future__ import annotations

from menura.api import accounts, admin, tags
from menura.api.operation import Category, Operation

CATEGORIES: list[Category] = [accounts.api, tags.api, admin.api]


def all_operations() -> list[Operation]:
    return [op for category in CATEGORIES for op in category.operations]
