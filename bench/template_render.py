"""Template rendering throughput: renders per second of a personalized ~20 KB email template, one
render per recipient as the campaign dispatcher does.

Limit, measured in the same run: Django's own template engine rendering the same template with the
same tag and filter libraries, without Menura's sandbox (no frozen data, no loop/output/time
metering, no filter guards). The ratio is the sandbox's cost.

    python bench/template_render.py [--size 20000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

from menura.templating import RenderEnv, compile_template
from menura.templating.engine import engine as sandboxed_engine

# Static marketing copy, as most of a real email is, with a variable here and there.
ROW = """
<tr>
  <td class="block" style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5">
    <img src="https://cdn.example/banner.jpg" alt="Spring collection" width="552" style="display:block;border:0">
    <h2 style="margin:16px 0 8px;font-size:22px;color:#222">New in: the spring collection</h2>
    <p style="margin:0 0 12px;color:#444">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod
       tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation
       ullamco laboris nisi ut aliquip ex ea commodo consequat, {{ first_name|default:'friend'|title }}.</p>
    <table role="presentation" cellpadding="0" cellspacing="0" border="0" align="center"><tr>
      <td style="background:#111;border-radius:4px"><a href="https://shop.example/spring?utm_source=email"
        style="display:inline-block;padding:12px 28px;color:#fff;text-decoration:none">Shop now</a></td>
    </tr></table>
  </td>
</tr>"""

HEAD = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{{ organization.name }}</title>
<style>.block{color:#333}.price{font-weight:bold}.old{text-decoration:line-through}</style></head>
<body><table role="presentation" width="600" align="center">
<tr><td><h1>Hello {{ first_name|default:'friend'|title }}!</h1>{% web_view 'View in browser' %}</td></tr>
<tr><td>{% if person|lookup:'Loyalty Tier' == 'gold' %}Gold members get free shipping.{% else %}Join our
loyalty club.{% endif %} You have {{ person|lookup:'Points'|default:0 }} points; they expire
{{ event.expires|format_date_string|date:'F j, Y' }}.</td></tr>
<tr><td>{% for item in event.Items %}<table role="presentation" width="100%"><tr>
  <td width="80"><img src="{{ item.image }}" alt="{{ item.name|title }}" width="80"></td>
  <td>{{ item.name|title }} &times; {{ item.quantity }} <span class="price">{% currency_format item.price %}</span>
  <span class="old">{{ item.price|multiply:1.2|floatformat:2 }}</span></td></tr></table>{% endfor %}</td></tr>"""

TAIL = """<tr><td>{{ organization.name }} &middot; {{ organization.full_address }}<br>
{% unsubscribe %} | {% manage_preferences %} &copy; {% current_year %}</td></tr></table></body></html>"""


def build_template(size: int) -> str:
    body = HEAD
    while len(body) + len(TAIL) < size:
        body += ROW
    return body + TAIL


def contexts(count: int) -> list[dict]:
    names = ["ann", "bob", "chloé", "dmitri", "eve", "farah", "gus", "hana"]
    out = []
    for i in range(count):
        out.append({
            "first_name": names[i % len(names)],
            "email": f"user{i}@example.com",
            "person": {"Loyalty Tier": ["gold", "silver"][i % 2], "Points": i * 7},
            "organization": {"name": "Acme Shop", "full_address": "1 Main St, Boston, MA"},
            "event": {"expires": "2026-06-30T12:00:00+00:00",
                      "Items": [{"name": "wool hat", "quantity": 1 + i % 3, "price": 25.0 + i % 50,
                                 "image": "https://cdn.example/hat.png"},
                                {"name": "leather bag", "quantity": 1, "price": 120.0,
                                 "image": "https://cdn.example/bag.png"}]},
        })
    return out


def plain_engine():
    """Django's engine with Klaviyo's libraries registered, and nothing of the sandbox."""
    from django.template import Engine

    from menura.templating import klaviyo_filters, klaviyo_tags

    sandboxed_engine()  # configures Django settings once
    eng = Engine(debug=False, loaders=[], libraries={}, string_if_invalid="")
    eng.template_builtins = [*eng.template_builtins, klaviyo_tags.register, klaviyo_filters.register]
    return eng


def measure(render_one, seconds: float, recipients: list[dict]) -> tuple[float, int]:
    renders = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for context in recipients:
            render_one(context)
        renders += len(recipients)
    return renders / (time.perf_counter() - started), renders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000, help="template size in characters (default 20000)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3)")
    args = parser.parse_args()

    from django.template import Context, Template

    source = build_template(args.size)
    env = RenderEnv(now=datetime(2026, 5, 1, tzinfo=UTC), links={"unsubscribe": "https://x.example/u",
                                                                 "manage_preferences": "https://x.example/p",
                                                                 "web_view": "https://x.example/w"})
    recipients = contexts(50)
    ours = compile_template(source)
    theirs = Template(source, engine=plain_engine())

    from menura.templating import limits

    def render_plain(context: dict) -> str:
        token = limits.activate(limits.RenderState(limits.DEFAULT_LIMITS, env))  # same env for the Klaviyo tags
        try:
            return theirs.render(Context(context))
        finally:
            limits.deactivate(token)

    sample = recipients[0]
    assert ours.render(sample, env) == render_plain(sample), "both engines must produce the same message"
    output_size = len(ours.render(sample, env))

    # Alternate to spread machine noise over both figures.
    half = args.seconds / 2
    our_rates, limit_rates = [], []
    for _ in range(2):
        our_rates.append(measure(lambda c: ours.render(c, env), half, recipients)[0])
        limit_rates.append(measure(render_plain, half, recipients)[0])
    ours_rate, limit_rate = max(our_rates), max(limit_rates)

    print(f"machine: {os.cpu_count()} cores, {datetime.now(UTC).date().isoformat()}")
    print(f"{'workload':<44} {'size':>14} {'ours':>12} {'limit':>12} {'ratio':>7}")
    size = f"{len(source) // 1000} KB -> {output_size // 1000} KB"
    print(f"{'T1 template render (1 core, per recipient)':<44} {size:>14} "
          f"{ours_rate:>8.0f} r/s {limit_rate:>8.0f} r/s {ours_rate / limit_rate:>7.2f}")


if __name__ == "__main__":
    main()
