"""The hand-made HMAC and base32 shortcuts of tracking tokens equal the standard library's."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from menura.delivery import tracking


@pytest.mark.parametrize("payload", [b"", b"x", b"y" * 63, b"z" * 64, b"w" * 1000])
def test_mac_is_hmac_sha256(payload: bytes) -> None:
    signer = tracking.TokenSigner(b"server secret")
    assert signer._mac(payload) == hmac.new(signer._key, payload, hashlib.sha256).digest()


@pytest.mark.parametrize("chars", [1, 7, 8, 9, 12, 16, 26, 51])
def test_b32_prefix(chars: int) -> None:
    data = hashlib.sha256(str(chars).encode()).digest()
    assert tracking._b32(data, chars) == base64.b32encode(data).decode().lower()[:chars]


def test_delivery_id_and_verp_are_unchanged() -> None:
    digest = hashlib.sha256(b"ACC\0campaign:M:P").digest()
    assert tracking.delivery_id("ACC", "campaign:M:P") == base64.b32encode(digest).decode().lower()[:26]
    signer = tracking.TokenSigner(b"s")
    mac = hmac.new(signer._key, b"verp:abc", hashlib.sha256).digest()
    assert signer.verp_local_part("bounces", "abc") == f"bounces+abc-{base64.b32encode(mac).decode().lower()[:12]}"
