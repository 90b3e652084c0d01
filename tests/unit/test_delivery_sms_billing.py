"""SMS segments (GSM-7 and UCS-2 limits), credits by destination country, and short link codes."""

from __future__ import annotations

import pytest

from menura.delivery.sms_billing import destination_country, is_gsm7, segment_count, text_cost
from menura.delivery.tracking import InvalidToken, TokenSigner


@pytest.mark.parametrize(("body", "segments"), [
    ("", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    # Extension characters take two places: 80 braces fill one segment, 81 need two.
    ("{" * 80, 1), ("{" * 81, 2),
    # An escape pair is never split: 152 + "€" cannot end the first 153-place segment.
    ("a" * 152 + "€" + "a" * 10, 2), ("a" * 152 + "€" + "a" * 152, 3),
    ("é" * 160, 1),  # é is in the GSM-7 alphabet
    ("ç" * 70, 1), ("ç" * 71, 2), ("ç" * 134, 2), ("ç" * 135, 3),  # ç is not (Ç is): UCS-2
    ("😀" * 35, 1), ("😀" * 36, 2),  # a surrogate pair is two code units
    ("a" * 66 + "😀" + "a" * 10, 2),
])
def test_segments(body: str, segments: int) -> None:
    assert segment_count(body) == segments


def test_alphabet() -> None:
    assert is_gsm7("Hello @ £5 {ok} €") and not is_gsm7("Hello 😀") and not is_gsm7("ç")


@pytest.mark.parametrize(("number", "country"), [
    ("+12025550101", "US"), ("+14165550102", "CA"), ("+1 (604) 555-0100", "CA"), ("+447700900123", "GB"),
    ("+61412345678", "AU"), ("+64211234567", "NZ"), ("+33612345678", None), ("2025550101", None), (None, None),
])
def test_destination_country(number: str | None, country: str | None) -> None:
    assert destination_country(number) == country


def test_credits_per_segment_by_country_and_mms() -> None:
    long = "a" * 200  # two segments
    assert text_cost(long, phone_number="+12025550101", has_media=False).credits == 2
    assert text_cost(long, phone_number="+14165550102", has_media=False).credits == 6
    assert text_cost(long, phone_number="+447700900123", has_media=False).credits == 10
    assert text_cost(long, phone_number="+61412345678", has_media=False).credits == 8
    assert text_cost(long, phone_number="+64211234567", has_media=False).credits == 20
    assert text_cost(long, phone_number="+33612345678", has_media=False).credits == 2  # outside the table
    # MMS: one message whatever its length, where MMS is offered; counted as SMS elsewhere.
    assert (text_cost(long * 5, phone_number="+12025550101", has_media=True).segments,
            text_cost(long * 5, phone_number="+12025550101", has_media=True).credits) == (1, 3)
    assert text_cost(long, phone_number="+14165550102", has_media=True).credits == 5
    assert text_cost(long, phone_number="+447700900123", has_media=True).credits == 10


def test_short_codes() -> None:
    signer = TokenSigner(b"secret")
    delivery = "abcdefghijklmnopqrstuvwxyz"
    code = signer.short_code(delivery, 11)
    assert len(code) == 26 + 1 + 10 and signer.parse_short_code(code) == (delivery, 11)
    for bad in (code[:-1] + ("a" if code[-1] != "a" else "b"), signer.short_code(delivery, 1)[:27] + code[27:],
                TokenSigner(b"other").short_code(delivery, 11), "", "x" * 37, code + "0", "é" * 40):
        with pytest.raises(InvalidToken):
            signer.parse_short_code(bad)
