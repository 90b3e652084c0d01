"""Fast rules of the delivery area: signed tokens, VERP, SMTP reply classification, relay URLs, the
per-domain rate limiter, SMS keywords and UTM parameter resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from menura.delivery import tracking
from menura.delivery.sms import HELP, NONE, OPT_IN, OPT_OUT, TwilioProvider, keyword_action, twiml
from menura.delivery.smtp import DomainRateLimiter, SmtpConfig
from menura.delivery.status_codes import (
    DEFERRED,
    DELIVERED,
    HARD_BOUNCE,
    SOFT_BOUNCE,
    classify_reply,
    classify_status,
)
from menura.domain import tracking_settings as utm
from menura.jsonapi.errors import ApiError

SIGNER = tracking.TokenSigner(b"secret-one")


def test_tokens_round_trip_and_reject_tampering():
    token = SIGNER.sign(tracking.CLICK, "ACC", "msg", "https://a.test/x?y=1")
    assert tracking.parse_message_token(SIGNER, tracking.CLICK, token) == ("ACC", "msg", ["https://a.test/x?y=1"])
    body, mac = token.split(".")
    forged = SIGNER.sign(tracking.CLICK, "ACC", "msg", "https://evil.test/")
    with pytest.raises(tracking.InvalidToken):
        tracking.parse_message_token(SIGNER, tracking.CLICK, forged.split(".")[0] + "." + mac)
    with pytest.raises(tracking.InvalidToken):  # another server's secret
        tracking.TokenSigner(b"secret-two").verify(tracking.CLICK, token)
    with pytest.raises(tracking.InvalidToken):  # a token of another kind
        SIGNER.verify(tracking.UNSUBSCRIBE, token)
    for junk in ("", "abc", "a.b", "!!.??", body + "."):
        with pytest.raises(tracking.InvalidToken):
            SIGNER.verify(tracking.CLICK, junk)


def test_delivery_ids_are_deterministic_per_account_and_key():
    first = tracking.delivery_id("ACC", "campaign:1:p1")
    assert first == tracking.delivery_id("ACC", "campaign:1:p1")
    assert first != tracking.delivery_id("ACC", "campaign:1:p2") != tracking.delivery_id("BCC", "campaign:1:p1")
    assert len(first) == 26 and first.islower() and first.isalnum()


def test_verp_survives_case_folding_and_rejects_forgeries():
    local = SIGNER.verp_local_part("bounces", "abcdefghijklmnopqrstuvwxyz")
    assert SIGNER.parse_verp(local) == ("bounces", "abcdefghijklmnopqrstuvwxyz")
    assert SIGNER.parse_verp(local.upper()) == ("bounces", "abcdefghijklmnopqrstuvwxyz")
    assert SIGNER.parse_verp(local[:-1] + ("a" if local[-1] != "a" else "b")) is None
    assert SIGNER.parse_verp("postmaster") is None
    assert len(local) <= 64


@pytest.mark.parametrize(("code", "text", "kind"), [
    (250, "2.0.0 OK", DELIVERED),
    (550, "5.1.1 <x@y>: Recipient address rejected: User unknown", HARD_BOUNCE),
    (550, "No such user", HARD_BOUNCE),
    (553, "mailbox name not allowed", HARD_BOUNCE),
    (552, "5.2.2 Mailbox full", SOFT_BOUNCE),
    (554, "5.7.1 Message rejected as spam", SOFT_BOUNCE),
    (552, "Requested mail action aborted: exceeded storage allocation", SOFT_BOUNCE),
    (421, "4.7.0 Try again later", DEFERRED),
    (451, "4.3.0 Temporary local problem", DEFERRED),
])
def test_smtp_replies_are_classified(code, text, kind):
    outcome = classify_reply(code, text)
    assert outcome.kind == kind and outcome.code == code
    assert outcome.final == (kind not in (DEFERRED,))


@pytest.mark.parametrize(("status", "kind"), [
    ("5.1.1", HARD_BOUNCE), ("5.1.10", HARD_BOUNCE), ("5.4.4", HARD_BOUNCE), ("5.0.0", HARD_BOUNCE),
    ("5.2.2", SOFT_BOUNCE), ("5.7.26", SOFT_BOUNCE), ("4.4.7", DEFERRED), ("2.0.0", DELIVERED),
])
def test_dsn_statuses_are_classified(status, kind):
    assert classify_status(status) == kind


def test_relay_urls():
    plain = SmtpConfig.from_url("smtp://user%40x:p%3Ass@mail.example.com:587?starttls=true&pool=8&rate=gmail.com:20,*:5")
    assert (plain.host, plain.port, plain.username, plain.password) == ("mail.example.com", 587, "user@x", "p:ss")
    assert plain.starttls is True and plain.implicit_tls is False and plain.pool_size == 8
    assert plain.domain_rates == {"gmail.com": 20.0, "*": 5.0}
    implicit = SmtpConfig.from_url("smtps://relay.example.com")
    assert implicit.port == 465 and implicit.implicit_tls and implicit.starttls is False
    assert SmtpConfig.from_url("smtp://localhost").port == 25
    assert SmtpConfig.from_url("smtp://localhost?verify=false").verify_certs is False
    with pytest.raises(ValueError):
        SmtpConfig.from_url("http://x")


def test_domain_rate_limiter_spaces_messages_per_domain():
    limiter = DomainRateLimiter({"gmail.com": 2.0, "*": 0})
    delays = [limiter.delay("gmail.com", 100.0) for _ in range(4)]
    assert delays == [0.0, 0.5, 1.0, 1.5]
    assert limiter.delay("other.test", 100.0) == 0.0
    assert limiter.delay("gmail.com", 105.0) == 0.0  # the window has passed


@pytest.mark.parametrize(("body", "action"), [
    ("STOP", OPT_OUT), ("stop", OPT_OUT), ("Please stop texting me", OPT_OUT), ("unsubscribe!", OPT_OUT),
    ("Cancel", OPT_OUT), ("END", OPT_OUT), ("quit", OPT_OUT), ("revoke", OPT_OUT), ("opt out", OPT_OUT),
    ("STOPALL", OPT_OUT), ("START", OPT_IN), ("unstop", OPT_IN), ("Yes", OPT_IN), ("y", OPT_IN),
    ("yes please start", NONE), ("HELP", HELP), ("info", HELP), ("help me choose a size", NONE),
    ("Where is my order?", NONE), ("", NONE),
])
def test_sms_keywords(body, action):
    assert keyword_action(body) == action


def test_twilio_url_and_signature():
    provider = TwilioProvider.from_url("twilio://AC123:tok%2Fen@127.0.0.1:9999?from=%2B15550001111&scheme=http")
    assert provider.base_url == "http://127.0.0.1:9999" and provider.from_number == "+15550001111"
    assert provider.auth_token == "tok/en"
    # Twilio's documented example: URL + sorted params, HMAC-SHA1 with the auth token, base64.
    signer = TwilioProvider("AC", "12345", "+1", "https://api.twilio.com")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030",
              "To": "+18005551212"}
    assert signer.verify_webhook(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not signer.verify_webhook(url, {**params, "Digits": "1235"}, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not signer.verify_webhook(url, params, None)
    assert twiml("a < b") == b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>a &lt; b</Message></Response>'


def test_utm_parameters_for_a_message():
    setting = utm.TrackingSetting("ACC", True, utm.DEFAULT_PARAMETERS)
    campaign = utm.UtmContext(campaign_id="01C", campaign_name="Spring", send_time=datetime(2026, 3, 5, tzinfo=UTC),
                              group_id="L1", group_name="VIPs", profile_id="P1")
    specs = utm.message_params(setting, campaign)
    assert utm.param_values(specs, campaign, "Buy") == [("utm_source", "Klaviyo"), ("utm_medium", "email"),
                                                       ("utm_campaign", "Spring")]
    flow = utm.UtmContext(kind="flow", message_type="sms", flow_id="F1", message_name="Welcome 1", message_id="M1")
    assert utm.param_values(utm.message_params(setting, flow), flow, None) == [
        ("utm_source", "Klaviyo"), ("utm_medium", "sms"), ("utm_campaign", "Welcome 1")]
    # The account's auto-add switch, the campaign's own switch and its custom list.
    off = utm.TrackingSetting("ACC", False, utm.DEFAULT_PARAMETERS)
    assert utm.message_params(off, campaign) == []
    assert utm.message_params(off, campaign, add=True) == specs
    assert utm.message_params(setting, campaign, add=False) == []
    custom = [{"type": "dynamic", "value": "campaign_name_send_day", "name": "utm_campaign"},
              {"type": "dynamic", "value": "group_name_id", "name": "aud"}]
    values = utm.param_values(utm.message_params(setting, campaign, custom=custom), campaign, None)
    assert values == [("utm_campaign", "Spring (2026-03-05)"), ("aud", "VIPs (L1)")]
    assert utm.message_params(setting, campaign, custom=[]) == specs  # empty list: account defaults


def test_tracking_setting_updates():
    current = utm.TrackingSetting("ACC", False, utm.DEFAULT_PARAMETERS)
    updated = utm.apply_update(current, {"utm_source": None, "utm_term": {"flow": {"type": "static", "value": "t"}}})
    assert updated.parameters["utm_source"] == utm.DEFAULT_PARAMETERS["utm_source"]  # always on
    assert updated.parameters["utm_term"] == {"campaign": None, "flow": {"type": "static", "value": "t"}}
    with pytest.raises(ApiError) as caught:
        utm.apply_update(current, {"utm_id": {"campaign": {"type": "dynamic", "value": "nope"}}})
    assert caught.value.status == 400
