"""Filters on a profile's identifiers, shared by the profile listing and the list and segment member listings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import false
from sqlalchemy.sql.elements import ColumnElement

from menura.api.operation import Ctx
from menura.domain import identity
from menura.jsonapi.errors import ApiError
from menura.jsonapi.filters import FilterField

# `_kx` tokens are checked against the secret and account of the request being served; filter conditions are
# compiled without the request at hand, so the listing sets them here around its query.
_kx_scope: ContextVar[tuple[bytes, str] | None] = ContextVar("kx_scope", default=None)


@contextmanager
def kx_context(ctx: Ctx) -> Iterator[None]:
    token = _kx_scope.set((ctx.services.secret, ctx.account_id))
    try:
        yield
    finally:
        _kx_scope.reset(token)


def kx_field(profile_id: ColumnElement[Any]) -> FilterField:
    """`equals(_kx,…)`: the profile a signed tracking token names; matches nothing outside `kx_context`."""
    def condition(_op: str, value: Any) -> ColumnElement[bool]:
        scope = _kx_scope.get()
        found = identity.kx_profile_id(scope[0], scope[1], str(value)) if scope else None
        return profile_id == found if found else false()

    return FilterField("string", single=frozenset({"equals"}), column=condition)


def normalized_email(value: Any) -> str:
    return str(value).strip().lower()


def normalized_phone(value: Any) -> str:
    try:
        return identity.normalize_phone(str(value), pointer=None)
    except ApiError:
        return str(value)  # not a valid number: matches nothing, as Klaviyo's exact match would


def identifier_field(column: ColumnElement[Any], normalize: Callable[[Any], str] = str, *,
                     list_ops: Iterable[str] = ("any", "equals")) -> FilterField:
    """An exact match on an identifier column, each value normalized as the column stores it."""
    def condition(_op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, list | tuple):
            return column.in_([normalize(item) for item in value])
        return column == normalize(value)

    return FilterField("string", single=frozenset({"equals"}), list=frozenset(list_ops), column=condition)
