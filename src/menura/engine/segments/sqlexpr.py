"""Dialect-specific SQL building blocks of the segment compiler: typed reads of JSON values,
text matching, date parts. Every user value is a bound parameter; only the shape of the SQL
differs between SQLite and PostgreSQL.

Typed reads return NULL when the stored value is absent or of another JSON type, and always
through CASE, because PostgreSQL does not promise to evaluate `type = 'number' AND cast(...)`
left to right and a failed cast would abort the whole query.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Numeric,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from menura.store.types import UtcDateTime

# Keys SQLite's JSON path syntax addresses reliably; others are found through json_each.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_$ .\-:/@#&+()!?%*,;=~^|<>']+$")


class Dialect:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pg = name == "postgresql"

    # ------------------------------------------------------------------ JSON values

    def _type(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The dialect's own name of the value's JSON type; NULL when the key is absent."""
        if self.pg:
            return func.jsonb_typeof(doc.op("->")(literal(key, String)))
        if not _SAFE_KEY.match(key):
            return self._sqlite_each(doc, key, "type")
        return func.json_type(doc, literal(_path(key), String))

    def type_is(self, doc: Any, key: str, kind: str) -> ColumnElement[bool]:
        """kind: string | number | boolean | array | object | null."""
        names = _PG_TYPES[kind] if self.pg else _SQLITE_TYPES[kind]
        kind_expr = self._type(doc, key)
        return kind_expr == names[0] if len(names) == 1 else kind_expr.in_(names)

    def _sqlite_each(self, doc: Any, key: str, column: str) -> ColumnElement[Any]:
        each = func.json_each(doc).table_valued("key", "value", "type")
        return select(getattr(each.c, column)).where(each.c.key == literal(key, String)).scalar_subquery()

    def _raw(self, doc: Any, key: str) -> ColumnElement[Any]:
        """SQLite: the SQL value json_extract gives; PostgreSQL: the value as text (->>)."""
        if self.pg:
            return doc.op("->>")(literal(key, String))
        if not _SAFE_KEY.match(key):
            return self._sqlite_each(doc, key, "value")
        return func.json_extract(doc, literal(_path(key), String))

    def json_is_set(self, doc: Any, key: str) -> ColumnElement[bool]:
        return func.coalesce(self._type(doc, key), "null") != "null"

    def json_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        return case((self.type_is(doc, key, "string"), cast(self._raw(doc, key), Text)), else_=None)

    def json_text_matching(self, doc: Any, key: str, values: list[str]) -> ColumnElement[Any]:
        """For a positive equals / in: SQLite's json_extract gives a string's own text and never a
        text equal to a plain string for another type (numbers and booleans are numbers, arrays and
        objects start with [ or {), so the type test can go when no value starts like JSON."""
        if not self.pg and not any(v[:1] in ("[", "{") for v in values):
            return self._raw(doc, key)
        return self.json_text(doc, key)

    def json_number(self, doc: Any, key: str) -> ColumnElement[Any]:
        return case((self.type_is(doc, key, "number"), cast(self._raw(doc, key), Float)), else_=None)

    def json_bool(self, doc: Any, key: str) -> ColumnElement[Any]:
        raw = self._raw(doc, key)
        truthy = raw == "true" if self.pg else raw == 1
        return case((self.type_is(doc, key, "boolean"), case((truthy, 1), else_=0)), else_=None)

    def json_array(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The array (PostgreSQL: jsonb; SQLite: its JSON text), NULL when not an array."""
        if self.pg:
            return case((self.type_is(doc, key, "array"), doc.op("->")(literal(key, String))), else_=None)
        return case((self.type_is(doc, key, "array"), self._raw(doc, key)), else_=None)

    def json_date(self, doc: Any, key: str) -> ColumnElement[Any]:
        """A text value read as a UTC timestamp (ISO 8601 only), NULL otherwise."""
        return func.menura_ts(self.json_text(doc, key), type_=UtcDateTime)

    # ------------------------------------------------------------------ arrays

    def _elements(self, array: ColumnElement[Any]) -> Any:
        if self.pg:
            return func.jsonb_array_elements(func.coalesce(array, cast(literal("[]"), JSONB))).table_valued(
                "value")
        return func.json_each(func.coalesce(array, literal("[]"))).table_valued("value", "type")

    def array_has(self, array: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        """The array holds `value` (a string, a number, or None for a null element), types kept."""
        if self.pg:
            wanted = cast(literal(json.dumps([value])), JSONB)
            return and_(array.isnot(None), array.op("@>", is_comparison=True)(wanted))
        each = self._elements(array)
        if value is None:
            match = each.c.type == "null"
        elif isinstance(value, str):
            match = and_(each.c.type == "text", each.c.value == literal(value, String))
        else:
            match = and_(each.c.type.in_(("integer", "real")), each.c.value == literal(float(value), Float))
        return exists(select(literal(1)).select_from(each).where(match))

    def array_has_substring(self, array: ColumnElement[Any], needle: str) -> ColumnElement[bool]:
        each = self._elements(array)
        if self.pg:
            text = each.c.value.op("#>>")(literal("{}", ARRAY(Text)))
            match = and_(func.jsonb_typeof(each.c.value) == "string", self.contains(text, needle))
        else:
            match = and_(each.c.type == "text", self.contains(each.c.value, needle))
        return exists(select(literal(1)).select_from(each).where(match))

    def array_length(self, array: ColumnElement[Any]) -> ColumnElement[Any]:
        if self.pg:
            return func.jsonb_array_length(array)
        return case((array.isnot(None), func.json_array_length(array)), else_=None)

    # ------------------------------------------------------------------ text

    def contains(self, text: Any, needle: str) -> ColumnElement[bool]:
        fn = func.strpos(text, literal(needle, String)) if self.pg else func.instr(text, literal(needle, String))
        return fn > 0

    def starts_with(self, text: Any, prefix: str) -> ColumnElement[bool]:
        value = literal(prefix, String)
        return func.substr(text, 1, func.length(value)) == value

    def ends_with(self, text: Any, suffix: str) -> ColumnElement[bool]:
        value = literal(suffix, String)
        start = func.length(text) - func.length(value) + 1
        return and_(func.length(text) >= func.length(value), func.substr(text, start) == value)

    def regex(self, text: Any, pattern: str) -> ColumnElement[bool]:
        if self.pg:
            return text.op("~", is_comparison=True)(literal(pattern, String))
        return func.menura_regexp(literal(pattern, String), text) == 1

    def in_values(self, text: Any, values: list[str]) -> ColumnElement[bool]:
        """One bound parameter however long the list is."""
        if not values:
            return false()
        if self.pg:
            return text.in_(select(func.unnest(literal(values, ARRAY(String)))))
        each = func.json_each(literal(json.dumps(values), String)).table_valued("value")
        return text.in_(select(each.c.value))

    # ------------------------------------------------------------------ dates

    def anniversary_key(self, when: Any) -> ColumnElement[Any]:
        if self.pg:
            return func.to_char(func.timezone("UTC", when), "MM-DD HH24:MI:SS")
        return func.strftime("%m-%d %H:%M:%S", when)

    def day_key(self, when: Any) -> ColumnElement[Any]:
        if self.pg:
            return func.to_char(func.timezone("UTC", when), "MM-DD")
        return func.strftime("%m-%d", when)

    def month(self, when: Any) -> ColumnElement[Any]:
        if self.pg:
            return cast(func.extract("month", func.timezone("UTC", when)), Integer)
        return cast(func.strftime("%m", when), Integer)

    def epoch_seconds(self, when: Any) -> ColumnElement[Any]:
        if self.pg:
            return cast(func.floor(func.extract("epoch", when)), Integer)
        return cast(func.strftime("%s", when), Integer)

    def round6(self, number: Any) -> ColumnElement[Any]:
        if self.pg:
            return func.round(cast(number, Numeric), 6)
        return func.round(number, 6)

    @staticmethod
    def timestamp(value: Any) -> ColumnElement[Any]:
        return literal(value, UtcDateTime)

    @staticmethod
    def boolean(value: bool) -> ColumnElement[bool]:
        return true() if value else false()

    @staticmethod
    def negate(expr: ColumnElement[bool]) -> ColumnElement[bool]:
        return not_(expr)


_PG_TYPES = {"string": ("string",), "number": ("number",), "boolean": ("boolean",), "array": ("array",),
             "object": ("object",), "null": ("null",)}
_SQLITE_TYPES = {"string": ("text",), "number": ("integer", "real"), "boolean": ("true", "false"),
                 "array": ("array",), "object": ("object",), "null": ("null",)}


def _path(key: str) -> str:
    return '$."' + key + '"'

