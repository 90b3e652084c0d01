"""What one text message costs: its destination country, its segments, its credits.

Segments (GSM 03.38 / 3GPP 23.040): a body written only in the GSM-7 alphabet fits 160 characters
in one segment, and is sent in 153-character segments when longer (the other 7 carry the join
header); the extension characters (`{ } [ ] ~ \\ | ^ €` and form feed) take two places and an escape
pair is never split. Any other character makes the whole body UCS-2: 70 UTF-16 code units in one
segment, 67 per segment when longer, a surrogate pair never split. An MMS (a message with media) is
one message whatever its length.

Credits (Klaviyo help center, "Understanding Klaviyo's SMS credit system"): an SMS costs, per
segment, 1 credit to the United States, 3 to Canada, 5 to the United Kingdom, 4 to Australia and 10
to New Zealand; an MMS costs 3 credits to the United States and 5 to Canada, whatever its length (MMS
is not offered elsewhere: a message with media to another country is counted as SMS). A destination
outside that table counts the United States rate.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

SMS_CREDITS = {"US": 1, "CA": 3, "GB": 5, "AU": 4, "NZ": 10}
MMS_CREDITS = {"US": 3, "CA": 5}
DEFAULT_COUNTRY = "US"

# NANP area codes of Canada (and its shared non-geographic 600 code): +1 numbers are Canadian by area code.
CANADIAN_AREA_CODES = frozenset({
    "204", "226", "236", "249", "250", "257", "263", "289", "306", "343", "354", "365", "367", "368", "382",
    "403", "416", "418", "428", "431", "437", "438", "450", "460", "468", "474", "506", "514", "519", "548",
    "579", "581", "584", "587", "600", "604", "613", "622", "639", "647", "672", "683", "705", "709", "742",
    "753", "778", "780", "782", "807", "819", "825", "867", "873", "879", "902", "905", "942"})
_CALLING_CODES = {"44": "GB", "61": "AU", "64": "NZ"}


def destination_country(phone_number: str | None) -> str | None:
    """ISO country of an E.164 number, for the countries whose rules differ (None: another one)."""
    digits = "".join(c for c in phone_number or "" if c.isdigit())
    if not (phone_number or "").lstrip().startswith("+") or not digits:
        return None
    if digits.startswith("1") and len(digits) == 11:
        return "CA" if digits[1:4] in CANADIAN_AREA_CODES else "US"
    return next((country for code, country in _CALLING_CODES.items() if digits.startswith(code)), None)


def is_gsm7(body: str) -> bool:
    return all(c in GSM_BASIC or c in GSM_EXTENSION for c in body)


def segment_count(body: str) -> int:
    """How many SMS segments carry `body` (an empty body is still one message)."""
    if is_gsm7(body):
        sizes = [2 if c in GSM_EXTENSION else 1 for c in body]
        single, part = GSM_SINGLE, GSM_PART
    else:
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in body]  # UTF-16 code units
        single, part = UCS2_SINGLE, UCS2_PART
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments


@dataclass(frozen=True)
class TextCost:
    segments: int
    credits: int


def text_cost(body: str, *, phone_number: str | None, has_media: bool) -> TextCost:
    country = destination_country(phone_number) or DEFAULT_COUNTRY
    if has_media and country in MMS_CREDITS:
        return TextCost(1, MMS_CREDITS[country])
    segments = segment_count(body)
    return TextCost(segments, segments * SMS_CREDITS.get(country, SMS_CREDITS[DEFAULT_COUNTRY]))
