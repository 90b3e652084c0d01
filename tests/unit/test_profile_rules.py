"""Profile rules against a real (SQLite) database: identity resolution, updates, consent,
suppressions, merge and deletion — the contract the events and lists areas build on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from menura.domain import accounts, consent, identity
from menura.domain import profiles as rules
from menura.domain.profiles import ProfileInput, profile_input_from_attributes
from menura.jsonapi.errors import ApiError
from menura.store import profiles as store
from menura.store.db import Database
from menura.store.migrate import upgrade
from tests import work_fixtures as wf

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SECRET = b"k" * 32


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request, tmp_path_factory):
    """Migrated from scratch (so the migration itself is tested) on both databases."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('profiles') / 'p.db'}")
        upgrade(database)
        yield database
        database.dispose()
        return
    with wf._postgres_schema() as url:
        database = Database(url)
        upgrade(database)
        yield database
        database.dispose()


@pytest.fixture
def acct(db) -> str:
    return accounts.create_account(db, T0, name="Rules shop").account_id


def parse(attrs, meta=None, profile_id=None) -> ProfileInput:
    return profile_input_from_attributes(attrs, meta=meta, profile_id=profile_id)


def resolve(db, acct, data, now=T0, **kwargs):
    with db.write() as conn:
        return rules.resolve_profile(conn, account_id=acct, data=data, now=now, **kwargs)


def row(db, acct, pid):
    with db.read() as conn:
        return store.get_profile(conn, acct, pid)


# --------------------------------------------------------------------------- parsing


def test_parsing_normalizes_identifiers_and_remembers_explicit_nulls():
    data = parse({"email": "Ann@Example.com", "phone_number": "+1 500 555 0006", "first_name": None})
    assert data.email == "ann@example.com"
    assert data.phone_number == "+15005550006"
    assert data.cleared("first_name") and not data.cleared("last_name")
    assert data.has("email") and not data.has("external_id")


@pytest.mark.parametrize(("attrs", "pointer"), [
    ({"email": "nope"}, "/data/attributes/email"),
    ({"email": 5}, "/data/attributes/email"),
    ({"phone_number": "12"}, "/data/attributes/phone_number"),
    ({"location": {"city": 3}}, "/data/attributes/location/city"),
    ({"location": {"planet": "Mars"}}, "/data/attributes/location/planet"),
    ({"location": {"latitude": 100}}, "/data/attributes/location/latitude"),
    ({"properties": [1]}, "/data/attributes/properties"),
    ({"favourite": "x"}, "/data/attributes/favourite"),
    ({"first_name": "x" * 300}, "/data/attributes/first_name"),
])
def test_bad_attributes_are_400_with_a_pointer(attrs, pointer):
    with pytest.raises(ApiError) as caught:
        parse(attrs)
    assert caught.value.status == 400
    assert caught.value.pointer == pointer


def test_bad_patch_properties_point_into_meta():
    with pytest.raises(ApiError) as caught:
        parse({"email": "a@b.co"}, meta={"patch_properties": {"append": {"skus": {"a": 1}}}})
    assert caught.value.pointer == "/data/meta/patch_properties/append/skus"


# --------------------------------------------------------------------------- resolution


def test_resolve_creates_then_finds_by_any_identifier(db, acct):
    pid, created = resolve(db, acct, ProfileInput(email="a@x.io", external_id="E1"))
    assert created
    assert resolve(db, acct, ProfileInput(email="a@x.io")) == (pid, False)
    assert resolve(db, acct, ProfileInput(external_id="E1")) == (pid, False)
    assert resolve(db, acct, ProfileInput(id=pid)) == (pid, False)


def test_resolve_requires_an_identifier(db, acct):
    with pytest.raises(ApiError) as caught:
        resolve(db, acct, ProfileInput(first_name="Nobody"))
    assert caught.value.status == 400


def test_resolve_adds_new_identifiers_and_never_steals_taken_ones(db, acct):
    a, _ = resolve(db, acct, ProfileInput(email="a@x.io"))
    b, _ = resolve(db, acct, ProfileInput(phone_number="+15005550006"))
    # email names `a` (higher precedence); the phone belongs to `b` and stays there.
    got, created = resolve(db, acct, ProfileInput(email="a@x.io", phone_number="+15005550006", external_id="X9"))
    assert (got, created) == (a, False)
    assert row(db, acct, a).phone_number is None
    assert row(db, acct, a).external_id == "X9"
    assert row(db, acct, b).phone_number == "+15005550006"


def test_strict_resolution_answers_409_with_the_other_profile(db, acct):
    resolve(db, acct, ProfileInput(email="a@x.io"))
    b, _ = resolve(db, acct, ProfileInput(external_id="B"))
    with pytest.raises(ApiError) as caught:
        resolve(db, acct, ProfileInput(email="a@x.io", external_id="B"), conflicts="error")
    assert caught.value.status == 409
    assert caught.value.meta == {"duplicate_profile_id": b}


def test_identifiers_are_per_account(db, acct):
    other = accounts.create_account(db, T0, name="Other").account_id
    a, _ = resolve(db, acct, ProfileInput(email="same@x.io"))
    b, created = resolve(db, other, ProfileInput(email="same@x.io"))
    assert created and a != b
    with db.read() as conn:
        assert rules.get_profile_ids_existing(conn, acct, [a, b]) == {a}


def test_kx_identifies_the_profile_only_with_the_right_secret(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="kx@x.io"))
    token = identity.kx_token(SECRET, acct, pid)
    assert resolve(db, acct, ProfileInput(kx=token, first_name="K"), secret=SECRET) == (pid, False)
    assert row(db, acct, pid).first_name == "K"
    with pytest.raises(ApiError):  # a forged token identifies nobody, and is no identifier on its own
        resolve(db, acct, ProfileInput(kx=token + "x"), secret=SECRET)


def test_update_false_leaves_attributes_alone(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="u@x.io", first_name="Old"))
    resolve(db, acct, ProfileInput(email="u@x.io", first_name="New"), update=False)
    assert row(db, acct, pid).first_name == "Old"


def test_client_side_resolution_never_changes_identifiers(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(external_id="C1", email="c@x.io"))
    resolve(db, acct, ProfileInput(external_id="C1", phone_number="+15005550006", first_name="Cli"),
            update_identifiers=False)
    current = row(db, acct, pid)
    assert current.phone_number is None and current.first_name == "Cli"


# --------------------------------------------------------------------------- updates


def test_null_clears_absent_keeps_and_updated_moves_only_on_change(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="n@x.io", first_name="Ann", last_name="Lee"))
    later = T0 + timedelta(hours=1)
    resolve(db, acct, parse({"email": "n@x.io", "first_name": None}), now=later)
    current = row(db, acct, pid)
    assert current.first_name is None and current.last_name == "Lee"
    assert current.updated == later and current.created == T0
    resolve(db, acct, parse({"email": "n@x.io", "last_name": "Lee"}), now=later + timedelta(hours=1))
    assert row(db, acct, pid).updated == later


def test_location_and_properties_merge_key_by_key(db, acct):
    pid, _ = resolve(db, acct, parse({"email": "l@x.io", "location": {"city": "Boston", "zip": "02110"},
                                      "properties": {"a": 1, "nested": {"x": 1}}}))
    resolve(db, acct, parse({"email": "l@x.io", "location": {"city": "Paris", "zip": None},
                             "properties": {"b": 2, "nested": {"y": 2}}}))
    current = row(db, acct, pid)
    assert current.location == {"city": "Paris"}
    assert current.properties == {"a": 1, "b": 2, "nested": {"y": 2}}
    resolve(db, acct, parse({"email": "l@x.io", "location": None, "properties": None}))
    current = row(db, acct, pid)
    assert current.location is None and current.properties == {}


def test_patch_properties_append_unappend_unset(db, acct):
    pid, _ = resolve(db, acct, parse({"email": "p@x.io", "properties": {"skus": ["a"], "tier": "gold",
                                                                         "one": "x"}}))
    meta = {"patch_properties": {"append": {"skus": ["b", "c"], "one": "y", "new": 1},
                                 "unappend": {"skus": "a"}, "unset": ["tier"]}}
    resolve(db, acct, parse({"email": "p@x.io"}, meta=meta))
    assert row(db, acct, pid).properties == {"skus": ["b", "c"], "one": ["x", "y"], "new": [1]}


def test_secondary_emails_identify_and_can_be_removed(db, acct):
    pid, _ = resolve(db, acct, parse({"email": "main@x.io"},
                                     meta={"patch_identifiers": {"append": {"email": ["Alt@X.io"]}}}))
    assert resolve(db, acct, ProfileInput(email="alt@x.io")) == (pid, False)
    resolve(db, acct, parse({"email": "main@x.io"}, meta={"patch_identifiers": {"unappend": {"email": "alt@x.io"}}}))
    other, created = resolve(db, acct, ProfileInput(email="alt@x.io"))
    assert created and other != pid


def test_create_profile_is_409_on_any_taken_identifier(db, acct):
    with db.write() as conn:
        pid = rules.create_profile(conn, account_id=acct, data=ProfileInput(phone_number="+15005550006"), now=T0)
    with db.write() as conn, pytest.raises(ApiError) as caught:
        rules.create_profile(conn, account_id=acct, data=ProfileInput(email="new@x.io", phone_number="+15005550006"),
                             now=T0)
    assert caught.value.status == 409 and caught.value.meta["duplicate_profile_id"] == pid


def test_touch_last_event_only_moves_forward(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="t@x.io"))
    with db.write() as conn:
        rules.touch_last_event(conn, acct, pid, T0 + timedelta(days=2))
        rules.touch_last_event(conn, acct, pid, T0 + timedelta(days=1))
    assert row(db, acct, pid).last_event_date == T0 + timedelta(days=2)


# --------------------------------------------------------------------------- consent


def test_email_consent_and_suppressions_drive_can_receive(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="c@x.io"))
    with db.write() as conn:
        consent.set_email_marketing(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0,
                                    method="API", double_optin=True)
    view = consent.subscriptions_view(row(db, acct, pid))["email"]["marketing"]
    assert view["consent"] == "SUBSCRIBED" and view["can_receive_email_marketing"] is True
    assert view["double_optin"] is True and view["method"] == "API"
    with db.write() as conn:
        consent.suppress_email(conn, account_id=acct, profile_id=pid, reason="HARD_BOUNCE", now=T0)
        assert not consent.unsuppress_email(conn, account_id=acct, profile_id=pid, now=T0)
    view = consent.subscriptions_view(row(db, acct, pid))["email"]["marketing"]
    assert view["can_receive_email_marketing"] is False
    assert view["suppression"] == [{"reason": "HARD_BOUNCE", "timestamp": T0.isoformat()}]


def test_subscribing_lifts_user_suppression_but_not_a_bounce(db, acct):
    a, _ = resolve(db, acct, ProfileInput(email="s1@x.io"))
    b, _ = resolve(db, acct, ProfileInput(email="s2@x.io"))
    with db.write() as conn:
        consent.suppress_email(conn, account_id=acct, profile_id=a, reason="USER_SUPPRESSED", now=T0)
        consent.suppress_email(conn, account_id=acct, profile_id=b, reason="INVALID_EMAIL", now=T0)
        for pid in (a, b):
            consent.set_email_marketing(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0)
    assert row(db, acct, a).email_suppression_reason is None
    assert row(db, acct, b).email_suppression_reason == "INVALID_EMAIL"


def test_unsubscribing_suppresses_with_unsubscribe(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="un@x.io"))
    with db.write() as conn:
        consent.set_email_marketing(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0)
        consent.set_email_marketing(conn, account_id=acct, profile_id=pid, consent="UNSUBSCRIBED", now=T0)
    current = row(db, acct, pid)
    assert current.email_consent == "UNSUBSCRIBED" and current.email_suppression_reason == "UNSUBSCRIBE"


def test_sms_consent_needs_a_phone_number(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="nophone@x.io"))
    with db.write() as conn, pytest.raises(ApiError):
        consent.set_sms_marketing(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0)
    pid, _ = resolve(db, acct, ProfileInput(phone_number="+15005550006"))
    with db.write() as conn:
        assert consent.set_sms_marketing(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0)
        assert not consent.set_sms_marketing(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0)
        consent.set_sms_transactional(conn, account_id=acct, profile_id=pid, consent="SUBSCRIBED", now=T0)
    sms = consent.subscriptions_view(row(db, acct, pid))["sms"]
    assert sms["marketing"]["can_receive_sms_marketing"] is True
    assert sms["transactional"]["can_receive_sms_transactional"] is True


def test_list_suppressions_show_in_the_view(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="ls@x.io"))
    with db.write() as conn:
        assert consent.add_list_suppression(conn, account_id=acct, profile_id=pid, list_id="L1",
                                            reason="UNSUBSCRIBE", now=T0)
        assert not consent.add_list_suppression(conn, account_id=acct, profile_id=pid, list_id="L1",
                                                reason="UNSUBSCRIBE", now=T0)
        view = consent.subscriptions_for(conn, acct, [store.get_profile(conn, acct, pid)])[pid]
    assert view["email"]["marketing"]["list_suppressions"] == [
        {"list_id": "L1", "reason": "UNSUBSCRIBE", "timestamp": T0.isoformat()}]


# --------------------------------------------------------------------------- merge and delete


def test_merge_keeps_destination_values_and_fills_gaps(db, acct):
    dest, _ = resolve(db, acct, parse({"email": "d@x.io", "first_name": "Dest", "properties": {"a": 1}}))
    src, _ = resolve(db, acct, parse({"email": "s@x.io", "phone_number": "+15005550006", "first_name": "Src",
                                      "last_name": "Ource", "properties": {"a": 2, "b": 3}}),
                     now=T0 - timedelta(days=3))
    seen: list = []
    rules.PROFILE_MERGE_HOOKS.append(lambda conn, account, survivor, merged: seen.append((survivor, list(merged))))
    try:
        with db.write() as conn:
            rules.merge_profiles(conn, account_id=acct, destination_id=dest, source_ids=[src], now=T0)
    finally:
        rules.PROFILE_MERGE_HOOKS.pop()
    assert seen == [(dest, [src])]
    merged = row(db, acct, dest)
    assert (merged.first_name, merged.last_name, merged.phone_number) == ("Dest", "Ource", "+15005550006")
    assert merged.properties == {"a": 1, "b": 3}
    assert merged.created == T0 - timedelta(days=3)
    assert row(db, acct, src) is None
    # One profile with one email address: the source's email is free again.
    assert resolve(db, acct, ProfileInput(email="s@x.io"))[1] is True


def test_delete_everywhere_runs_hooks_and_frees_identifiers(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="gone@x.io"))
    called: list = []
    rules.PROFILE_DELETE_HOOKS.append(lambda conn, account, profile: called.append(profile))
    try:
        with db.write() as conn:
            for target in rules.profiles_to_delete(conn, acct, email="gone@x.io"):
                rules.delete_profile_everywhere(conn, acct, target)
    finally:
        rules.PROFILE_DELETE_HOOKS.pop()
    assert called == [pid] and row(db, acct, pid) is None
    again, created = resolve(db, acct, ProfileInput(email="gone@x.io"))
    assert created and again != pid


def test_the_last_identifier_cannot_be_cleared(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="last@x.io", phone_number="+15005550006"))
    with db.write() as conn:
        rules.update_profile(conn, account_id=acct, profile_id=pid, data=parse({"email": None}), now=T0)
    with db.write() as conn, pytest.raises(ApiError) as caught:
        rules.update_profile(conn, account_id=acct, profile_id=pid, data=parse({"phone_number": None}), now=T0)
    assert caught.value.status == 400
    assert row(db, acct, pid).phone_number == "+15005550006"


def test_identifier_only_input_for_a_known_profile_writes_nothing(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="quiet@x.io"))
    resolve(db, acct, ProfileInput(email="quiet@x.io"), now=T0 + timedelta(days=1))
    assert row(db, acct, pid).updated == T0


def test_forgetting_a_list_drops_its_suppressions(db, acct):
    pid, _ = resolve(db, acct, ProfileInput(email="fl@x.io"))
    with db.write() as conn:
        consent.add_list_suppression(conn, account_id=acct, profile_id=pid, list_id="L9", reason="UNSUBSCRIBE",
                                     now=T0)
        consent.forget_list(conn, account_id=acct, list_id="L9")
        assert store.list_suppressions_for(conn, acct, [pid]) == {}
