"""Building one email: MIME structure, headers, CSS inlining, tracked links with UTM parameters, preview
text, open pixel, text part, and a DKIM signature identical to dkimpy's own that verifies."""

from __future__ import annotations

import base64
import email
from datetime import UTC, datetime
from email import policy
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from menura.delivery.dkim_signing import DkimSigner
from menura.delivery.message import (
    BuildEnv,
    OutgoingEmail,
    TrackingOptions,
    add_query_params,
    build_email,
    link_text,
    rewrite_links,
)
from menura.delivery.tracking import CLICK, RecipientLinks, TokenSigner, parse_message_token
from menura.domain.tracking_settings import ParamSpec, UtmContext

NOW = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
SIGNER = TokenSigner(b"test-secret")
LINKS = RecipientLinks("https://t.example.net", SIGNER, "ACC001", "abcdefghijklmnopqrstuvwxyz")
HTML = """<html><head><style>.cta{color:#ff0000}</style></head><body>
<p class="cta">Hello Zoë, <a href="https://shop.example.com/sale?x=1&amp;y=2">Shop the sale</a></p>
<a href="https://shop.example.com/p/1"><img src="https://cdn.example.com/p1.png" alt="Red shoes"></a>
<a href="mailto:help@shop.example.com">Mail us</a> <a href="#top">Top</a>
<a href="https://t.example.net/t/u/already-a-tracking-link">Unsubscribe</a>
</body></html>"""


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def build(message: OutgoingEmail | None = None, **env: object):
    message = message or OutgoingEmail(subject="Spring sale — 20% off", from_email="news@shop.example.com",
                                       from_label="Shop Ünïted", html=HTML, preview_text="Ends Sunday",
                                       reply_to="care@shop.example.com", to_name="Zoë Doe")
    return build_email(message, to="zoe@example.org", env=BuildEnv(links=LINKS, now=NOW, **env))


def parts(raw: bytes):
    msg = email.message_from_bytes(raw, policy=policy.default)
    return msg, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_mime_structure_and_headers():
    built = build()
    assert b"\r\n" in built.raw and b"\n" not in built.raw.replace(b"\r\n", b"")
    msg, text, html = parts(built.raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Spring sale — 20% off"
    assert msg["From"].addresses[0].display_name == "Shop Ünïted"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"
    assert msg["Reply-To"] == "care@shop.example.com"
    assert msg["Message-ID"] == "<abcdefghijklmnopqrstuvwxyz@shop.example.com>" == built.message_id
    assert msg["Date"].datetime == NOW
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = msg["List-Unsubscribe"]
    assert "<mailto:unsubscribe+abcdefghijklmnopqrstuvwxyz-" in unsubscribe
    assert f"<{LINKS.unsubscribe()}>" in unsubscribe
    assert parse_message_token(SIGNER, "m", msg["X-Menura-Message"])[:2] == ("ACC001", LINKS.delivery_id)
    assert built.mail_from.startswith("bounces+abcdefghijklmnopqrstuvwxyz-")
    assert built.mail_from.endswith("@shop.example.com")
    assert SIGNER.parse_verp(built.mail_from.split("@")[0]) == ("bounces", LINKS.delivery_id)
    assert "Zoë" in text and "Zoë" in html


def test_header_injection_is_neutralised():
    message = OutgoingEmail(subject="Hi\r\nBcc: victim@example.org", from_email="a@shop.example.com", html="<p>x</p>")
    msg, _, _ = parts(build(message).raw)
    assert msg["Bcc"] is None and "Bcc: victim" in msg["Subject"]


def test_css_inlined_preview_pixel_and_links():
    built = build()
    _, text, html = parts(built.raw)
    assert 'style="color: #ff0000' in html or "color:#ff0000" in html.replace(" ", "")
    assert "Ends Sunday" in html and "display:none" in html
    assert html.index("Ends Sunday") < html.index("Hello")
    assert LINKS.open_pixel() in html and LINKS.open_pixel() not in built.html  # web view has no pixel
    assert "mailto:help@shop.example.com" in html and 'href="#top"' in html
    assert "https://t.example.net/t/u/already-a-tracking-link" in html  # own links untouched
    assert "https://shop.example.com/sale" not in html  # rewritten to click redirects
    assert "Ends Sunday" not in text and "Shop the sale" in text and "/t/c/" in text


def tracked_targets(html: str) -> list[str]:
    targets = []
    for chunk in html.split('href="')[1:]:
        href = chunk.split('"')[0].replace("&amp;", "&")
        if "/t/c/" in href:
            targets.append(parse_message_token(SIGNER, CLICK, href.rsplit("/", 1)[1])[2][0])
    return targets


def test_click_tokens_carry_the_final_url_with_utm():
    params = [ParamSpec("utm_source", "static", "Klaviyo"), ParamSpec("utm_medium", "dynamic", "message_type"),
              ParamSpec("utm_campaign", "dynamic", "campaign_name"), ParamSpec("utm_term", "dynamic", "link_alt_text")]
    context = UtmContext(campaign_name="Spring Sale", campaign_id="01CAMPAIGN")
    targets = tracked_targets(build(utm_params=params, utm_context=context).html)
    assert len(targets) == 2
    first = urlsplit(targets[0])
    assert parse_qs(first.query) == {"x": ["1"], "y": ["2"], "utm_source": ["Klaviyo"], "utm_medium": ["email"],
                                     "utm_campaign": ["Spring Sale"], "utm_term": ["Shop the sale"]}
    assert parse_qs(urlsplit(targets[1]).query)["utm_term"] == ["Red shoes"]  # image alt text


def test_tracking_off_keeps_links_but_applies_utm():
    message = OutgoingEmail(subject="s", from_email="a@shop.example.com", html=HTML,
                            tracking=TrackingOptions(is_tracking_clicks=False, is_tracking_opens=False))
    built = build(message, utm_params=[ParamSpec("utm_source", "static", "Klaviyo")])
    assert "/t/c/" not in built.html and "/t/o/" not in built.raw.decode()
    assert "https://shop.example.com/sale?x=1&amp;y=2&amp;utm_source=Klaviyo" in built.html


def test_transactional_messages_have_no_list_unsubscribe():
    message = OutgoingEmail(subject="Receipt", from_email="a@shop.example.com", html="<p>x</p>", marketing=False)
    msg, _, _ = parts(build(message).raw)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


def test_given_text_part_is_used_as_is():
    message = OutgoingEmail(subject="s", from_email="a@shop.example.com", html="<p>x</p>", text="Plain  words\n")
    _, text, _ = parts(build(message).raw)
    assert text.replace("\r\n", "\n").rstrip("\n") == "Plain  words"


def test_long_lines_and_dots_survive_quoted_printable():
    body = "<p>" + "word " * 400 + "</p>\n.\n<p>end=here</p>"
    message = OutgoingEmail(subject="s", from_email="a@shop.example.com", html=body, inline_css=False)
    built = build(message, )
    assert max(len(line) for line in built.raw.split(b"\r\n")) <= 998
    _, _, html = parts(built.raw)
    assert "end=here" in html and ("word " * 400).strip() in html


def test_add_query_params_keeps_explicit_values_and_fragments():
    assert add_query_params("https://a.test/p#frag", [("u", "1 2")]) == "https://a.test/p?u=1%202#frag"
    assert add_query_params("https://a.test/p?utm_source=mine", [("utm_source", "Klaviyo"), ("b", "x")]) == \
        "https://a.test/p?utm_source=mine&b=x"
    assert link_text("<b>Buy</b>\n now") == "Buy now"


def test_rewrite_ignores_non_http_and_opt_out_links():
    html = '<a data-menura-notrack href="https://a.test/x">x</a><a href="tel:+1555">call</a>'
    assert rewrite_links(html, links=LINKS, utm_params=[], utm_context=UtmContext()) == html


def test_dkim_signature_is_dkimpys_and_verifies(key_pair):
    pem, dns_record = key_pair
    signer = DkimSigner("s2026", "shop.example.com", pem)
    built = build(dkim=signer)
    assert built.raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert dkim.verify(built.raw, dnsfunc=lambda name, timeout=5: dns_record)
    unsigned = build().raw
    with mock.patch("time.time", return_value=NOW.timestamp()):
        reference = dkim.sign(unsigned, b"s2026", b"shop.example.com", pem,
                              include_headers=[h.encode() for h in ("from", "to", "subject", "date", "message-id",
                                                                    "reply-to", "mime-version", "content-type",
                                                                    "list-unsubscribe", "list-unsubscribe-post",
                                                                    "x-menura-message")])
    assert reference + unsigned == built.raw
    tampered = built.raw.replace(b"Spring", b"Summer", 1)
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: dns_record)


def test_dkim_refuses_non_rsa_keys():
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with pytest.raises(ValueError):
        DkimSigner("s", "d.example", pem)


@pytest.mark.parametrize("html", [
    HTML,
    "<p>One&nbsp;two</p><p>three <br/> four</p><ol><li>a</li><li>b</li></ol>",
    "<div>Price: <b>&euro;10</b></div><table><tr><td>x</td><th>y</th></tr></table><!-- hidden -->",
    "<html><head><title>T</title><script>var a = '<p>';</script></head><body>Body &amp; soul</body></html>",
    '<a href="https://a.test/?q=1&amp;r=2"><img src="i.png" alt="Logo &amp; co"></a> <a href="#x">anchor</a>',
    "<h2>Title</h2><hr><blockquote>quote</blockquote><a href='https://a.test/'>https://a.test/</a><a href=x></a>",
])
def test_fast_text_part_matches_the_parser_based_one(html):
    from menura.delivery.plaintext import html_to_text as fast
    from menura.templating.text import html_to_text as reference

    def lines(text: str) -> list[str]:  # the parser keeps double spaces where text nodes meet
        return [" ".join(line.split()) for line in text.split("\n")]

    assert lines(fast(html)) == lines(reference(html))


def test_cc_is_a_header_and_bcc_only_an_envelope_recipient():
    message = OutgoingEmail(subject="Hi", from_email="shop@example.com", html="<p>x</p>",
                            cc=("boss@example.com",), bcc=("archive@example.com", "zoe@example.org"))
    built = build(message)
    parsed = email.message_from_bytes(built.raw, policy=policy.default)
    assert parsed["Cc"] == "boss@example.com" and parsed["Bcc"] is None
    assert b"archive@example.com" not in built.raw
    # The recipient is never their own copy.
    assert built.copies == ("boss@example.com", "archive@example.com")
    assert build().copies == ()
