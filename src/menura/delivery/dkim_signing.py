"""DKIM signing (RFC 6376) with dkimpy's canonicalization and header hashing, and the RSA step done
by OpenSSL (`cryptography`): dkimpy's own RSA is pure-Python modular exponentiation, ~85% of its
signing time, and signing is the main cost of sending at campaign speed. RSASSA-PKCS1-v1_5 is
deterministic, so the result is byte for byte what `dkim.sign` produces (a unit test holds us to it).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

# Copied rather than made anew (with OpenSSL 3, making a hash object takes a process-wide lock).
_SHA256 = hashlib.sha256()

# Headers worth protecting; those absent from a message are simply not listed.
SIGNED_HEADERS: tuple[str, ...] = (
    "from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
    "list-unsubscribe", "list-unsubscribe-post", "x-menura-message",
)


class DkimSigner:
    def __init__(self, selector: str, domain: str, private_key_pem: bytes,
                 canonicalize: tuple[bytes, bytes] = (b"relaxed", b"simple")) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the DKIM key must be an RSA private key")
        self._key = key
        self.selector = selector.encode()
        self.domain = domain.encode()
        self._policy = dkim.CanonicalizationPolicy.from_c_value(b"/".join(canonicalize))

    @classmethod
    def from_files(cls, selector: str, domain: str, key_path: str) -> DkimSigner:
        return cls(selector, domain, Path(key_path).read_bytes())

    def signature_header(self, message: bytes, *, timestamp: int | None = None,
                         include: Sequence[str] = SIGNED_HEADERS) -> bytes:
        """The `DKIM-Signature: ...\\r\\n` line to put in front of `message` (CRLF line endings)."""
        # Only the header block goes through dkimpy's line parser; the body is everything after it.
        split = message.find(b"\r\n\r\n")
        if split < 0:
            headers, body = dkim.rfc822_parse(message)
        else:
            headers, body = dkim.rfc822_parse(message[:split + 4])[0], message[split + 4:]
        present = {name.lower() for name, _ in headers}
        include_headers = tuple(h.encode() for h in include if h.encode() in present)
        if b"from" not in include_headers:
            raise ValueError("a DKIM signature must cover the From header")
        body_hasher = _SHA256.copy()
        body_hasher.update(self._policy.canonicalize_body(body))
        body_hash = base64.b64encode(body_hasher.digest())
        fields = [
            (b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", self._policy.to_c_value()), (b"d", self.domain),
            (b"i", b"@" + self.domain), (b"q", b"dns/txt"), (b"s", self.selector),
            (b"t", str(int(time.time()) if timestamp is None else timestamp).encode()),
            (b"h", b" : ".join(include_headers)), (b"bh", body_hash),
            # A placeholder long enough that b= folds onto its own line, as dkimpy does.
            (b"b", b"0" * 60),
        ]
        name = b"DKIM-Signature"
        value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(name), linesep=b"\r\n")
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hasher = _SHA256.copy()
        dkim.hash_headers(hasher, self._policy, self._policy.canonicalize_headers(headers), include_headers,
                          (name, b" " + value), dict(fields))
        signature = self._key.sign(hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        fields[-1] = (b"b", base64.b64encode(signature))
        folded = dkim.fold(b"; ".join(b"=".join(f) for f in fields) + b"\r\n", namelen=len(name),
                           linesep=b"\r\n")
        return name + b": " + folded

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        return self.signature_header(message, timestamp=timestamp) + message
