"""Fast rules of lists, subscriptions and profile bulk jobs (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from menura.domain import lists, profile_jobs, subscriptions
from menura.engine.profile_jobs import _rebase, _strip_nulls
from menura.jsonapi.errors import ApiError

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BASE = "/data/attributes/profiles/data/0/attributes"


def pointer_of(call) -> str | None:
    with pytest.raises(ApiError) as err:
        call()
    return err.value.pointer


def test_list_name_and_opt_in_checks():
    assert lists.check_name("Newsletter") == "Newsletter"
    assert pointer_of(lambda: lists.check_name("   ")) == "/data/attributes/name"
    assert pointer_of(lambda: lists.check_name("x" * 256)) == "/data/attributes/name"
    assert pointer_of(lambda: lists.check_name(5)) == "/data/attributes/name"
    assert lists.check_opt_in("single_opt_in") == "single_opt_in"
    assert pointer_of(lambda: lists.check_opt_in(None)) == "/data/attributes/opt_in_process"
    assert lists.DEFAULT_OPT_IN == "double_opt_in"
    assert pointer_of(lambda: lists.check_member_count(["p"] * 1001)) == "/data"


def subscribe(attributes: dict, historical: bool = False, profile_id: str | None = None) -> dict:
    return subscriptions.parse_subscribe_profile({"attributes": attributes, "id": profile_id}, 0,
                                                 historical_import=historical, now=NOW)


def test_subscribe_entry_normalizes_identifiers_and_channels():
    entry = subscribe({"email": "Ann@Example.com", "phone_number": "+1 500 555 0006", "subscriptions": {
        "email": {"marketing": {"consent": "SUBSCRIBED"}, "open_tracking": {"consent": "SUBSCRIBED"}},
        "sms": {"marketing": {"consent": "SUBSCRIBED"}, "transactional": None},
        "whatsapp": {"marketing": {"consent": "SUBSCRIBED"}}}})
    assert entry["profile"] == {"email": "ann@example.com", "phone_number": "+15005550006"}
    assert entry["channels"] == {"email_marketing": {"consented_at": None}, "sms_marketing": {"consented_at": None}}


def test_consented_at_only_with_historical_import_and_in_the_past():
    marketing = {"consent": "SUBSCRIBED", "consented_at": "2025-01-01T00:00:00Z"}
    attrs = {"email": "a@example.com", "subscriptions": {"email": {"marketing": marketing}}}
    where = f"{BASE}/subscriptions/email/marketing/consented_at"
    assert pointer_of(lambda: subscribe(attrs)) == where
    entry = subscribe(attrs, historical=True)
    assert entry["channels"]["email_marketing"]["consented_at"] == "2025-01-01T00:00:00+00:00"
    future = {"email": "a@example.com", "subscriptions": {"email": {"marketing": {
        "consent": "SUBSCRIBED", "consented_at": "2030-01-01T00:00:00"}}}}
    assert pointer_of(lambda: subscribe(future, historical=True)) == where
    missing = {"email": "a@example.com", "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}
    assert pointer_of(lambda: subscribe(missing, historical=True)) == where


@pytest.mark.parametrize(("attributes", "pointer"), [
    ({"email": "a@example.com"}, f"{BASE}/subscriptions"),
    ({"email": "a@example.com", "subscriptions": {"fax": {}}}, f"{BASE}/subscriptions/fax"),
    ({"email": "a@example.com", "subscriptions": {"email": {"weekly": {}}}}, f"{BASE}/subscriptions/email/weekly"),
    ({"phone_number": "5550006", "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}},
     f"{BASE}/phone_number"),
    ({"email": "a@example.com", "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}},
     f"{BASE}/phone_number"),
    ({"subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}, BASE),
    ({"email": "a@example.com", "nickname": "x", "subscriptions": {}}, f"{BASE}/nickname"),
    ({"email": "a@example.com", "age_gated_date_of_birth": "1990-13-01", "subscriptions": {}},
     f"{BASE}/age_gated_date_of_birth"),
    ({"email": "a@example.com", "subscriptions": {"push": {"marketing": {"consent": "SUBSCRIBED"},
                                                           "tokens": [{"token": "t", "platform": "web"}]}}},
     f"{BASE}/subscriptions/push/tokens/0/platform"),
])
def test_subscribe_entry_errors_point_at_the_culprit(attributes, pointer):
    assert pointer_of(lambda: subscribe(attributes)) == pointer


def test_subscribe_by_profile_id_needs_no_identifier():
    entry = subscribe({"subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}},
                      profile_id="01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert entry["id"] == "01HZZZZZZZZZZZZZZZZZZZZZZZ" and entry["profile"] == {}


def test_unsubscribe_entry_wants_unsubscribed():
    good = subscriptions.parse_unsubscribe_profile({"attributes": {
        "email": "a@example.com", "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}}, 0, now=NOW)
    assert good["channels"] == {"email_marketing": {"consented_at": None}}
    assert pointer_of(lambda: subscriptions.parse_unsubscribe_profile({"attributes": {
        "email": "a@example.com", "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}}, 0,
        now=NOW)) == f"{BASE}/subscriptions/email/marketing/consent"


def test_confirmation_token_is_signed():
    secret = b"s3cret"
    token = subscriptions.confirmation_token(secret, "01PENDING")
    assert subscriptions.pending_id_from_token(secret, token) == "01PENDING"
    assert subscriptions.pending_id_from_token(b"other", token) is None
    assert subscriptions.pending_id_from_token(secret, "01OTHER." + token.split(".")[1]) is None
    assert subscriptions.pending_id_from_token(secret, "garbage") is None
    url = subscriptions.confirmation_url("https://m.example/", secret, "01PENDING")
    assert url == f"https://m.example/p/confirm/{token}"


def test_import_request_limits():
    small = {"attributes": {"email": "a@example.com"}, "id": None, "meta": None}
    profile_jobs.check_import_rows([small] * 10_000)
    assert pointer_of(lambda: profile_jobs.check_import_rows([])) == "/data/attributes/profiles/data"
    assert pointer_of(lambda: profile_jobs.check_import_rows([small] * 10_001)) == "/data/attributes/profiles/data"
    big = {"attributes": {"email": "b@example.com", "properties": {"x": "y" * 102_400}}, "id": None, "meta": None}
    assert pointer_of(lambda: profile_jobs.check_import_rows([small, big])) == "/data/attributes/profiles/data/1"


def test_import_rows_never_clear_with_null_and_errors_point_into_the_request():
    assert _strip_nulls({"email": "a@b.co", "first_name": None, "location": {"city": None, "zip": "1"}}) == {
        "email": "a@b.co", "location": {"zip": "1"}}
    assert _rebase("/data/attributes/email", 7) == "/data/attributes/profiles/data/7/attributes/email"
    assert _rebase(None, 2) == "/data/attributes/profiles/data/2"
