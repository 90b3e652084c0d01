"""The `data` of a create or update body, read loosely first so a malformed body still gets a JSON:API
error with a pointer under `/data` (images, web feeds and templates read their bodies this way)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from menura.api.bodies import expect_type
from menura.api.operation import Ctx, validation_error
from menura.jsonapi import errors


class NewResource(msgspec.Struct):
    """`data` of a create body."""

    type: str
    attributes: dict[str, Any]


class ExistingResource(msgspec.Struct):
    """`data` of a body about a resource that exists (update, render)."""

    type: str
    id: str
    attributes: dict[str, Any]


class _Envelope(msgspec.Struct):
    data: Any


Shape = TypeVar("Shape", NewResource, ExistingResource)


def read_data(ctx: Ctx, shape: type[Shape], rtype: str) -> Shape:
    """The body's `data` as `shape`, of JSON:API type `rtype` (409 for another type)."""
    raw = ctx.body(_Envelope).data
    try:
        data = msgspec.convert(raw, shape)
    except msgspec.ValidationError as exc:
        err = validation_error(str(exc))
        # msgspec saw `data` alone, so its pointer starts below it.
        err.pointer = "/data" + (err.pointer or "") if not (err.pointer or "").startswith("/data") else err.pointer
        raise err from None
    expect_type(data.type, rtype)
    return data


def reject_unknown(attributes: Mapping[str, Any], writable: Iterable[str]) -> None:
    """400 pointing at the first attribute the resource does not let a client write."""
    allowed = set(writable)
    unknown = [key for key in attributes if key not in allowed]
    if unknown:
        raise errors.invalid(f"'{unknown[0]}' is not a valid field for this resource.",
                             pointer=f"/data/attributes/{unknown[0]}")
