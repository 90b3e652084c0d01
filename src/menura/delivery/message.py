"""Building one outgoing email: CSS inlined, links rewritten to signed click redirects (with UTM
parameters), hidden preview text, open pixel, a text part (generated from the HTML when absent),
List-Unsubscribe with RFC 8058 one-click, a VERP envelope sender, and a DKIM signature.

The MIME is written directly (multipart/alternative, quoted-printable parts via binascii, headers
folded by the stdlib only when they need it): `email.message.EmailMessage` costs more than the rest
of the pipeline put together at campaign speed.
"""

from __future__ import annotations

import binascii
import functools
import html as htmllib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.utils import format_datetime, formataddr
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from menura.delivery.dkim_signing import DkimSigner
from menura.delivery.plaintext import html_to_text
from menura.delivery.tracking import RecipientLinks
from menura.domain.tracking_settings import ParamSpec, UtmContext, param_values
from menura.templating.inline import inline_css

_ANCHOR = re.compile(r"(<a\b[^>]*?\bhref\s*=\s*)([\"'])(.*?)\2([^>]*>)(.*?)(</a\s*>)", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_ALT = re.compile(r"\balt\s*=\s*([\"'])(.*?)\1", re.IGNORECASE | re.DOTALL)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_NO_TRACK = re.compile(r"\bdata-menura-notrack\b|\bklaviyo-notrack\b", re.IGNORECASE)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
_SPACES = re.compile(r"\s+")
# Preview text is followed by invisible filler so clients don't show the body's first words after it.
_PREVIEW_FILLER = "&#847;&zwnj;&nbsp;" * 60
_PREVIEW_STYLE = ("display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0px;max-width:0px;"
                  "opacity:0;overflow:hidden;mso-hide:all")


@dataclass(frozen=True)
class TrackingOptions:
    """A message's tracking choices; None follows the account's defaults (opens and clicks on; UTM
    parameters per the account's tracking settings). Names as Klaviyo's campaign tracking options."""

    is_tracking_opens: bool | None = None
    is_tracking_clicks: bool | None = None
    add_tracking_params: bool | None = None
    custom_tracking_params: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class OutgoingEmail:
    """One recipient's rendered email."""

    subject: str
    from_email: str
    html: str
    from_label: str = ""
    text: str | None = None
    preview_text: str = ""
    reply_to: str | None = None
    to_name: str = ""
    # Copies of this recipient's message: Cc is a header and an envelope recipient, Bcc only the latter.
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    tracking: TrackingOptions = field(default_factory=TrackingOptions)
    utm: UtmContext | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Marketing messages carry List-Unsubscribe and are not sent to unsubscribed/suppressed profiles.
    marketing: bool = True
    inline_css: bool = True


@dataclass(frozen=True)
class BuiltEmail:
    raw: bytes  # the complete message, CRLF line endings, DKIM-signed when a key is configured
    html: str  # the tracked HTML without the open pixel: what the web view shows
    message_id: str  # the Message-ID header, with its angle brackets
    mail_from: str  # the envelope sender (VERP bounce address)
    copies: tuple[str, ...] = ()  # envelope recipients besides the profile: the Cc and Bcc addresses


@dataclass(frozen=True)
class BuildEnv:
    links: RecipientLinks
    now: datetime
    utm_params: Sequence[ParamSpec] = ()
    utm_context: UtmContext = field(default_factory=UtmContext)
    dkim: DkimSigner | None = None
    bounce_domain: str = ""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def _clean(value: str) -> str:
    """Header values never carry line breaks (header injection)."""
    return value.replace("\r", " ").replace("\n", " ").strip()


def _header(name: str, value: str) -> str:
    value = _clean(value)
    if not value.isascii():
        # RFC 2047 encoded words, folded (policy.fold alone passes short non-ASCII values through).
        return str(policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP))
    if len(name) + len(value) <= 76:
        return f"{name}: {value}\r\n"
    return _fold_ascii(name, value)


def _fold_ascii(name: str, value: str) -> str:
    """Fold at spaces only, so URIs and tokens stay whole (a line may exceed 78, never 998)."""
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if line != f"{name}:" and len(line) + 1 + len(word) > 78:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _address(label: str, address: str) -> str:
    label = _clean(label)
    return formataddr((label, address), charset="utf-8") if label else address


def quoted_printable(text: str) -> bytes:
    """Quoted-printable with CRLF line breaks, a line at a time: soft breaks and end-of-line rules
    never reach across a hard line break, so the lines add up to the whole text's encoding (a unit
    test holds them to it), and the messages of one campaign share most of their lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    last = lines.pop()
    return b"".join([*[_qp_line(line + "\n") for line in lines], _qp_line(last)])


@functools.lru_cache(maxsize=16384)
def _qp_line(line: str) -> bytes:
    encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


# --- HTML -------------------------------------------------------------------------------------------


def add_query_params(url: str, params: Sequence[tuple[str, str]]) -> str:
    """Append parameters the URL does not already have (an explicit value in the link wins)."""
    if not params:
        return url
    parts = urlsplit(url)
    present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(k, v) for k, v in params if k not in present]
    if not extra:
        return url
    addition = urlencode(extra, quote_via=quote)
    query = f"{parts.query}&{addition}" if parts.query else addition
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def link_text(inner_html: str) -> str:
    text = _SPACES.sub(" ", htmllib.unescape(_TAG.sub(" ", inner_html))).strip()
    if text:
        return text
    alt = _ALT.search(inner_html)
    return htmllib.unescape(alt.group(2)).strip() if alt else ""


def rewrite_links(html: str, *, links: RecipientLinks | None, utm_params: Sequence[ParamSpec],
                  utm_context: UtmContext) -> str:
    """Apply UTM parameters to every http(s) link and, with `links`, send it through a signed click
    redirect. The redirect carries the final URL (with its UTM parameters) inside its token."""
    own_prefix = links.base_url + "/t/" if links is not None else None

    def replace(match: re.Match[str]) -> str:
        opening, quote_char, href, rest, inner, closing = match.groups()
        url = htmllib.unescape(href).strip()
        if not url.lower().startswith(("http://", "https://")) or _NO_TRACK.search(opening + rest):
            return match.group(0)
        if own_prefix is not None and url.startswith(own_prefix):
            return match.group(0)  # our own unsubscribe / preferences / web view links
        if utm_params:
            url = add_query_params(url, param_values(utm_params, utm_context, link_text(inner) or None))
        if links is not None:
            url = links.click(url)
        return f"{opening}{quote_char}{htmllib.escape(url, quote=True)}{quote_char}{rest}{inner}{closing}"

    return _ANCHOR.sub(replace, html)


def add_preview_text(html: str, preview: str) -> str:
    if not preview:
        return html
    block = f'<div style="{_PREVIEW_STYLE}">{htmllib.escape(preview)}{_PREVIEW_FILLER}</div>'
    opening = _BODY_OPEN.search(html)
    if opening is None:
        return block + html
    return html[:opening.end()] + block + html[opening.end():]


def add_open_pixel(html: str, pixel_url: str) -> str:
    pixel = (f'<img src="{htmllib.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
             'style="display:block;border:0;width:1px;height:1px;overflow:hidden" />')
    closings = list(_BODY_CLOSE.finditer(html))
    if not closings:
        return html + pixel
    at = closings[-1].start()
    return html[:at] + pixel + html[at:]


# --- the message ----------------------------------------------------------------------------------


def build_email(message: OutgoingEmail, *, to: str, env: BuildEnv) -> BuiltEmail:
    links = env.links
    opens = message.tracking.is_tracking_opens is not False
    clicks = message.tracking.is_tracking_clicks is not False
    html = inline_css(message.html) if message.inline_css and message.html else message.html
    html = rewrite_links(html, links=links if clicks else None, utm_params=env.utm_params,
                         utm_context=env.utm_context)
    text = message.text if message.text is not None else html_to_text(html)
    html = add_preview_text(html, message.preview_text)
    sent_html = add_open_pixel(html, links.open_pixel()) if opens else html

    from_domain = domain_of(message.from_email)
    bounce_domain = env.bounce_domain or from_domain
    message_id = f"<{links.delivery_id}@{from_domain}>"
    mail_from = f"{links.signer.verp_local_part('bounces', links.delivery_id)}@{bounce_domain}"
    boundary = f"=_m_{links.delivery_id}"

    headers = [
        _header("From", _address(message.from_label, message.from_email)),
        _header("To", _address(message.to_name, to)),
        _header("Subject", message.subject),
        _header("Date", format_datetime(env.now)),
        _header("Message-ID", message_id),
    ]
    if message.cc:
        headers.append(_header("Cc", ", ".join(message.cc)))
    if message.reply_to:
        headers.append(_header("Reply-To", message.reply_to))
    if message.marketing:
        unsubscribe_mailbox = f"{links.signer.verp_local_part('unsubscribe', links.delivery_id)}@{bounce_domain}"
        headers.append(_header("List-Unsubscribe", f"<mailto:{unsubscribe_mailbox}?subject=unsubscribe>, "
                                                   f"<{links.unsubscribe()}>"))
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    headers.append(_header("X-Menura-Message", links.message_token()))
    for name, value in message.headers.items():
        if _HEADER_NAME.match(name):
            headers.append(_header(name, value))
    headers.append("MIME-Version: 1.0\r\n")
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n')

    marker = f"--{boundary}\r\n".encode()
    part_head = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    raw = b"".join([
        "".join(headers).encode("ascii"), b"\r\n",
        marker, part_head.format("plain").encode(), quoted_printable(text), b"\r\n",
        marker, part_head.format("html").encode(), quoted_printable(sent_html), b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ])
    if env.dkim is not None:
        raw = env.dkim.sign(raw, timestamp=int(env.now.timestamp()))
    copies = tuple(dict.fromkeys(a for a in (*message.cc, *message.bcc) if a.lower() != to.lower()))
    return BuiltEmail(raw=raw, html=html, message_id=message_id, mail_from=mail_from, copies=copies)
