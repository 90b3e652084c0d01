"""What an SMTP reply or a DSN status means for a message: delivered, a hard bounce (the address is
bad: suppress it), a soft bounce (this message failed for a reason that may pass: mailbox full,
blocked, too large), or deferred (temporary: try again later).

Enhanced status codes (RFC 3463) decide when present, the basic reply code otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DELIVERED = "delivered"
HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
DEFERRED = "deferred"
RELAY_DOWN = "relay_down"
FAILED = "failed"  # the message could not be built or handed over; not the recipient's fault

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Permanent failures that are about this message or this moment, not about the address.
_SOFT_PERMANENT = {"5.2.2", "5.2.3", "5.3.4", "5.3.1", "5.4.5"}
_SOFT_SUBJECTS = {"7"}  # 5.7.x: policy, blocked, spam filtering
_SOFT_REPLY_CODES = {552}


@dataclass(frozen=True)
class SendOutcome:
    kind: str
    code: int | None = None
    detail: str = ""
    status: str | None = None  # enhanced status code, e.g. "5.1.1"

    @property
    def final(self) -> bool:
        return self.kind not in (DEFERRED, RELAY_DOWN)


def enhanced_status(text: str) -> str | None:
    match = _ENHANCED.search(text or "")
    return ".".join(match.groups()) if match else None


def classify_status(status: str) -> str:
    """A DSN/enhanced status code (e.g. "5.1.1") -> delivered, hard_bounce, soft_bounce or deferred."""
    klass, _, rest = status.partition(".")
    subject = rest.partition(".")[0]
    if klass == "2":
        return DELIVERED
    if klass == "4":
        return DEFERRED
    if status in _SOFT_PERMANENT or subject in _SOFT_SUBJECTS:
        return SOFT_BOUNCE
    return HARD_BOUNCE


def classify_reply(code: int, message: str = "") -> SendOutcome:
    """An SMTP reply to one message -> its outcome."""
    status = enhanced_status(message)
    if status is not None and status[0] == str(code)[0]:
        kind = classify_status(status)
    elif 200 <= code < 300:
        kind = DELIVERED
    elif 400 <= code < 500:
        kind = DEFERRED
    elif code in _SOFT_REPLY_CODES:
        kind = SOFT_BOUNCE
    else:
        kind = HARD_BOUNCE
    return SendOutcome(kind, code, message.strip()[:1000], status)
