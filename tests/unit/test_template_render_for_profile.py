"""Rendering a stored template for one recipient, as the campaign dispatcher will."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from menura.domain import accounts
from menura.domain import templates as rules
from menura.jsonapi.errors import ApiError
from menura.store.db import Database
from menura.store.migrate import upgrade
from menura.store.template_tables import web_feeds

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('tpl') / 'm.db'}")
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def account_id(db):
    return accounts.create_account(db, NOW, name="Acme Shop", currency="EUR", timezone="Europe/Paris").account_id


def _template(db, account_id, html, **kw):
    with db.write() as conn:
        return rules.create_template(conn, account_id, NOW, name="T", editor_type=kw.pop("editor_type", "CODE"),
                                     html=html, **kw).id


PROFILE = {"id": "01PROFILE", "attributes": {
    "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "phone_number": "+15555550100",
    "location": {"city": "Paris"}, "properties": {"Favorite Color": "green", "points": 12}}}


def test_profile_variables_event_organization_and_links(db, account_id):
    html = ("<html><head><style>p { color: red }</style></head><body>"
            "<p>{{ first_name }} {{ last_name }} / {{ person.full_name }} / {{ email }}</p>"
            "<p>{{ person|lookup:'Favorite Color' }} {{ person.location.city }} {{ person.id }}</p>"
            "<p>{{ event.OrderId }} {% currency_format event.Total %}</p>"
            "<p>{{ organization.name }} {% current_weekday %} {% now 'H:i' %}</p>"
            "<p>{{ coupon }} {% unsubscribe %}</p></body></html>")
    template_id = _template(db, account_id, html)
    with db.read() as conn:
        message = rules.render_for_profile(
            conn, account_id, template_id, PROFILE, {"properties": {"OrderId": "A-1", "Total": 12.5}},
            {"coupon": "extra"}, now=NOW, subject="Hi {{ first_name|upper }}",
            links={"unsubscribe": "https://u.example/x"})
    assert message.subject == "Hi ANN"
    assert "Ann Lee / Ann Lee / ann@example.com" in message.html
    assert "green Paris 01PROFILE" in message.html
    assert "A-1 €12.50" in message.html
    assert "Acme Shop Monday 14:00" in message.html  # account timezone (Paris, UTC+2 in May)
    assert '<a href="https://u.example/x">Unsubscribe</a>' in message.html
    assert '<p style="color: red;">' in message.html  # CSS inlined for sending
    assert message.text.startswith("Ann Lee / Ann Lee / ann@example.com")


def test_flat_profiles_and_missing_values(db, account_id):
    template_id = _template(db, account_id, "[{{ first_name|default:'friend' }}][{{ person.nope }}][{{ event.x }}]")
    with db.read() as conn:
        message = rules.render_for_profile(conn, account_id, template_id, {"email": "x@example.com"}, now=NOW,
                                           inline=False)
    assert message.html == "[friend][][]"
    assert message.amp is None


def test_feeds_are_available_by_name(db, account_id):
    with db.write() as conn:
        conn.execute(web_feeds.insert().values(
            id="f1", account_id=account_id, name="Deals", url="http://x", request_method="get", content_type="json",
            status="ok", content={"items": [{"t": "50% off"}]}, failures=0, created=NOW, updated=NOW))
    template_id = _template(db, account_id, "{% for d in feeds.Deals.items %}{{ d.t }}{% endfor %}{{ feeds.None.x }}")
    with db.read() as conn:
        message = rules.render_for_profile(conn, account_id, template_id, PROFILE, now=NOW, inline=False)
    assert message.html == "50% off"


def test_render_errors_become_400(db, account_id):
    template_id = _template(db, account_id, "{% coupon_code 'X' %}")
    with db.read() as conn, pytest.raises(ApiError) as info:
        rules.render_for_profile(conn, account_id, template_id, PROFILE, now=NOW)
    assert info.value.status == 400 and "coupon" in info.value.detail
    with db.read() as conn:
        message = rules.render_for_profile(conn, account_id, template_id, PROFILE, now=NOW,
                                           coupon_code=lambda name: "CODE-9", inline=False)
    assert message.html == "CODE-9"
