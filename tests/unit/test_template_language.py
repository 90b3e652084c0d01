"""The template language, tag by tag and filter by filter, and the sandbox's refusals."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from menura.templating import Limits, RenderEnv, RenderLimitError, TemplateError, render
from menura.templating.engine import ALLOWED_TAGS, engine

NOW = datetime(2026, 3, 1, 14, 30, tzinfo=UTC)  # a Sunday
ENV = RenderEnv(now=NOW, timezone=ZoneInfo("America/New_York"), currency="USD",
                links={"unsubscribe": "https://u.example/u?a=1&b=2", "manage_preferences": "https://u.example/p",
                       "web_view": "https://u.example/w"},
                coupon_code=lambda name: f"{name}-ABC123")
CONTEXT = {
    "first_name": "ann",
    "email": "ann@example.com",
    "person": {"first_name": "Ann", "Custom Property": "gold", "Loyalty Points": 160, "$timezone": "UTC"},
    "organization": {"name": "Acme", "full_address": "1 Main St, Boston"},
    "event": {"Items": [{"name": "Hat", "price": 10.5, "qty": 2}, {"name": "Bag", "price": 30, "qty": 1}],
              "extra": {"line_items": [{"title": "Hat"}]}, "total": "40.5", "date": "2016-02-11T16:46:08-05:00"},
    "feeds": {"Blog": {"items": [{"title": "One"}, {"title": "Two"}, {"title": "Three"}]}},
    "words": ["apple", "banana", "orange"],
    "nums": [3, 1, 2],
    "html": "<b>bold</b> & \"quote\"",
    "n": -1.2,
    "price": 1234.5,
    "empty": "",
    "none": None,
    "people": [{"name": "b", "age": 3}, {"name": "a", "age": 1}, {"name": "c", "age": 2}, {"name": "a", "age": 5}],
}

# (template, expected output)
CASES: list[tuple[str, str]] = [
    # variables and lookups
    ("{{ first_name }}", "ann"),
    ("{{ person.first_name }}", "Ann"),
    ("{{ person|lookup:'Custom Property' }}", "gold"),
    ("{{ person|lookup:'Missing' }}", ""),
    ("{{ missing.deeply.nested }}", ""),
    ("{{ organization.name }} / {{ organization.full_address }}", "Acme / 1 Main St, Boston"),
    ("{{ event.extra.line_items.0.title }}", "Hat"),
    ("{{ event|lookup:'Items'|lookup:'1'|lookup:'name' }}", "Bag"),
    ("{{ feeds.Blog.items|length }}", "3"),
    ("{{ html }}", "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quote&quot;"),
    # control flow
    ("{% if person|lookup:'Loyalty Points' > 150 %}VIP{% elif person|lookup:'Loyalty Points' > 0 %}some"
     "{% else %}none{% endif %}", "VIP"),
    ("{% if not empty %}empty{% endif %}", "empty"),
    ("{% if 'gold' in person.values %}yes{% endif %}", "yes"),
    ("{% for item in event.Items %}{{ forloop.counter }}.{{ item.name }}{% if not forloop.last %}, {% endif %}"
     "{% endfor %}", "1.Hat, 2.Bag"),
    ("{% for item in none %}x{% empty %}nothing{% endfor %}", "nothing"),
    ("{% for item in feeds.Blog.items|slice:':2' %}{{ item.title }}{% endfor %}", "OneTwo"),
    ("{% with total=event.total %}{{ total }}{% endwith %}", "40.5"),
    ("{% firstof none empty 'fallback' %}", "fallback"),
    ("{% for w in words %}{% cycle 'a' 'b' %}{% endfor %}", "aba"),
    ("{% for p in people %}{% ifchanged p.name %}{{ p.name }}{% endifchanged %}{% endfor %}", "baca"),
    ("{% comment %}hidden{% endcomment %}shown", "shown"),
    ("{# note #}x", "x"),
    ("{% verbatim %}{{ raw }}{% endverbatim %}", "{{ raw }}"),
    ("{% spaceless %}<p> <b>x</b> </p>{% endspaceless %}", "<p><b>x</b></p>"),
    ("{% autoescape off %}{{ html }}{% endautoescape %}", "<b>bold</b> & \"quote\""),
    ("{% filter upper %}abc{% endfilter %}", "ABC"),
    ("{% templatetag openbrace %}", "{"),
    ("{% widthratio 30 60 100 %}", "50"),
    ("{% regroup people by name as groups %}{% for g in groups %}{{ g.grouper }}{{ g.list|length }}"
     "{% endfor %}", "b1a1c1a1"),
    ("{% for w in words %}{% cycle 'x' 'y' as c silent %}{% resetcycle %}{{ c }}{% endfor %}", "xxx"),
    # Klaviyo tags
    ("{% unsubscribe %}", '<a href="https://u.example/u?a=1&amp;b=2">Unsubscribe</a>'),
    ("{% unsubscribe 'click here' %}", '<a href="https://u.example/u?a=1&amp;b=2">click here</a>'),
    ("{% unsubscribe_link %}", "https://u.example/u?a=1&amp;b=2"),
    ("{% manage_preferences %}", '<a href="https://u.example/p">Manage Preferences</a>'),
    ("{% manage_preferences 'Update' %}", '<a href="https://u.example/p">Update</a>'),
    ("{% manage_preferences_link %}", "https://u.example/p"),
    ("{% web_view %}", '<a href="https://u.example/w">View in Your Browser</a>'),
    ("{% web_view 'Open in your browser' %}", '<a href="https://u.example/w">Open in your browser</a>'),
    ("{% web_view_link %}", "https://u.example/w"),
    ("{% current_day %}/{% current_month %}/{% current_year %}", "1/3/2026"),
    ("{% current_weekday %} {% current_month_name %}", "Sunday March"),
    ("{% today '%Y-%m-%d' as today %}{{ today }}", "2026-03-01"),
    ("{% today '%Y-%m-%d' as today %}{{ today|days_later:5|format_date_string|date:'M d' }}", "Mar 06"),
    ("{% now 'Y-m-d H:i' %}", "2026-03-01 09:30"),
    ("{% currency_format price %}", "$1,234.50"),
    ("{% currency_format 'abc' %}", ""),
    ("{% coupon_code 'WELCOME' %}", "WELCOME-ABC123"),
    # Django filters Klaviyo documents
    ("{{ first_name|default:'there'|title }}", "Ann"),
    ("{{ empty|default:'there' }}", "there"),
    ("{{ none|default_if_none:'n/a' }}", "n/a"),
    ("{{ 'hello world'|title }} {{ 'ab'|upper }} {{ 'AB'|lower }}", "Hello World AB ab"),
    ("{{ 3.14159|floatformat:2 }} {{ 3.0|floatformat }} {{ '5.0003'|floatformat:2 }}", "3.14 3 5.00"),
    ("{{ event.date|format_date_string|date:'F d, o' }}", "February 11, 2016"),
    ("{{ event.date|format_date_string|date:'m-d-Y g:i A' }}", "02-11-2016 9:46 PM"),
    ("{{ 'Ground control to Major Tom.'|truncatechars:10 }}", "Ground co…"),
    ("{{ 'a b c d'|truncatewords:2 }}", "a b …"),
    ("{{ words|join:', ' }}", "apple, banana, orange"),
    ("{{ words|first }} {{ words|last }} {{ words|length }}", "apple orange 3"),
    ("{{ 'Hello World'|slugify }}", "hello-world"),
    ("{{ 2|add:3 }} {{ 'ab'|add:'cd' }}", "5 abcd"),
    ("{{ 'x'|center:5 }}|{{ 'x'|ljust:3 }}|{{ 'x'|rjust:3 }}", "  x  |x  |  x"),
    ("{{ 1|pluralize }}{{ 2|pluralize }} {{ 2|pluralize:'y,ies' }}", "s ies"),
    ("{{ none|yesno:'yes,no,maybe' }} {{ 0|yesno:'yes,no' }}", "maybe no"),
    ("{{ 'a&b'|urlencode }}", "a%26b"),
    ("{{ '<p>x</p>'|striptags }}", "x"),
    ("{{ multiline|linebreaksbr }}", "a<br>b"),
    ("{{ people|dictsort:'age'|first|lookup:'name' }}", "a"),
    ("{{ 12|divisibleby:4 }}", "True"),
    ("{{ 1024|filesizeformat }}", "1.0\xa0KB"),
    ("{{ 'abc'|make_list|length }}", "3"),
    ("{{ 'abc'|cut:'b' }}", "ac"),
    ("{{ html|safe }}", "<b>bold</b> & \"quote\""),
    ("{{ 'one two'|wordcount }}", "2"),
    ("{{ '%05.1f'|stringformat:'s' }} {{ 3|stringformat:'03d' }}", "%05.1f 003"),
    ("{{ 'abcdef'|slice:'2:4' }}", "cd"),
    ("{{ 123|get_digit:1 }}", "3"),
    ("{{ 'x'|escape }}", "x"),
    # Klaviyo filters
    ("{{ n|abs }}", "1.2"),
    ("{{ 'hello'|append:' world' }} {{ 'world'|prepend:'hello ' }}", "hello world hello world"),
    ("{{ 1|at_least:5.0 }} {{ 1|at_most:-1.0 }}", "5.0 -1.0"),
    ("{{ 'hi'|base64_encode }} {{ 'aGk='|base64_decode }}", "aGk= hi"),
    ("{{ '??>'|base64_url_safe_encode }} {{ 'Pz8-'|base64_url_safe_decode }}", "Pz8- ??&gt;"),
    ("{{ 'ann'|capitalize }}", "Ann"),
    ("{{ 5.01|ceil }} {{ 5.9|floor }} {{ 5.5|round }} {{ 5.123|round_up:2 }} {{ 5.129|round_down:2 }}",
     "6.0 5.0 6.0 5.13 5.12"),
    ("{{ none_list|compact|length }}", "2"),
    ("{{ words|concat:nums|length }} {{ 'ab'|concat:'cd' }}", "6 abcd"),
    ("{{ 3|times:2 }}", "6.0"),
    ("{{ '10'|divide:'2' }} {{ '10'|multiply:'2' }} {{ 'x'|multiply:'2' }} {{ 1|divide:0 }}", "5.0 20.0 0.0 "),
    ("{{ 1|floatadd:1.1 }} {{ 1.1|floatsub:1 }} {{ 1|plus:2 }} {{ 3|minus:1 }}", "2.1 0.1 3.0 2.0"),
    ("{{ 5|remainder:2 }} {{ 7|modulo:4 }}", "1.0 3.0"),
    ("{{ '.25'|percentize:2 }}", "25.00%"),
    ("{{ nums|sum_list }}", "6.0"),
    ("{% if 3|gt:2 and 2|gte:2 and 1|lt:2 and 2|lte:2 %}cmp{% endif %}", "cmp"),
    ("{{ 'AbC'|downcase }} {{ 'AbC'|upcase }}", "abc ABC"),
    ("{{ 'Ground control to Major Tom.'|truncate:20 }} {{ 'short'|truncate }}", "Ground control to... short"),
    ("[{{ '  x  '|strip }}][{{ '  x'|lstrip }}][{{ 'x  '|rstrip }}]", "[x][x][x]"),
    ("{{ '<p>x</p>'|strip_html }} {{ multiline|strip_newlines }} {{ multiline|newline_to_br }}", "x ab a<br>b"),
    ("{{ 'hello hello'|remove:'l' }} {{ 'aXbXc'|remove_first:'X' }} {{ 'aXbXc'|remove_last:'X' }}",
     "heo heo abXc aXbc"),
    ("{{ 'Hi, there,'|find_replace:',|-' }} {{ 'a-b-c'|replace_first:'-|+' }} {{ 'a-b-c'|replace_last:'-|+' }}",
     "Hi- there- a+b-c a-b+c"),
    ("{{ 'a,b,c'|split:','|length }}", "3"),
    ("{{ '&amp; &'|escape_once }}", "&amp; &amp;"),
    ("{{ 'a b'|urlencodeplus }} {{ 'a%20b'|urldecode }} {{ 'a+b'|urldecodeplus }}", "a+b a b a b"),
    ("{{ 'x'|md5_hash }}", "9dd4e461268c8034f5c8564e155c67a6"),
    ("{{ 'x'|sha_1 }}", "11f6ad8ec52a2984abaafd7c3b516503785c2072"),
    ("{{ 'x'|sha_256|slice:':16' }}", "2d711642b726b044"),
    ("{{ 'example.com'|httpize }} {{ 'example.com'|httpsize }} {{ 'https://a.b/'|trim_slash }}",
     "http://example.com https://example.com https://a.b"),
    ("{{ words|count }} {{ words|size }}", "3 3"),
    ("{{ words|list_to_string }}", "apple, banana and orange"),
    ("{% for p in people|list_where:'name=a' %}{{ p.age }}{% endfor %}", "15"),
    ("{% for p in people|dictfilter:'age>2' %}{{ p.name }}{% endfor %}", "ba"),
    ("{{ people|map:'name'|join:'' }}", "baca"),
    ("{{ nums|reverse|join:'' }} {{ 'abc'|reverse }}", "213 cba"),
    ("{{ nums|sort|join:'' }} {{ people|sort:'age'|map:'name'|join:'' }}", "123 acba"),
    ("{{ mixed_case|sort_natural|join:'' }}", "aBc"),
    ("{{ people|uniq:'name'|length }} {{ dupes|uniq|join:'' }}", "3 ab"),
    ("{{ feeds.Blog.items|index:1|lookup:'title' }}", "Two"),
    ("{{ '2025-04-21'|weeks_since:'2025-05-05' }}", "2"),
    ("{{ '2026-02-22'|weeks_since }}", "1"),
    ("{{ '2016-02-11'|datetime_from_string|date:'Y' }}", "2016"),
    ("{{ 'not a date'|format_date_string }}", ""),
]

EXTRA_CONTEXT = {"multiline": "a\nb", "none_list": [1, None, 2], "mixed_case": ["c", "B", "a"],
                 "dupes": ["a", "b", "a"]}


@pytest.mark.parametrize(("template", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_tag_and_filter_table(template: str, expected: str) -> None:
    assert render(template, {**CONTEXT, **EXTRA_CONTEXT}, ENV) == expected


def test_every_tag_is_in_the_table() -> None:
    used = " ".join(template for template, _ in CASES)
    tags = set(engine().template_builtins[0].tags)
    missing = sorted(tag for tag in tags if f"{{% {tag}" not in used)
    assert not missing, f"tags without a table row: {missing}"
    assert ALLOWED_TAGS <= tags


def test_every_klaviyo_filter_is_in_the_table() -> None:
    from menura.templating import klaviyo_filters

    used = " ".join(template for template, _ in CASES)
    missing = sorted(name for name in klaviyo_filters.register.filters
                     if f"|{name}" not in used and f"| {name}" not in used)
    assert not missing, f"Klaviyo filters without a table row: {missing}"


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize(("template", "line", "reason"), [
    ("ok\n{% if %}\n", 2, "Unexpected end of expression in if tag"),
    ("a\nb\n{{ x|nofilter }}", 3, "Invalid filter: 'nofilter'"),
    ("{% for x in y %}", 1, "Unclosed tag"),
    ("{% elsif x %}", 1, "Invalid block tag"),
    ("{{ person | lookup: 'Name' }}", 1, "requires 2 arguments"),
])
def test_broken_templates_name_line_and_reason(template: str, line: int, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template, {})
    assert info.value.line == line
    assert reason in info.value.reason


def test_coupon_code_needs_a_provider() -> None:
    with pytest.raises(TemplateError, match="coupon"):
        render("{% coupon_code 'X' %}", {}, RenderEnv(now=NOW))


# --------------------------------------------------------------------------- sandbox

@pytest.mark.parametrize("template", [
    "{% include 'other.html' %}",
    "{% extends 'base.html' %}",
    "{% load static %}",
    "{% debug %}",
    "{% url 'home' %}",
    "{% lorem 100000 w %}",
    "{% csrf_token %}",
    "{% ssi '/etc/passwd' %}",
    "{{ x.__class__ }}",
    "{{ x.__class__.__mro__ }}",
    "{{ person._secret }}",
    "{% for a in x.__subclasses__ %}{% endfor %}",
    "{{ x|json_script:'id' }}",
    "{{ x|pprint }}",
])
def test_escapes_are_refused_at_compile_time(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, {"x": "s", "person": {"_secret": "no"}})


def test_data_cannot_be_mutated_by_zero_argument_methods() -> None:
    person = {"a": 1}
    items = [1, 2, 3]
    out = render("{{ p.clear }}{{ p.popitem }}{{ l.pop }}{{ l.clear }}{{ l.reverse }}|{{ p.a }}{{ l|length }}",
                 {"p": person, "l": items})
    assert out.endswith("|13")
    assert person == {"a": 1} and items == [1, 2, 3]


def test_mapping_keys_win_over_method_names() -> None:
    assert render("{{ feed.items.0 }}{{ feed.keys }}", {"feed": {"items": ["x"], "keys": "k"}}) == "xk"


def test_huge_loops_are_stopped() -> None:
    nested = "{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderLimitError, match="iterations"):
        render(nested, {"x": list(range(1000))})
    assert time.monotonic() - started < 2


def test_output_is_bounded() -> None:
    with pytest.raises(RenderLimitError, match="output"):
        render("{% for a in x %}{% for b in x %}{{ s }}{% endfor %}{% endfor %}",
               {"x": list(range(300)), "s": "y" * 100})


@pytest.mark.parametrize("template", [
    "{{ 'a'|ljust:'1000000000' }}",
    "{{ 'a'|center:'99999999999999' }}",
    "{{ 1.5|floatformat:'999999' }}",
    "{{ 1|stringformat:'0999999999d' }}",
    "{{ 1.5|round_up:'99999999' }}",
    "{{ s|add:s|add:s }}",
])
def test_amplifying_filters_are_bounded(template: str) -> None:
    with pytest.raises(RenderLimitError):
        render(template, {"s": "a" * 600_000})


def test_render_time_is_limited() -> None:
    limits = Limits(max_seconds=0.05, max_iterations=10**9, max_output_chars=10**9)
    with pytest.raises(RenderLimitError, match="longer than"):
        render("{% for a in x %}{% for b in x %}{{ a|add:b }}{% endfor %}{% endfor %}",
               {"x": list(range(3000))}, limits=limits)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(TemplateError):
        render("{% if x %}" * 2000 + "{% endif %}" * 2000, {"x": True})


def test_source_size_is_limited() -> None:
    with pytest.raises(TemplateError, match="longer than"):
        render("x" * 101, {}, limits=Limits(max_source_chars=100))
