"""Klaviyo's own filters (its glossary of variable filters), registered beside Django's built-ins.

Arithmetic goes through Decimal and returns floats, so `{{ 1.1|floatsub:1 }}` is 0.1 as Klaviyo
shows it, not 0.10000000000000009. Bad numeric input gives the empty string (Klaviyo's rule:
what cannot be resolved outputs nothing) rather than failing the whole message."""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote_plus, unquote, unquote_plus

from django.template import Library
from django.template.defaultfilters import capfirst, length, linebreaksbr, lower, upper
from django.utils.html import strip_tags

from menura.templating import limits

register = Library()


def _filter(*names: str, is_safe: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def add(func: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            register.filter(name, func, is_safe=is_safe)
        return func
    return add


# --------------------------------------------------------------------------- numbers

def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _out(number: Decimal) -> float:
    # Ten places hide binary noise; floats keep Klaviyo's "5.0" style.
    return float(round(number, 10))


def _binary(op: Callable[[Decimal, Decimal], Decimal], zero_if_invalid: bool = False) -> Callable[[Any, Any], Any]:
    def apply(value: Any, arg: Any) -> Any:
        a, b = _decimal(value), _decimal(arg)
        if a is None or b is None:
            return 0.0 if zero_if_invalid else ""
        try:
            return _out(op(a, b))
        except (InvalidOperation, ZeroDivisionError, ArithmeticError):
            return ""
    return apply


register.filter("divide", _binary(lambda a, b: a / b))
register.filter("multiply", _binary(lambda a, b: a * b, zero_if_invalid=True))
register.filter("times", _binary(lambda a, b: a * b, zero_if_invalid=True))
register.filter("floatadd", _binary(lambda a, b: a + b))
register.filter("plus", _binary(lambda a, b: a + b))
register.filter("floatsub", _binary(lambda a, b: a - b))
register.filter("minus", _binary(lambda a, b: a - b))
register.filter("modulo", _binary(lambda a, b: a % b))
register.filter("remainder", _binary(lambda a, b: a % b))


@_filter("abs")
def abs_(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return abs(value)
    number = _decimal(value)
    return "" if number is None else _out(abs(number))


def _bound(pick: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(value: Any, arg: Any) -> Any:
        a, b = _decimal(value), _decimal(arg)
        if a is None or b is None:
            return ""
        chosen = pick(a, b)
        source = value if chosen is a else arg
        return source if isinstance(source, int | float) and not isinstance(source, bool) else _out(chosen)
    return apply


register.filter("at_least", _bound(lambda a, b: a if a >= b else b))
register.filter("at_most", _bound(lambda a, b: a if a <= b else b))


def _rounding(mode: str) -> Callable[..., Any]:
    def apply(value: Any, places: Any = 0) -> Any:
        number, digits = _decimal(value), _decimal(places)
        if number is None or digits is None:
            return ""
        count = int(digits)
        limits.current().check_width(count)
        return _out(number.quantize(Decimal(1).scaleb(-count), rounding=mode))
    return apply


register.filter("ceil", _rounding(ROUND_CEILING))
register.filter("floor", _rounding(ROUND_FLOOR))
register.filter("round", _rounding(ROUND_HALF_UP))
register.filter("round_up", _rounding(ROUND_CEILING))
register.filter("round_down", _rounding(ROUND_FLOOR))


@_filter("percentize")
def percentize(value: Any, places: Any = 0) -> str:
    number, digits = _decimal(value), _decimal(places)
    if number is None or digits is None:
        return ""
    count = int(digits)
    limits.current().check_width(count)
    scaled = (number * 100).quantize(Decimal(1).scaleb(-count), rounding=ROUND_HALF_UP)
    return f"{scaled:f}%"


@_filter("sum_list")
def sum_list(value: Any) -> Any:
    if not _is_list(value):
        return ""
    total = Decimal(0)
    for item in value:
        number = _decimal(item)
        if number is not None:
            total += number
    return _out(total)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def apply(value: Any, arg: Any) -> bool:
        a, b = _decimal(value), _decimal(arg)
        if a is not None and b is not None:
            return op(a, b)
        try:
            return op(str(value), str(arg))
        except TypeError:
            return False
    return apply


register.filter("gt", _compare(lambda a, b: a > b))
register.filter("gte", _compare(lambda a, b: a >= b))
register.filter("lt", _compare(lambda a, b: a < b))
register.filter("lte", _compare(lambda a, b: a <= b))


# --------------------------------------------------------------------------- strings

def _text(value: Any) -> str:
    return "" if value is None else str(value)


register.filter("append", lambda value, arg: _text(value) + _text(arg))
register.filter("prepend", lambda value, arg: _text(arg) + _text(value))
register.filter("capitalize", capfirst, is_safe=True)
register.filter("downcase", lower, is_safe=True)
register.filter("upcase", upper, is_safe=False)
register.filter("strip", lambda value: _text(value).strip())
register.filter("lstrip", lambda value: _text(value).lstrip())
register.filter("rstrip", lambda value: _text(value).rstrip())
register.filter("strip_html", lambda value: strip_tags(_text(value)))
register.filter("strip_newlines", lambda value: _text(value).replace("\r", "").replace("\n", ""))
register.filter("newline_to_br", linebreaksbr, is_safe=True, needs_autoescape=True)
register.filter("remove", lambda value, arg: _text(value).replace(_text(arg), ""))
register.filter("remove_first", lambda value, arg: _text(value).replace(_text(arg), "", 1))
register.filter("trim_slash", lambda value: _text(value).rstrip("/"))
register.filter("md5_hash", lambda value: hashlib.md5(_text(value).encode(), usedforsecurity=False).hexdigest())
register.filter("sha_1", lambda value: hashlib.sha1(_text(value).encode(), usedforsecurity=False).hexdigest())
register.filter("sha_256", lambda value: hashlib.sha256(_text(value).encode()).hexdigest())
register.filter("urlencodeplus", lambda value: quote_plus(_text(value)))
register.filter("urldecode", lambda value: unquote(_text(value)))
register.filter("urldecodeplus", lambda value: unquote_plus(_text(value)))


@_filter("remove_last")
def remove_last(value: Any, arg: Any) -> str:
    text, target = _text(value), _text(arg)
    head, found, tail = text.rpartition(target)
    return head + tail if found and target else text


def _pair(arg: Any) -> tuple[str, str]:
    old, _, new = _text(arg).partition("|")
    return old, new


@_filter("find_replace")
def find_replace(value: Any, arg: Any) -> str:
    old, new = _pair(arg)
    return _text(value).replace(old, new) if old else _text(value)


@_filter("replace_first")
def replace_first(value: Any, arg: Any) -> str:
    old, new = _pair(arg)
    return _text(value).replace(old, new, 1) if old else _text(value)


@_filter("replace_last")
def replace_last(value: Any, arg: Any) -> str:
    old, new = _pair(arg)
    text = _text(value)
    head, found, tail = text.rpartition(old)
    return head + new + tail if found and old else text


@_filter("truncate")
def truncate(value: Any, size: Any = 50) -> str:
    """Liquid's truncate: at most `size` characters, the ellipsis included."""
    text = _text(value)
    count = int(_decimal(size) or 0)
    if len(text) <= count:
        return text
    return text[: max(count - 3, 0)] + "..."


@_filter("split")
def split(value: Any, separator: Any = " ") -> tuple[str, ...]:
    sep = _text(separator)
    text = _text(value)
    return tuple(text.split(sep) if sep else list(text))


@_filter("escape_once", is_safe=True)
def escape_once(value: Any) -> str:
    return html.escape(html.unescape(_text(value)))


@_filter("httpize")
def httpize(value: Any) -> str:
    text = _text(value)
    return text if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) else "http://" + text


@_filter("httpsize")
def httpsize(value: Any) -> str:
    text = _text(value)
    return text if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) else "https://" + text


@_filter("base64_encode")
def base64_encode(value: Any) -> str:
    return base64.b64encode(_text(value).encode()).decode()


@_filter("base64_url_safe_encode")
def base64_url_safe_encode(value: Any) -> str:
    return base64.urlsafe_b64encode(_text(value).encode()).decode()


def _decode(decoder: Callable[[bytes], bytes]) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        text = _text(value).strip()
        try:
            return decoder((text + "=" * (-len(text) % 4)).encode()).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return ""
    return apply


register.filter("base64_decode", _decode(base64.b64decode))
register.filter("base64_url_safe_decode", _decode(base64.urlsafe_b64decode))


# --------------------------------------------------------------------------- lists and mappings

def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return None


register.filter("count", length, is_safe=False)
register.filter("size", length, is_safe=False)


@_filter("lookup")
def lookup(value: Any, key: Any) -> Any:
    """`person|lookup:'Custom Property'`: a key with spaces or symbols, or a list index."""
    if isinstance(value, Mapping):
        found = value.get(_text(key))
        return "" if found is None else found
    if _is_list(value):
        index = _decimal(key)
        if index is not None and index == int(index) and -len(value) <= int(index) < len(value):
            return value[int(index)]
    return ""


@_filter("index")
def index(value: Any, position: Any) -> Any:
    return lookup(value, position)


@_filter("compact")
def compact(value: Any) -> Any:
    return tuple(v for v in value if v is not None) if _is_list(value) else value


@_filter("concat")
def concat(value: Any, other: Any) -> Any:
    if _is_list(value):
        return tuple(value) + (tuple(other) if _is_list(other) else (other,))
    return _text(value) + _text(other)


@_filter("list_to_string")
def list_to_string(value: Any) -> str:
    if not _is_list(value):
        return _text(value)
    items = [_text(v) for v in value]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


@_filter("map")
def map_(value: Any, name: Any) -> tuple[Any, ...]:
    return tuple(_field(item, _text(name)) for item in value) if _is_list(value) else ()


def _sort_key(name: str | None, natural: bool) -> Callable[[Any], Any]:
    def key(item: Any) -> Any:
        picked = _field(item, name) if name else item
        number = None if natural or isinstance(picked, str) else _decimal(picked)
        if number is not None:
            return (0, number, "")
        text = _text(picked)
        return (1, Decimal(0), text.lower() if natural else text)
    return key


@_filter("sort")
def sort(value: Any, name: Any = None) -> tuple[Any, ...]:
    return tuple(sorted(value, key=_sort_key(_text(name) or None, False))) if _is_list(value) else ()


@_filter("sort_natural")
def sort_natural(value: Any, name: Any = None) -> tuple[Any, ...]:
    return tuple(sorted(value, key=_sort_key(_text(name) or None, True))) if _is_list(value) else ()


@_filter("reverse")
def reverse(value: Any) -> Any:
    if _is_list(value):
        return tuple(reversed(value))
    return _text(value)[::-1]


@_filter("uniq")
def uniq(value: Any, name: Any = None) -> tuple[Any, ...]:
    if not _is_list(value):
        return ()
    seen: list[Any] = []
    out: list[Any] = []
    for item in value:
        marker = _field(item, _text(name)) if name else item
        if marker not in seen:
            seen.append(marker)
            out.append(item)
    return tuple(out)


_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(<=|>=|=>|==|!=|<|>|=)\s*(.*?)\s*$")


def _matches(item: Any, name: str, op: str, expected: str) -> bool:
    actual = _field(item, name)
    a, b = _decimal(actual), _decimal(expected)
    left: Any = a if a is not None and b is not None else _text(actual)
    right: Any = b if a is not None and b is not None else expected
    if op in ("=", "=="):
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right,
                ">=": left >= right, "=>": left >= right}[op]
    except TypeError:
        return False


def _where(value: Any, condition: Any) -> tuple[Any, ...]:
    match = _CONDITION.match(_text(condition))
    if not _is_list(value) or match is None:
        return ()
    name, op, expected = match.groups()
    return tuple(item for item in value if _matches(item, name, op, expected.strip("'\"")))


register.filter("list_where", _where)
register.filter("dictfilter", _where)


# --------------------------------------------------------------------------- dates

_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%Y/%m/%d", "%d %B %Y", "%B %d, %Y")


def parse_datetime(value: Any) -> datetime | None:
    """A datetime from an ISO 8601 string (with or without offset; UTC when absent),
    a few common date layouts, or a Unix timestamp."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = _text(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for layout in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, layout)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@_filter("format_date_string", "datetime_from_string")
def format_date_string(value: Any) -> Any:
    parsed = parse_datetime(value)
    return "" if parsed is None else parsed


@_filter("days_later")
def days_later(value: Any, days: Any) -> Any:
    count = _decimal(days)
    parsed = parse_datetime(value)
    if parsed is None or count is None:
        return ""
    shifted = parsed + timedelta(days=float(count))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return shifted.strftime("%Y-%m-%d")
        return shifted.isoformat()
    return shifted


@_filter("weeks_since")
def weeks_since(value: Any, reference: Any = None) -> Any:
    start = parse_datetime(value)
    end = parse_datetime(reference) if reference not in (None, "") else limits.current().env.now
    if start is None or end is None:
        return ""
    return int((end - start).total_seconds() // (7 * 86400))
