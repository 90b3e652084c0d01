"""Push token parsing, and the stricter rate tier for costly profile reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from menura.api import profiles as profiles_api
from menura.api.costly import limit_costly
from menura.domain import push_tokens
from menura.jsonapi.errors import ApiError
from menura.ratelimit import MemoryRateLimiter


def test_push_token_defaults_and_metadata():
    parsed = push_tokens.parse_push_token({"token": " abc ", "platform": "ios", "vendor": "apns",
                                           "device_metadata": {"os_name": "ios", "app_version": "1.2"}})
    assert parsed.token == "abc"
    assert (parsed.enablement_status, parsed.background) == ("AUTHORIZED", "AVAILABLE")
    assert parsed.metadata == {"os_name": "ios", "app_version": "1.2"}


@pytest.mark.parametrize(("attrs", "pointer"), [
    ({"platform": "ios", "vendor": "apns"}, "/data/attributes/token"),
    ({"token": "t", "vendor": "apns"}, "/data/attributes/platform"),
    ({"token": "t", "platform": "ios"}, "/data/attributes/vendor"),
    ({"token": "t", "platform": "android", "vendor": "apns"}, "/data/attributes/vendor"),
    ({"token": "t", "platform": "ios", "vendor": "apns", "background": "ON"}, "/data/attributes/background"),
    ({"token": "t", "platform": "ios", "vendor": "apns", "device_metadata": {"os_name": "beos"}},
     "/data/attributes/device_metadata/os_name"),
    ({"token": "t", "platform": "ios", "vendor": "apns", "device_metadata": {"colour": "red"}},
     "/data/attributes/device_metadata/colour"),
])
def test_push_token_bad_input(attrs, pointer):
    with pytest.raises(ApiError) as caught:
        push_tokens.parse_push_token(attrs)
    assert caught.value.pointer == pointer


def test_token_ids_are_stable_per_account():
    assert push_tokens.token_id("A", "t") == push_tokens.token_id("A", "t")
    assert push_tokens.token_id("A", "t") != push_tokens.token_id("B", "t")
    assert len(push_tokens.token_id("A", "t")) == 32


def test_costly_reads_have_their_own_tier():
    ctx = SimpleNamespace(services=SimpleNamespace(rate_limiter=MemoryRateLimiter()), account_id="acct",
                          operation=SimpleNamespace(operation_id="get_profile"))
    limit_costly(ctx, "include:lists", profiles_api.INCLUDE_LISTS_RATE)
    with pytest.raises(ApiError) as caught:
        limit_costly(ctx, "include:lists", profiles_api.INCLUDE_LISTS_RATE)
    assert caught.value.status == 429 and "Retry-After" in caught.value.headers
