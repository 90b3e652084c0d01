"""Klaviyo's own tags: subscription links, date tags, `today`, `currency_format`, `coupon_code`,
and a `now` that reads the render clock instead of the machine's."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.template import Library, TemplateSyntaxError
from django.utils import dateformat
from django.utils.html import format_html

from menura.templating import limits
from menura.templating.klaviyo_filters import _decimal

register = Library()

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")

# Symbol, and whether it follows the amount; others print as "CODE 12.00".
_CURRENCIES: dict[str, tuple[str, bool]] = {
    "USD": ("$", False), "CAD": ("$", False), "AUD": ("$", False), "NZD": ("$", False),
    "EUR": ("€", False), "GBP": ("£", False), "JPY": ("¥", False), "CNY": ("¥", False),
    "INR": ("₹", False), "KRW": ("₩", False), "BRL": ("R$", False), "MXN": ("$", False),
    "CHF": ("CHF ", False), "SEK": (" kr", True), "NOK": (" kr", True), "DKK": (" kr", True),
    "PLN": (" zł", True),
}
_NO_DECIMALS = {"JPY", "KRW"}


def _local_now() -> datetime:
    env = limits.current().env
    return env.now.astimezone(env.timezone)


def _link(kind: str) -> str:
    return limits.current().env.links.get(kind, "")


def _anchor(kind: str, text: str) -> str:
    return format_html('<a href="{}">{}</a>', _link(kind), text)


@register.simple_tag
def unsubscribe(text: str = "Unsubscribe") -> str:
    return _anchor("unsubscribe", str(text))


@register.simple_tag
def unsubscribe_link() -> str:
    return _link("unsubscribe")


@register.simple_tag
def manage_preferences(text: str = "Manage Preferences") -> str:
    return _anchor("manage_preferences", str(text))


@register.simple_tag
def manage_preferences_link() -> str:
    return _link("manage_preferences")


@register.simple_tag
def web_view(text: str = "View in Your Browser") -> str:
    return _anchor("web_view", str(text))


@register.simple_tag
def web_view_link() -> str:
    return _link("web_view")


@register.simple_tag
def current_day() -> int:
    return _local_now().day


@register.simple_tag
def current_weekday() -> str:
    return _WEEKDAYS[_local_now().weekday()]


@register.simple_tag
def current_month() -> int:
    return _local_now().month


@register.simple_tag
def current_month_name() -> str:
    return _MONTHS[_local_now().month - 1]


@register.simple_tag
def current_year() -> int:
    return _local_now().year


@register.simple_tag
def today(layout: str = "%Y-%m-%d") -> str:
    """`{% today '%Y-%m-%d' as today %}`: today's date in the account timezone, as text."""
    if len(str(layout)) > 100:
        raise TemplateSyntaxError("today: the format is too long")
    return _local_now().strftime(str(layout))


@register.simple_tag
def now(layout: str) -> str:
    """Django's `now`, on the render clock and in the account timezone."""
    return dateformat.format(_local_now(), str(layout))


@register.simple_tag
def currency_format(value: Any) -> str:
    """Currency symbol and two decimals in the account's currency; numbers only."""
    number = _decimal(value)
    if number is None:
        return ""
    code = limits.current().env.currency.upper()
    places = Decimal(1) if code in _NO_DECIMALS else Decimal("0.01")
    amount = f"{abs(number).quantize(places, rounding=ROUND_HALF_UP):,f}"
    sign = "-" if number < 0 else ""
    symbol, after = _CURRENCIES.get(code, (f"{code} ", False))
    return f"{sign}{amount}{symbol}" if after else f"{sign}{symbol}{amount}"


@register.simple_tag
def coupon_code(name: str, **_options: Any) -> str:
    """A unique code of the named coupon for this recipient, from the dispatcher's provider."""
    provider = limits.current().env.coupon_code
    if provider is None:
        raise TemplateSyntaxError(f"coupon_code: no coupon codes can be issued here for '{name}'")
    return provider(str(name))
