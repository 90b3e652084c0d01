"""Checks every condition parser shares: each answers a 400 pointing at the value it rejects."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError


def bad(detail: str, pointer: str) -> ApiError:
    return errors.invalid(detail, pointer=pointer)


def expect_object(value: Any, pointer: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
                  ) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad("Expected an object.", pointer)
    for key in value:
        if key not in required and key not in optional:
            raise bad(f"'{key}' is not a valid field here.", f"{pointer}/{key}")
    for key in required:
        if key not in value or value[key] is None:
            raise bad(f"'{key}' is a required field.", f"{pointer}/{key}")
    return value


def expect_one_of(value: Any, allowed: tuple[str, ...] | frozenset[str], pointer: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(f"'{a}'" for a in sorted(allowed))
        raise bad(f"{show(value)} is not valid here; expected one of {options}.", pointer)
    return value


def show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def expect_int(value: Any, pointer: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("Expected an integer.", pointer)
    if minimum is not None and value < minimum:
        raise bad(f"Must be at least {minimum}.", pointer)
    if maximum is not None and value > maximum:
        raise bad(f"Must be at most {maximum}.", pointer)
    return value


def expect_number(value: Any, pointer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad("Expected a number.", pointer)
    return value


def expect_bool(value: Any, pointer: str) -> bool:
    if not isinstance(value, bool):
        raise bad("Expected true or false.", pointer)
    return value


def expect_string(value: Any, pointer: str, *, nullable: bool = False) -> str:
    if value is None and nullable:
        return ""  # a null text value compares as the empty string
    if not isinstance(value, str):
        raise bad("Expected a string.", pointer)
    return value


def expect_strings(value: Any, pointer: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise bad("Expected a list of strings.", pointer)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise bad("Expected a string.", f"{pointer}/{index}")
    return tuple(value)


def parse_datetime(value: Any, pointer: str) -> datetime:
    if not isinstance(value, str):
        raise bad("Expected an ISO 8601 datetime.", pointer)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad(f"'{value}' is not a valid ISO 8601 datetime.", pointer) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
