"""Identifier validation and normalization, and the signed `_kx` token."""

from __future__ import annotations

import pytest

from menura.domain import identity
from menura.jsonapi.errors import ApiError

SECRET = b"s" * 32


@pytest.mark.parametrize(("raw", "stored"), [
    ("Sarah.Mason@Klaviyo-Demo.com", "sarah.mason@klaviyo-demo.com"),
    ("  bob@example.com ", "bob@example.com"),
])
def test_email_is_stored_lower_cased(raw, stored):
    assert identity.normalize_email(raw) == stored


@pytest.mark.parametrize("raw", ["", "not-an-email", "a@", "@b.com", "a b@c.com", "x" * 330 + "@e.com"])
def test_invalid_email_is_a_400_pointing_at_the_field(raw):
    with pytest.raises(ApiError) as caught:
        identity.normalize_email(raw, pointer="/data/attributes/email")
    assert caught.value.status == 400
    assert caught.value.pointer == "/data/attributes/email"


@pytest.mark.parametrize(("raw", "stored"), [
    ("+15005550006", "+15005550006"),
    ("+1 (500) 555-0006", "+15005550006"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_phone_is_stored_in_e164(raw, stored):
    assert identity.normalize_phone(raw) == stored


@pytest.mark.parametrize("raw", ["5005550006", "+1", "+1500555000612345", "phone", "+999123456"])
def test_invalid_phone_is_a_400(raw):
    with pytest.raises(ApiError) as caught:
        identity.normalize_phone(raw)
    assert caught.value.status == 400
    assert caught.value.pointer == "/data/attributes/phone_number"


def test_opaque_identifiers_are_trimmed_and_bounded():
    assert identity.normalize_opaque("  ext-1 ", "external_id") == "ext-1"
    with pytest.raises(ApiError):
        identity.normalize_opaque("   ", "external_id")
    with pytest.raises(ApiError):
        identity.normalize_opaque("x" * 256, "external_id")


def test_kx_round_trips_and_is_bound_to_account_and_secret():
    token = identity.kx_token(SECRET, "AbC123", "01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert identity.kx_profile_id(SECRET, "AbC123", token) == "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert identity.kx_profile_id(SECRET, "Other1", token) is None
    assert identity.kx_profile_id(b"t" * 32, "AbC123", token) is None


@pytest.mark.parametrize("token", ["", "abc", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_forged_or_malformed_kx_is_rejected(token):
    assert identity.kx_profile_id(SECRET, "AbC123", token) is None


def test_tampered_kx_is_rejected():
    token = identity.kx_token(SECRET, "AbC123", "01HAAAAAAAAAAAAAAAAAAAAAAA")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert identity.kx_profile_id(SECRET, "AbC123", flipped) is None
