"""Read-only views of render data.

Django templates call zero-argument methods they reach (`{{ person.clear }}` would empty a dict), so
data is handed over as mappingproxy and tuple: nothing reachable from a template can mutate it.
Mapping keys still win over method names (`feeds.blog.items` is the feed's `items` key)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

MAX_DEPTH = 64


def freeze(value: Any, _depth: int = 0) -> Any:
    if isinstance(value, MappingProxyType | str | int | float | bool) or value is None:
        return value
    if _depth > MAX_DEPTH:
        return None  # deeper data cannot come from JSON bodies we accept; cut rather than recurse
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v, _depth + 1) for k, v in value.items()})
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(freeze(v, _depth + 1) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON output of frozen data)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
