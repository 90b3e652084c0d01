"""Klaviyo's `filter` query parameter: parsing, validation and SQL compilation.

Grammar (whitespace is tolerated between tokens, never inside them)::

    filter     := expression ("," expression)*          -- top-level commas mean AND
    expression := ("and" | "or") "(" expression ("," expression)* ")"
                | "not" "(" expression ")"
                | "has" "(" field ")"
                | operator "(" field "," value ")"
    operator   := equals | any | contains | contains-any | contains-all | starts-with
                | ends-with | greater-than | greater-or-equal | less-than | less-or-equal
    field      := name ("." name)*                        -- e.g. messages.channel
    value      := scalar | "[" [scalar ("," scalar)*] "]"
    scalar     := 'single' or "double" quoted string (backslash escapes \\ \' \")
                | integer | float | true | false | null
                | unquoted ISO-8601 datetime or date

Datetimes are written *without* quotes (`greater-than(created,2023-03-01T00:00:00Z)`);
a quoted datetime is a string, which a datetime field rejects, as Klaviyo does.
Datetimes without an offset are taken as UTC. Parsed datetimes are aware UTC datetimes.

Compilation builds a SQLAlchemy boolean expression in which every user-supplied value is
a bound parameter. A field's `column` is either a column expression, compiled with the
plain-column semantics below, or a callable `(operator, value) -> ColumnElement[bool]`
for anything custom (JSON paths, subqueries). Plain-column semantics:

* equals -> `=` (`IS NULL` for null); equals/any with a list -> `IN`
* contains / starts-with / ends-with -> `LIKE` with `%` and `_` escaped
* greater-than, greater-or-equal, less-than, less-or-equal -> comparisons
* has -> `IS NOT NULL`
* contains-any on a scalar column -> `IN`; contains-all on a scalar column -> every value equal

Array-valued fields (value_type "array") must use a callable column for every operator
that takes a value: there is no portable SQL for JSON array membership, so declaring
such a field with a plain column raises `ValueError` at declaration time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, not_, or_, true
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

from menura.jsonapi.errors import ApiError, invalid

MAX_LENGTH = 10_000
MAX_DEPTH = 50

VALUE_TYPES = frozenset({"string", "integer", "number", "boolean", "datetime", "date", "array", "object"})

COMPARISONS = frozenset({"greater-than", "greater-or-equal", "less-than", "less-or-equal"})
STRING_MATCHES = frozenset({"contains", "starts-with", "ends-with"})
LIST_ONLY = frozenset({"any", "contains-any", "contains-all"})
SCALAR_ONLY = STRING_MATCHES | COMPARISONS
VALUE_OPERATORS = frozenset({"equals"}) | LIST_ONLY | SCALAR_ONLY
OPERATORS = VALUE_OPERATORS | {"has"}
BOOLEAN_OPERATORS = frozenset({"and", "or", "not"})

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Scalar = str | int | float | bool | date | datetime | None
Value = Scalar | tuple[Scalar, ...]


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Condition:
    """`op(field,value)`; `value` is a tuple for list values and None for `has`."""

    op: str
    field: str
    value: Value = None


@dataclass(frozen=True)
class BoolOp:
    """`and(...)` / `or(...)` over one or more children."""

    op: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Condition | BoolOp | Not


# --------------------------------------------------------------------------- fields

ColumnFactory = Callable[[str, Any], ColumnElement[bool]]


def _is_plain_column(column: Any) -> bool:
    return isinstance(column, ClauseElement) or hasattr(column, "__clause_element__")


@dataclass(frozen=True)
class FilterField:
    """What a filterable field accepts and how it maps to SQL."""

    value_type: str
    single: frozenset[str] = frozenset()
    list: frozenset[str] = frozenset()
    none: frozenset[str] = frozenset()
    enum: tuple[str, ...] | None = None
    column: Any = None

    def __post_init__(self) -> None:
        if self.value_type not in VALUE_TYPES:
            raise ValueError(f"unknown filter value type {self.value_type!r}")
        for attr, allowed in (("single", SCALAR_ONLY | {"equals"}),
                              ("list", LIST_ONLY | {"equals"}),
                              ("none", frozenset({"has"}))):
            ops = frozenset(getattr(self, attr))
            unknown = ops - allowed
            if unknown:
                raise ValueError(f"operators {sorted(unknown)} cannot take a {attr} value")
            object.__setattr__(self, attr, ops)
        if self.enum is not None:
            object.__setattr__(self, "enum", tuple(self.enum))
        if self.column is not None and not _is_plain_column(self.column) and not callable(self.column):
            raise ValueError("column must be a SQL column expression or a callable")
        if (self.value_type == "array" and _is_plain_column(self.column)
                and (self.single or self.list)):
            raise ValueError("array-valued filter fields need a callable column")


FilterSpec = Mapping[str, FilterField]


def string_field(column: Any = None, single: Iterable[str] = ("equals",), list: Iterable[str] = (),
                 enum: Iterable[str] | None = None) -> FilterField:
    return FilterField("string", frozenset(single), frozenset(list),
                       enum=None if enum is None else tuple(enum), column=column)


def id_field(column: Any = None, single: Iterable[str] = ("equals",),
             list: Iterable[str] = ("any",)) -> FilterField:
    return FilterField("string", frozenset(single), frozenset(list), column=column)


def boolean_field(column: Any = None) -> FilterField:
    return FilterField("boolean", frozenset({"equals"}), column=column)


def number_field(column: Any = None, ops: Iterable[str] = ("equals", *sorted(COMPARISONS)),
                 integer: bool = False) -> FilterField:
    return FilterField("integer" if integer else "number", frozenset(ops), column=column)


def datetime_field(column: Any = None, ops: Iterable[str] = tuple(sorted(COMPARISONS))) -> FilterField:
    return FilterField("datetime", frozenset(ops), column=column)


def date_field(column: Any = None, ops: Iterable[str] = ("equals", *sorted(COMPARISONS))) -> FilterField:
    return FilterField("date", frozenset(ops), column=column)


def has_field(column: Any = None) -> FilterField:
    return FilterField("object", none=frozenset({"has"}), column=column)


def array_field(column: ColumnFactory, single: Iterable[str] = ("contains",),
                list: Iterable[str] = ("contains-any", "contains-all")) -> FilterField:
    return FilterField("array", frozenset(single), frozenset(list), column=column)


# --------------------------------------------------------------------------- parsing

_WS = " \t\r\n"
_BARE_STOP = frozenset(_WS + ",()[]'\"")
_NAME_RE = re.compile(r"[a-z][a-z-]*")
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_INT_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)")
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_LOOKS_TEMPORAL_RE = re.compile(r"[0-9]{4}-[0-9]")


def _error(detail: str) -> ApiError:
    return invalid(detail, parameter="filter")


def _parse_datetime(token: str) -> datetime | date | None:
    """The datetime or date a bare token spells, None if it is not shaped like one."""
    if m := _DATE_RE.fullmatch(token):
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise _error(f"invalid datetime '{token}'") from None
    m = _DATETIME_RE.fullmatch(token)
    if m is None:
        if _LOOKS_TEMPORAL_RE.match(token):
            raise _error(f"invalid datetime '{token}'")
        return None
    year, month, day, hour, minute = (int(m[i]) for i in range(1, 6))
    second = int(m[6]) if m[6] else 0
    micro = int((m[7] or "").ljust(6, "0")[:6])
    tz = UTC
    offset = m[8]
    if offset and offset not in "Zz":
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise _error(f"invalid datetime '{token}'")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _error(f"invalid datetime '{token}'") from None


def _bare_scalar(token: str) -> Scalar:
    if token == "true":
        return True
    if token == "false":
        return False
    if token == "null":
        return None
    if _INT_RE.fullmatch(token):
        if len(token) > 20:
            raise _error(f"number out of range '{token}'")
        number = int(token)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise _error(f"number out of range '{token}'")
        return number
    if _FLOAT_RE.fullmatch(token):
        value = float(token)
        if not math.isfinite(value):
            raise _error(f"number out of range '{token}'")
        return value
    temporal = _parse_datetime(token)
    if temporal is not None:
        return temporal
    raise _error(f"invalid value '{token}' (strings must be quoted)")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def _peek(self) -> str:
        self._skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _where(self) -> str:
        return "end of filter" if self.pos >= len(self.text) else f"position {self.pos}"

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            found = self.text[self.pos] if self.pos < len(self.text) else None
            got = f" but found '{found}'" if found is not None else ""
            raise _error(f"invalid filter: expected '{char}' at {self._where()}{got}")
        self.pos += 1

    def parse(self) -> Node:
        children = [self._expression(1)]
        while self._peek() == ",":
            self.pos += 1
            children.append(self._expression(1))
        if self._peek():
            raise _error(f"invalid filter: unexpected '{self.text[self.pos]}' at position {self.pos}")
        return children[0] if len(children) == 1 else BoolOp("and", tuple(children))

    def _expression(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise _error(f"invalid filter: expressions nested deeper than {MAX_DEPTH} levels")
        self._skip_ws()
        m = _NAME_RE.match(self.text, self.pos)
        if m is None:
            raise _error(f"invalid filter: expected an operator at {self._where()}")
        name = m.group()
        if name not in OPERATORS and name not in BOOLEAN_OPERATORS:
            raise _error(f"'{name}' is not a valid filter operator")
        self.pos = m.end()
        self._expect("(")
        node: Node
        if name in ("and", "or"):
            children = [self._expression(depth + 1)]
            while self._peek() == ",":
                self.pos += 1
                children.append(self._expression(depth + 1))
            node = BoolOp(name, tuple(children))
        elif name == "not":
            node = Not(self._expression(depth + 1))
        elif name == "has":
            node = Condition(name, self._field())
        else:
            field = self._field()
            self._expect(",")
            node = Condition(name, field, self._value(name))
        self._expect(")")
        return node

    def _field(self) -> str:
        self._skip_ws()
        m = _FIELD_RE.match(self.text, self.pos)
        if m is None:
            raise _error(f"invalid filter: expected a field name at {self._where()}")
        self.pos = m.end()
        return m.group()

    def _value(self, op: str) -> Value:
        if self._peek() == "[":
            if op in SCALAR_ONLY:
                raise _error(f"operator '{op}' takes a single value, not a list")
            self.pos += 1
            items: list[Scalar] = []
            if self._peek() != "]":
                items.append(self._list_item(op))
                while self._peek() == ",":
                    self.pos += 1
                    items.append(self._list_item(op))
            self._expect("]")
            return tuple(items)
        if op in LIST_ONLY:
            raise _error(f"operator '{op}' takes a list value, e.g. {op}(field,['a','b'])")
        value = self._scalar()
        if value is None and op != "equals":
            raise _error(f"null can only be used with 'equals', not '{op}'")
        return value

    def _list_item(self, op: str) -> Scalar:
        if self._peek() == "[":
            raise _error(f"invalid filter: nested lists are not allowed (at position {self.pos})")
        value = self._scalar()
        if value is None:
            raise _error(f"null is not allowed in the list value of '{op}'")
        return value

    def _scalar(self) -> Scalar:
        char = self._peek()
        if char in ("'", '"'):
            return self._string(char)
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BARE_STOP:
            self.pos += 1
        if self.pos == start:
            raise _error(f"invalid filter: expected a value at {self._where()}")
        return _bare_scalar(self.text[start:self.pos])

    def _string(self, quote: str) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in "\\'\"":
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            out.append(char)
            self.pos += 1
        raise _error(f"invalid filter: unterminated string starting at position {start}")


def parse_filter(text: str) -> Node:
    """Parse a filter expression; any malformed input raises a 400 ApiError."""
    if not isinstance(text, str):
        raise _error("invalid filter: expected a string")
    if len(text) > MAX_LENGTH:
        raise _error(f"invalid filter: longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise _error("invalid filter: empty expression")
    return _Parser(text).parse()


# --------------------------------------------------------------------------- rendering


def _render_scalar(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def render_filter(node: Node) -> str:
    """The canonical filter text for a node; `parse_filter(render_filter(n)) == n`."""
    if isinstance(node, BoolOp):
        return f"{node.op}({','.join(render_filter(child) for child in node.children)})"
    if isinstance(node, Not):
        return f"not({render_filter(node.child)})"
    if node.op == "has":
        return f"has({node.field})"
    if isinstance(node.value, tuple):
        value = "[" + ",".join(_render_scalar(item) for item in node.value) + "]"
    else:
        value = _render_scalar(node.value)
    return f"{node.op}({node.field},{value})"


# --------------------------------------------------------------------------- validation

_TYPE_NAMES = {
    "string": "a quoted string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "datetime": "an unquoted ISO-8601 datetime",
    "date": "an unquoted ISO-8601 date",
    "array": "a string, number or boolean",
    "object": "a value",
}


def _describe(value: Scalar) -> str:
    return _render_scalar(value)


def _coerce(value: Scalar, name: str, field: FilterField) -> Scalar:
    """Check one scalar against the field's type and enum; returns the value to bind."""
    if value is None:
        return None
    kind = field.value_type
    ok: bool
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "datetime":
        ok = isinstance(value, date)
        if ok and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif kind == "date":
        ok = isinstance(value, date) and not isinstance(value, datetime)
    elif kind == "array":
        ok = isinstance(value, str | int | float)
    else:
        ok = True
    if not ok:
        raise _error(f"invalid value {_describe(value)} for field '{name}': expected {_TYPE_NAMES[kind]}")
    if field.enum is not None and value not in field.enum:
        allowed = ", ".join(f"'{item}'" for item in field.enum)
        raise _error(f"invalid value {_describe(value)} for field '{name}': must be one of {allowed}")
    return value


def _validate_condition(node: Condition, spec: FilterSpec) -> Condition:
    field = spec.get(node.field)
    if field is None:
        raise _error(f"'{node.field}' is not a valid field for filter")
    if node.op == "has":
        arity, allowed = "none", field.none
    elif isinstance(node.value, tuple):
        arity, allowed = "list", field.list
    else:
        arity, allowed = "single", field.single
    if node.op not in allowed:
        if node.op in field.list and arity == "single":
            raise _error(f"operator '{node.op}' on field '{node.field}' requires a list value")
        if node.op in field.single and arity == "list":
            raise _error(f"operator '{node.op}' on field '{node.field}' requires a single value, not a list")
        raise _error(f"operator '{node.op}' is not allowed for field '{node.field}'")
    if arity == "none":
        return node
    if isinstance(node.value, tuple):
        value: Value = tuple(_coerce(item, node.field, field) for item in node.value)
    else:
        value = _coerce(node.value, node.field, field)
    return Condition(node.op, node.field, value)


def _validate(node: Node, spec: FilterSpec) -> Node:
    if isinstance(node, BoolOp):
        return BoolOp(node.op, tuple(_validate(child, spec) for child in node.children))
    if isinstance(node, Not):
        return Not(_validate(node.child, spec))
    return _validate_condition(node, spec)


def validate_filter(text: str | None, spec: FilterSpec) -> Node | None:
    """Parse and check against `spec`; values come back converted (datetimes aware UTC)."""
    if text is None or not text.strip():
        return None
    return _validate(parse_filter(text), spec)


# --------------------------------------------------------------------------- compilation


def _plain(op: str, column: Any, value: Value) -> ColumnElement[bool]:
    if op == "has":
        return column.isnot(None)
    if isinstance(value, tuple):
        if op == "contains-all":
            return and_(*(column == item for item in value)) if value else true()
        return column.in_(value)
    if op == "equals":
        return column.is_(None) if value is None else column == value
    if op == "contains":
        return column.contains(value, autoescape=True)
    if op == "starts-with":
        return column.startswith(value, autoescape=True)
    if op == "ends-with":
        return column.endswith(value, autoescape=True)
    if op == "greater-than":
        return column > value
    if op == "greater-or-equal":
        return column >= value
    if op == "less-than":
        return column < value
    if op == "less-or-equal":
        return column <= value
    raise AssertionError(f"unhandled filter operator {op!r}")  # pragma: no cover


def _build(node: Node, spec: FilterSpec) -> ColumnElement[bool]:
    if isinstance(node, BoolOp):
        combine = and_ if node.op == "and" else or_
        return combine(*(_build(child, spec) for child in node.children))
    if isinstance(node, Not):
        return not_(_build(node.child, spec))
    column = spec[node.field].column
    if column is None:
        raise TypeError(f"filter field {node.field!r} has no column to compile against")
    if _is_plain_column(column):
        return _plain(node.op, column, node.value)
    value = list(node.value) if isinstance(node.value, tuple) else node.value
    return column(node.op, value)


def compile_filter(text: str | None, spec: FilterSpec) -> ColumnElement[bool] | None:
    """Parse, validate and compile a filter to a SQL boolean; None when there is no filter."""
    node = validate_filter(text, spec)
    if node is None:
        return None
    return _build(node, spec)


def filter_equalities(text: str | None, spec: FilterSpec) -> dict[str, Any]:
    """Validated `equals`/`any` conditions ANDed at the top level, by field.

    Useful for endpoints that need a specific value pinned (e.g. a required
    `equals(metric_id,'...')`). List values come back as lists; a field constrained
    twice keeps the first constraint.
    """
    node = validate_filter(text, spec)
    if node is None:
        return {}
    conjuncts = node.children if isinstance(node, BoolOp) and node.op == "and" else (node,)
    found: dict[str, Any] = {}
    pending = list(conjuncts)
    while pending:
        item = pending.pop(0)
        if isinstance(item, BoolOp) and item.op == "and":
            pending[:0] = item.children
        elif isinstance(item, Condition) and item.op in ("equals", "any"):
            value = list(item.value) if isinstance(item.value, tuple) else item.value
            found.setdefault(item.field, value)
    return found


__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "ApiError",
    "BoolOp",
    "Condition",
    "FilterField",
    "FilterSpec",
    "Node",
    "Not",
    "array_field",
    "boolean_field",
    "compile_filter",
    "date_field",
    "datetime_field",
    "filter_equalities",
    "has_field",
    "id_field",
    "number_field",
    "parse_filter",
    "render_filter",
    "string_field",
    "validate_filter",
]
