"""Profile identifiers: validation and the one normal form each is stored and matched in.

- email: syntax checked by `email-validator` (no DNS lookups: an API call must not depend on the
  network); stored lower-cased, so `Sarah@Example.com` and `sarah@example.com` are one profile.
- phone_number: parsed by `phonenumbers` and stored in E.164. Klaviyo asks for E.164; a number
  without a leading `+` has no country to be read in, so it is rejected rather than guessed.
- external_id / anonymous_id: opaque strings, kept as given (surrounding whitespace trimmed).
- _kx: Klaviyo's exchange id, a signed token for a profile id (see `kx_token`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError

MAX_EMAIL_LENGTH = 320
MAX_IDENTIFIER_LENGTH = 255


def normalize_email(value: str, *, pointer: str | None = "/data/attributes/email") -> str:
    """The stored form of an email address; 400 pointing at `pointer` when it is not one."""
    text = value.strip()
    if not text or len(text) > MAX_EMAIL_LENGTH:
        raise _invalid_email(value, pointer)
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        raise _invalid_email(value, pointer) from None
    return result.normalized.lower()


def _invalid_email(value: str, pointer: str | None) -> ApiError:
    return errors.invalid(f"Invalid email address: '{value}'.", pointer=pointer)


def normalize_phone(value: str, *, pointer: str | None = "/data/attributes/phone_number") -> str:
    """The E.164 form of a phone number; 400 when it is not a valid, complete international number."""
    text = value.strip()
    if not text.startswith("+"):
        raise _invalid_phone(value, pointer)
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise _invalid_phone(value, pointer) from None
    if not phonenumbers.is_valid_number(parsed):
        raise _invalid_phone(value, pointer)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _invalid_phone(value: str, pointer: str | None) -> ApiError:
    return errors.invalid(f"Invalid phone number format: '{value}'. Phone numbers must be valid and in E.164 "
                          "format, e.g. +15005550006.", pointer=pointer)


def normalize_opaque(value: str, name: str, *, pointer: str | None = None) -> str:
    text = value.strip()
    if not text:
        raise errors.invalid(f"'{name}' must not be blank.", pointer=pointer)
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise errors.invalid(f"'{name}' must be at most {MAX_IDENTIFIER_LENGTH} characters.", pointer=pointer)
    return text


# --------------------------------------------------------------------------- _kx

_KX_TAG_BYTES = 12


def _kx_tag(secret: bytes, account_id: str, profile_id: str) -> bytes:
    message = f"kx:{account_id}:{profile_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:_KX_TAG_BYTES]


def kx_token(secret: bytes, account_id: str, profile_id: str) -> str:
    """A URL-safe token naming the profile that only this server can mint (HMAC of the id)."""
    raw = profile_id.encode() + _kx_tag(secret, account_id, profile_id)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def kx_profile_id(secret: bytes, account_id: str, token: str) -> str | None:
    """The profile id a `_kx` token names, or None when the token is malformed or forged."""
    text = token.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) <= _KX_TAG_BYTES:
        return None
    body, tag = raw[:-_KX_TAG_BYTES], raw[-_KX_TAG_BYTES:]
    try:
        profile_id = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not hmac.compare_digest(tag, _kx_tag(secret, account_id, profile_id)):
        return None
    return profile_id
