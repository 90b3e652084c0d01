"""SMS end to end: a server configured with a Twilio-compatible provider (a fake one on loopback that
records requests), delivery reports, provider failures and retries, inbound keywords (STOP, START,
HELP) changing consent at once, signature checks, and the capture outbox when no provider is set."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import time
from pathlib import Path

import httpx
import pytest

from menura import delivery
from menura.delivery.context import delivery_context, use_settings
from menura.delivery.sms import OutgoingSms
from menura.settings import Settings
from menura.store import delivery as store
from tests.conftest import free_port, start_server
from tests.delivery_support import events_of, fake_twilio, make_profile, profile_row

AUTH_TOKEN = "tw-secret"


@pytest.fixture(scope="module")
def twilio():
    with fake_twilio() as state:
        yield state


@pytest.fixture(scope="module")
def sms_server(database_url, twilio, tmp_path_factory):
    settings = Settings(database_url=database_url, port=free_port(), rate_limits="off",
                        data_dir=Path(tmp_path_factory.mktemp("sms-data")), operator_token="op_test_token",
                        worker_poll_seconds=0.05, delivery_retry_seconds=0.2,
                        sms_url=f"twilio://AC123:{AUTH_TOKEN}@127.0.0.1:{twilio.port}?from=%2B16175550100&scheme=http")
    use_settings(settings)  # background retries in this process send through the fake provider
    server, thread, services = start_server(settings)
    yield settings, services, f"http://127.0.0.1:{settings.port}"
    use_settings(None)
    server.should_exit = True
    thread.join(timeout=10)


def phone() -> str:
    return f"+1202555{random.randint(1000, 9999)}"


def sign(url: str, params: dict[str, str]) -> str:
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def twilio_post(url: str, params: dict[str, str], signed: bool = True) -> httpx.Response:
    headers = {"X-Twilio-Signature": sign(url, params)} if signed else {}
    return httpx.post(url, data=params, headers=headers)


def test_send_click_and_delivery_report(sms_server, twilio, account):
    settings, services, _ = sms_server
    ctx = delivery_context(services.db, settings=settings)
    number = phone()
    profile_id = make_profile(services.db, account.id, phone=number)
    message = OutgoingSms(body="Flash sale! https://shop.example.com/sale. Reply STOP to opt out")
    result = delivery.send_sms(services.db, account_id=account.id, profile_id=profile_id, to=number, message=message,
                               send_key=f"sms:{profile_id}", attribution={"$message": "01SMSMSG"}, context=ctx)
    assert result.status == "sent"
    request = twilio.requests[-1]
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["auth"] == "Basic " + base64.b64encode(f"AC123:{AUTH_TOKEN}".encode()).decode()
    form = request["form"]
    assert form["To"] == [number] and form["From"] == ["+16175550100"]
    body = form["Body"][0]
    assert body.startswith("Flash sale! http") and "/t/c/" in body and body.endswith(". Reply STOP to opt out")
    callback = form["StatusCallback"][0]
    # Clicking the tracked link: "Clicked SMS", then the shop.
    link = body.split(" ")[2].rstrip(".")
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"].startswith("https://shop.example.com/sale")
    assert events_of(services.db, account.id, "Clicked SMS", profile_id)[0]["$message"] == "01SMSMSG"
    # The delivery report must carry Twilio's signature.
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": "AC123"}
    assert twilio_post(callback, params, signed=False).status_code == 403
    assert twilio_post(callback, params).status_code == 204
    [received] = events_of(services.db, account.id, "Received SMS", profile_id)
    assert received["$message"] == "01SMSMSG" and received["To Number"] == number
    again = delivery.send_sms(services.db, account_id=account.id, profile_id=profile_id, to=number, message=message,
                              send_key=f"sms:{profile_id}", attribution={}, context=ctx)
    assert again.duplicate and len([r for r in twilio.requests if r["form"]["To"] == [number]]) == 1


def test_provider_rejection_is_a_failed_delivery(sms_server, twilio, account):
    settings, services, _ = sms_server
    ctx = delivery_context(services.db, settings=settings)
    number = phone()
    profile_id = make_profile(services.db, account.id, phone=number)
    twilio.replies.append((400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                                 "status": 400}))
    result = delivery.send_sms(services.db, account_id=account.id, profile_id=profile_id, to=number,
                               message=OutgoingSms(body="hi"), send_key=f"bad:{profile_id}", context=ctx)
    assert result.status == "failed"
    [failed] = events_of(services.db, account.id, "Failed to Deliver SMS", profile_id)
    assert failed["Failure Type"] == "Device Incapable of Receiving SMS"


def test_provider_outage_is_retried_by_durable_work(sms_server, twilio, account):
    settings, services, _ = sms_server
    ctx = delivery_context(services.db, settings=settings)
    number = phone()
    profile_id = make_profile(services.db, account.id, phone=number)
    twilio.replies.append((503, {"message": "Service unavailable"}))
    result = delivery.send_sms(services.db, account_id=account.id, profile_id=profile_id, to=number,
                               message=OutgoingSms(body="retry me"), send_key=f"retry:{profile_id}", context=ctx)
    assert result.status == "deferred" and result.retry_at is not None
    deadline = time.time() + 15
    while time.time() < deadline:
        with services.db.read() as conn:
            row = store.get_message(conn, result.delivery_id, bodies=False)
        if row.status == "sent":
            break
        time.sleep(0.1)
    assert row.status == "sent" and row.attempts == 2
    assert len([r for r in twilio.requests if r["form"]["To"] == [number]]) == 2


def test_inbound_keywords_change_consent(sms_server, account):
    settings, services, base = sms_server
    number = phone()
    profile_id = make_profile(services.db, account.id, phone=number)
    url = f"{base}/webhooks/sms/inbound/{account.id}"
    stop = {"From": number, "To": "+16175550100", "Body": "Stop texting me please", "MessageSid": f"SMin{number}1"}
    assert twilio_post(url, stop, signed=False).status_code == 403
    response = twilio_post(url, stop)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert "<Message>" in response.text and "START" in response.text
    row = profile_row(services.db, account.id, profile_id)
    assert row.sms_consent == "UNSUBSCRIBED" and row.sms_transactional_consent == "UNSUBSCRIBED"
    assert len(events_of(services.db, account.id, "Unsubscribed from SMS", profile_id)) == 1
    assert events_of(services.db, account.id, "Sent SMS", profile_id)[0]["Body"] == "Stop texting me please"
    twilio_post(url, stop)  # Twilio retried the webhook: recorded once
    assert len(events_of(services.db, account.id, "Sent SMS", profile_id)) == 1
    # Marketing to an opted-out number is skipped, whatever the audience said.
    ctx = delivery_context(services.db, settings=settings)
    skipped = delivery.send_sms(services.db, account_id=account.id, profile_id=profile_id, to=number,
                                message=OutgoingSms(body="promo"), send_key=f"promo:{profile_id}", context=ctx)
    assert skipped.status == "skipped"
    help_reply = twilio_post(url, {"From": number, "To": "+16175550100", "Body": "HELP", "MessageSid": "SMh" + number})
    assert "Reply STOP" in help_reply.text
    assert profile_row(services.db, account.id, profile_id).sms_consent == "UNSUBSCRIBED"
    start = twilio_post(url, {"From": number, "To": "+16175550100", "Body": " start ", "MessageSid": "SMs" + number})
    assert "subscribed again" in start.text
    assert profile_row(services.db, account.id, profile_id).sms_consent == "SUBSCRIBED"
    chatter = twilio_post(url, {"From": number, "To": "+1", "Body": "Where is my order?", "MessageSid": "SMc" + number})
    assert chatter.text.endswith("<Response></Response>")


def test_inbound_start_from_an_unknown_number_creates_the_profile(sms_server, account):
    _, services, base = sms_server
    number = phone()
    url = f"{base}/webhooks/sms/inbound/{account.id}"
    assert twilio_post(url, {"From": number, "To": "+16175550100", "Body": "YES", "MessageSid": "SMy" + number})\
        .status_code == 200
    with services.db.read() as conn:
        from menura.store import profiles as profile_store

        profile_id = profile_store.find_id_by(conn, account.id, "phone_number", number)
    assert profile_id and profile_row(services.db, account.id, profile_id).sms_consent == "SUBSCRIBED"
    assert twilio_post(f"{base}/webhooks/sms/inbound/NOPE00", {"From": number, "Body": "x"}).status_code == 404


def test_without_a_provider_sms_are_captured(server, account):
    ctx = delivery_context(server.db, settings=server.settings)
    number = phone()
    profile_id = make_profile(server.db, account.id, phone=number)
    result = delivery.send_sms(server.db, account_id=account.id, profile_id=profile_id, to=number,
                               message=OutgoingSms(body="Hello from the outbox", from_number="+16175550100"),
                               send_key=f"cap:{profile_id}", attribution={"$message": "M"}, context=ctx)
    assert result.status == "captured"
    assert len(events_of(server.db, account.id, "Received SMS", profile_id)) == 1
    raw = httpx.get(f"{server.url}/outbox/{result.delivery_id}/raw?token={server.operator_token}").text
    assert "Hello from the outbox" in raw and number in raw


def test_sms_accepted_in_the_callers_transaction_is_sent_after_commit(sms_server, twilio, account):
    settings, services, _ = sms_server
    ctx = delivery_context(services.db, settings=settings)
    number = phone()
    profile_id = make_profile(services.db, account.id, phone=number)
    with services.db.write() as conn:
        result = delivery.send_sms(conn, account_id=account.id, profile_id=profile_id, to=number,
                                   message=OutgoingSms(body="from a flow"), send_key=f"flow:{profile_id}",
                                   context=ctx)
        assert result.status == "queued"
        assert not [r for r in twilio.requests if r["form"]["To"] == [number]]
    deadline = time.time() + 15
    while time.time() < deadline and not [r for r in twilio.requests if r["form"]["To"] == [number]]:
        time.sleep(0.05)
    assert [r["form"]["Body"] for r in twilio.requests if r["form"]["To"] == [number]] == [["from a flow"]]


def test_campaign_render_options_short_links_info_link_and_opt_out(sms_server, twilio, account):
    """A campaign's SMS: organization prefix, opt-out language, the company info link for a Canadian
    number only, and short tracked links that record "Clicked SMS" and redirect to the link; with
    shorten_links off the link is sent as written."""
    from datetime import UTC, datetime

    from menura.domain import campaign_jobs as jobs
    from menura.domain import consent
    from tests.e2e import campaign_fixtures as cf

    _settings, services, base = sms_server
    now = datetime.now(UTC)
    us, canada = phone(), f"+1416555{random.randint(1000, 9999)}"
    people = cf.seed_profiles(services.db, account.id, now, [
        {"phone_number": us, "first_name": "Uma", "sms_consent": consent.SUBSCRIBED},
        {"phone_number": canada, "first_name": "Cal", "sms_consent": consent.SUBSCRIBED}])
    list_id = cf.seed_list(services.db, account.id, now, people, "Texters")
    body = "Hi {{ first_name }}, sale at https://shop.example.com/sale?x=1."
    campaign_id, _ = cf.seed_campaign(services.db, account.id, now, [list_id], channel="sms", name="Texts",
                                      sms_body=body, render_options={"add_opt_out_language": True})
    jobs.send_campaign(services.db, account.id, campaign_id, now)
    texts = _wait_for_texts(twilio, [us, canada])
    org = next(iter(texts[us].split(":")))
    short = f"{base}/t/s/"
    assert texts[us].startswith(f"{org}: Hi Uma, sale at {short}") and texts[us].endswith(".\nReply STOP to opt out.")
    first_line, opt_out, info = texts[canada].split("\n")
    assert first_line.startswith(f"{org}: Hi Cal, sale at {short}") and opt_out == "Reply STOP to opt out."
    assert info.startswith(f"Info: {base}/t/i/")
    link = re.search(r"http\S+/t/s/[a-z0-9]+", texts[us]).group(0)
    assert len(link) < len(short) + 40  # a short link, whatever the destination's length
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 302
    target = response.headers["location"]
    assert target.startswith("https://shop.example.com/sale?x=1&_kx=")
    [clicked] = events_of(services.db, account.id, "Clicked SMS", people[0])
    assert clicked["$campaign"] == campaign_id and clicked["URL"].startswith("https://shop.example.com/sale?x=1")
    assert httpx.get(link[:-2] + ("aa" if not link.endswith("aa") else "bb")).status_code == 404  # tampered
    page = httpx.get(info.removeprefix("Info: "))
    assert page.status_code == 200 and org in page.text
    assert events_of(services.db, account.id, "Clicked SMS", people[1]) == []  # the info link is no click
    assert httpx.get(f"{base}/t/i/forged.token").status_code == 404

    # shorten_links off (and no prefix): the link as written, not tracked.
    plain = cf.seed_profiles(services.db, account.id, now, [
        {"phone_number": phone(), "first_name": "Pat", "sms_consent": consent.SUBSCRIBED}])
    second, _ = cf.seed_campaign(services.db, account.id, now, [cf.seed_list(services.db, account.id, now, plain)],
                                 channel="sms", name="Plain", sms_body=body,
                                 render_options={"shorten_links": False, "add_org_prefix": False})
    jobs.send_campaign(services.db, account.id, second, now)
    number = profile_row(services.db, account.id, plain[0]).phone_number
    text = _wait_for_texts(twilio, [number])[number]
    assert text == "Hi Pat, sale at https://shop.example.com/sale?x=1."


def _wait_for_texts(twilio, numbers: list[str], timeout: float = 30.0) -> dict[str, str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = {r["form"]["To"][0]: r["form"]["Body"][0] for r in list(twilio.requests) if r["form"].get("To")}
        if all(n in found for n in numbers):
            return {n: found[n] for n in numbers}
        time.sleep(0.05)
    raise AssertionError(f"no SMS to {numbers}")
