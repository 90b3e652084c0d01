"""Pieces of request bodies whose Klaviyo schema forbids other members: an unknown member answers 400
with a pointer at it, as Klaviyo does."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T], forbid_unknown_fields=True):
    """`{"data": …}`: a whole body, or a resource reference nested in one."""

    data: T


class ResourceIdentifier(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON:API resource identifier object."""

    type: str
    id: str
