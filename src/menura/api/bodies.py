"""Request-body pieces every category shares: the `{"data": …}` envelope and the JSON:API checks
on `data.type` and `data.id` (a mismatch is a 409 Conflict, as JSON:API and Klaviyo answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError

T = TypeVar("T")


class Document(msgspec.Struct, Generic[T]):
    """`{"data": ...}`: the envelope of every JSON:API request body."""

    data: T


def expect_type(value: str, expected: str, pointer: str = "/data/type") -> None:
    if value != expected:
        raise errors.conflict("conflict", f"The type '{value}' does not match the expected type '{expected}'.",
                              pointer=pointer)


def expect_id(value: str, expected: str, pointer: str = "/data/id") -> None:
    if value != expected:
        raise errors.conflict("conflict", f"The id '{value}' in the body does not match the id '{expected}' "
                                          "in the URL.", pointer=pointer)


def missing(pointer: str) -> ApiError:
    name = pointer.rsplit("/", 1)[-1]
    return errors.invalid(f"'{name}' is a required field.", pointer=pointer)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
