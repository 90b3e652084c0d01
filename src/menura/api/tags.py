"""Tags category (operations declared by the tags work)."""

from __future__ import annotations

from menura.api.operation import Category

api = Category("Tags")
