"""A campaign to a segment, sent through a real SMTP server (aiosmtpd on loopback): the right people,
personalized, with correct headers, a DKIM signature that verifies, and tracking, click and
unsubscribe links that work against the running server."""

from __future__ import annotations

import base64
import email
import re
import threading
from email import policy
from pathlib import Path

import dkim
import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from menura.delivery import context as delivery_context
from menura.settings import Settings
from tests.conftest import free_port
from tests.e2e import campaign_fixtures as cf


class Sink:
    """Collects what the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp_sink():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def relay(server, smtp_sink, dkim_key):
    """Delivery in this process sends through the sink, signed, with links on the test server."""
    sink, port = smtp_sink
    key_path, record = dkim_key
    settings = Settings(smtp_url=f"smtp://127.0.0.1:{port}?starttls=false&pool=2", dkim_selector="menura",
                        dkim_domain="shop.example.com", dkim_private_key_path=str(key_path), public_url=server.url,
                        database_url=server.settings.database_url)
    delivery_context.use_settings(settings)
    yield sink, record
    delivery_context.use_settings(None)


def segment_of_country(http: httpx.Client, country: str) -> str:
    body = {"data": {"type": "segment", "attributes": {"name": f"In {country}", "definition": {"condition_groups": [
        {"conditions": [{"type": "profile-property", "property": "location['country']",
                         "filter": {"type": "string", "operator": "equals", "value": country}}]}]}}}}
    response = http.post("/api/segments", json=body)
    assert response.status_code == 201, response.text
    segment_id = response.json()["data"]["id"]
    cf.wait_for(lambda: not http.get(f"/api/segments/{segment_id}").json()["data"]["attributes"]["is_processing"])
    return segment_id


def test_campaign_to_a_segment_over_smtp(server, http, relay):
    sink, dns_record = relay
    french = [cf.profile(http, f"fr{i}@example.org", first_name=f"Amélie{i}", location={"country": "France"})
              for i in range(3)]
    cf.profile(http, "us@example.org", first_name="Sam", location={"country": "United States"})
    segment_id = segment_of_country(http, "France")
    members = http.get(f"/api/segments/{segment_id}/relationships/profiles").json()["data"]
    assert {m["id"] for m in members} == set(french)

    campaign_id, _message_id = cf.ready_email_campaign(http, [segment_id], name="Soldes",
                                                      tracking={"add_tracking_params": True})
    assert cf.send(http, campaign_id).status_code == 202
    cf.wait_sent(http, campaign_id)
    cf.wait_for(lambda: len(sink.messages) == 3)
    assert http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]["status"] == "Sent"

    by_rcpt = {rcpt[0]: (mail_from, raw) for mail_from, rcpt, raw in sink.messages}
    assert set(by_rcpt) == {f"fr{i}@example.org" for i in range(3)}
    mail_from, raw = by_rcpt["fr1@example.org"]
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Summer sale, Amélie1"
    assert message["From"].addresses[0].addr_spec == "shop@example.com"
    assert message["From"].addresses[0].display_name == "Example Shop"
    assert message["Reply-To"].addresses[0].addr_spec == "help@example.com"
    assert message["To"].addresses[0].addr_spec == "fr1@example.org"
    assert message["Message-ID"] and message["Date"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "bounces" in mail_from or "@" in mail_from  # the VERP envelope sender
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dns_record)
    assert not dkim.verify(raw.replace(b"Hello", b"Howdy", 1), dnsfunc=lambda name, timeout=5: dns_record)

    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Hello Amélie1," in html and "Hello Amélie1," in text
    assert "Up to 50% off" in html  # preview text
    assert 'style="color: #333333' in html or "color:#333333" in html.replace(" ", "")  # CSS inlined

    # Click tracking: the link redirects to the original URL (with UTM parameters) and records a click.
    click = next(u for u in re.findall(r'href="([^"]+)"', html) if "/t/c/" in u)
    assert click.startswith(server.url)
    redirect = httpx.get(click.replace("&amp;", "&"), follow_redirects=False)
    assert redirect.status_code in (302, 303, 307)
    target = redirect.headers["location"]
    assert target.startswith("https://shop.example.com/sale?src=mail")
    assert "utm_campaign=Soldes" in target and "utm_source=Klaviyo" in target
    tampered = click[:-3] + ("AAA" if not click.endswith("AAA") else "BBB")
    assert httpx.get(tampered, follow_redirects=False).status_code in (400, 404)
    pixel = re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1)
    assert httpx.get(pixel).headers["content-type"].startswith("image/gif")

    profile_id = french[1]
    events = cf.wait_for(lambda: _metrics_of(http, profile_id) >= {"Received Email", "Clicked Email",
                                                                     "Opened Email"} and _metrics_of(http, profile_id))
    assert "Received Email" in events

    # One-click unsubscribe (RFC 8058) from the List-Unsubscribe header changes consent at once.
    header = message["List-Unsubscribe"]
    https_link = re.search(r"<(https?://[^>]+)>", header).group(1)
    assert https_link.startswith(server.url)
    done = httpx.post(https_link, content=b"List-Unsubscribe=One-Click",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200, done.text
    profile = http.get(f"/api/profiles/{profile_id}", params={"additional-fields[profile]": "subscriptions"}).json()
    marketing = profile["data"]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "UNSUBSCRIBED" and marketing["can_receive_email_marketing"] is False
    assert "Unsubscribed" in _metrics_of(http, profile_id)

    # The next campaign to the segment skips the unsubscribed member.
    sink.messages.clear()
    second, _ = cf.ready_email_campaign(http, [segment_id], name="Soldes 2", send_options={"use_smart_sending": False})
    cf.send(http, second)
    cf.wait_sent(http, second)
    cf.wait_for(lambda: len(sink.messages) == 2)
    assert {rcpt[0] for _, rcpt, _ in sink.messages} == {"fr0@example.org", "fr2@example.org"}


def _metrics_of(http: httpx.Client, profile_id: str) -> set[str]:
    response = http.get("/api/events", params={"filter": f"equals(profile_id,'{profile_id}')", "include": "metric"})
    assert response.status_code == 200, response.text
    return {m["attributes"]["name"] for m in response.json().get("included", []) if m["type"] == "metric"}


def test_cc_and_bcc_of_a_campaign_message(server, http, relay):
    """Every recipient's own message is copied to the message's cc and bcc addresses (one SMTP
    transaction each): cc in a visible header, bcc never in the message; only profiles get events."""
    sink, dns_record = relay
    people = [cf.profile(http, f"copy{i}@example.org", first_name=f"Ana{i}") for i in range(2)]
    list_id = cf.new_list(http, "Copied", people)
    campaign_id, _ = cf.ready_email_campaign(http, [list_id], name="Copied", content={
        "cc_email": "manager@example.com", "bcc_email": "archive@example.com"})
    content = http.get(f"/api/campaigns/{campaign_id}/campaign-messages").json()["data"][0]["attributes"]
    assert content["definition"]["content"]["cc_email"] == "manager@example.com"
    assert cf.send(http, campaign_id).status_code == 202
    cf.wait_sent(http, campaign_id)
    cf.wait_for(lambda: len(sink.messages) == 2)
    by_rcpt = {rcpt[0]: (rcpt, raw) for _, rcpt, raw in sink.messages}
    assert set(by_rcpt) == {"copy0@example.org", "copy1@example.org"}
    for address, (rcpt, raw) in by_rcpt.items():
        assert rcpt == [address, "manager@example.com", "archive@example.com"]
        message = email.message_from_bytes(raw, policy=policy.default)
        assert message["To"].addresses[0].addr_spec == address
        assert message["Cc"].addresses[0].addr_spec == "manager@example.com"
        assert message["Bcc"] is None and b"archive@example.com" not in raw
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dns_record)
    for profile_id in people:
        cf.wait_for(lambda pid=profile_id: "Received Email" in _metrics_of(http, pid))
    received = http.get("/api/events", params={"filter": f"equals(profile_id,'{people[0]}')"}).json()["data"]
    assert all(not k.startswith("_menura") for e in received for k in e["attributes"]["event_properties"])
