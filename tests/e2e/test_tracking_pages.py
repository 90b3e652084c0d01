"""The recipient's side, end to end on the real server: a message captured in the outbox, its open
pixel, click redirects, one-click and page unsubscribes, the preferences page, the web view, the outbox
pages and CLI, and bounce/complaint reports (DSN to the VERP address, SES and SendGrid webhooks)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from click.testing import CliRunner

from menura import delivery
from menura.cli import main as cli
from menura.clock import SystemClock
from menura.delivery import outbox
from menura.delivery.bounces import process_inbound_email
from menura.delivery.context import delivery_context
from menura.domain import lists as list_rules
from menura.domain import subscriptions
from menura.store import delivery as store
from menura.store import lists as list_store
from tests.delivery_support import events_of, html_of, links_in, make_profile, profile_row

ATTRIBUTION = {"$message": "01CAMPAIGNMSG", "Campaign Name": "Spring sale", "$flow": None}
HTML = """<html><body><h1>Hello {name}</h1>
<p><a href="https://shop.example.com/sale?ref=mail">Shop the sale</a></p>
<p><a href="{unsubscribe}">Unsubscribe</a> | <a href="{manage_preferences}">Preferences</a> |
<a href="{web_view}">View online</a></p></body></html>"""


@pytest.fixture
def ctx(server):
    return delivery_context(server.db, settings=server.settings)


def send(server, ctx, account, profile_id: str, email: str, key: str | None = None, **kwargs):
    key = key or f"campaign:01CAMPAIGNMSG:{profile_id}:{uuid.uuid4().hex[:6]}"
    links = delivery.recipient_links(server.db, account_id=account.id, send_key=key, context=ctx)
    message = delivery.OutgoingEmail(subject="Spring sale", from_email="news@shop.example.com", from_label="Shop",
                                     html=HTML.format(name="Zoë", **links), preview_text="Ends Sunday", **kwargs)
    result = delivery.send_email(server.db, account_id=account.id, profile_id=profile_id, to=email, message=message,
                                 send_key=key, attribution=ATTRIBUTION, context=ctx)
    return result


def captured(server, delivery_id: str) -> bytes:
    with server.db.read() as conn:
        raw = outbox.raw_message(conn, delivery_id)
    assert raw
    return raw


def test_open_click_and_one_click_unsubscribe(server, ctx, account):
    email = f"zoe-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    result = send(server, ctx, account, profile_id, email)
    assert result.status == "captured" and not result.duplicate
    assert len(events_of(server.db, account.id, "Received Email", profile_id)) == 1
    html = html_of(captured(server, result.delivery_id))

    [pixel] = links_in(html, "/t/o/")
    response = httpx.get(pixel)
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    [opened] = events_of(server.db, account.id, "Opened Email", profile_id)
    assert opened["$message"] == "01CAMPAIGNMSG" and opened["Campaign Name"] == "Spring sale"
    assert opened["Email Domain"] == "example.org" and opened["Subject"] == "Spring sale"

    [click] = [link for link in links_in(html, "/t/c/")]
    response = httpx.get(click, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://shop.example.com/sale?ref=mail&_kx=")
    [clicked] = events_of(server.db, account.id, "Clicked Email", profile_id)
    assert clicked["URL"] == "https://shop.example.com/sale?ref=mail" and clicked["$message"] == "01CAMPAIGNMSG"
    token = click.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert httpx.get(click.rsplit("/", 1)[0] + "/" + forged, follow_redirects=False).status_code == 404
    assert httpx.get(pixel.replace("/t/o/", "/t/o/x")).status_code == 200  # pixels never fail
    assert len(events_of(server.db, account.id, "Opened Email", profile_id)) == 1

    raw = captured(server, result.delivery_id).decode()
    unsubscribe_url = raw.split("List-Unsubscribe: ")[1].split("<http", 1)[1].split(">", 1)[0]
    response = httpx.post("http" + unsubscribe_url.replace("\r\n ", ""), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    row = profile_row(server.db, account.id, profile_id)
    assert row.email_consent == "UNSUBSCRIBED" and row.email_suppression_reason == "UNSUBSCRIBE"
    [unsubscribed] = events_of(server.db, account.id, "Unsubscribed", profile_id)
    assert unsubscribed["$message"] == "01CAMPAIGNMSG" and unsubscribed["method_detail"] == "one-click"
    # A later marketing send to this profile is skipped.
    assert send(server, ctx, account, profile_id, email).status == "skipped"


def test_same_send_key_never_sends_twice(server, ctx, account):
    email = f"k-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    first = send(server, ctx, account, profile_id, email, key="campaign:X:1")
    again = send(server, ctx, account, profile_id, email, key="campaign:X:1")
    assert again.duplicate and again.delivery_id == first.delivery_id and again.status == "captured"
    assert len(events_of(server.db, account.id, "Received Email", profile_id)) == 1
    with server.db.read() as conn:
        assert store.count_by_status(conn, account.id) == {"captured": 1}


def test_undeliverable_addresses_fail_without_reaching_a_transport(server, ctx, account):
    profile_id = make_profile(server.db, account.id)
    for bad in ("no-at-sign", "a@b\r\nRCPT TO:<victim@example.org>", "two@at@example.org", " @example.org"):
        result = send(server, ctx, account, profile_id, bad)
        assert result.status == "failed" and "not a deliverable address" in result.detail
    assert events_of(server.db, account.id, "Received Email", profile_id) == []


def test_unsubscribe_page_confirms_before_unsubscribing(server, ctx, account):
    email = f"u-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    result = send(server, ctx, account, profile_id, email)
    [page_url] = [u for u in links_in(html_of(captured(server, result.delivery_id)), "/t/u/")]
    page = httpx.get(page_url)
    assert page.status_code == 200 and "<form" in page.text
    assert profile_row(server.db, account.id, profile_id).email_consent == "SUBSCRIBED"  # GET changes nothing
    done = httpx.post(page_url, data={})
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert profile_row(server.db, account.id, profile_id).email_consent == "UNSUBSCRIBED"
    assert httpx.get(page_url.replace("/t/u/", "/t/u/nope")).status_code == 404


def test_preferences_page_changes_apply_at_once(server, ctx, account):
    email = f"p-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    now = SystemClock().now()
    news = list_rules.create_list(server.db, account.id, now, name="Newsletter", opt_in_process="single_opt_in")
    vip = list_rules.create_list(server.db, account.id, now, name="VIP", opt_in_process="single_opt_in")
    with server.db.write() as conn:
        subscriptions.join_list(conn, account.id, news, profile_id, now)
        subscriptions.join_list(conn, account.id, vip, profile_id, now)
    result = send(server, ctx, account, profile_id, email)
    [url] = links_in(html_of(captured(server, result.delivery_id)), "/t/p/")
    page = httpx.get(url)
    assert page.status_code == 200 and "Newsletter" in page.text and "VIP" in page.text
    assert page.text.count("checked") == 3
    saved = httpx.post(url, data={"email_marketing": "on", "list": [news.id]})
    assert saved.status_code == 200 and "saved" in saved.text
    with server.db.read() as conn:
        assert list_store.list_ids_for_profile(conn, account.id, profile_id) == [news.id]
    [left] = events_of(server.db, account.id, "Unsubscribed from List", profile_id)
    assert left["List"] == "VIP"
    assert profile_row(server.db, account.id, profile_id).email_consent == "SUBSCRIBED"
    httpx.post(url, data={"list": [news.id, vip.id]})  # email off, VIP back on
    row = profile_row(server.db, account.id, profile_id)
    assert row.email_consent == "UNSUBSCRIBED"
    with server.db.read() as conn:
        assert sorted(list_store.list_ids_for_profile(conn, account.id, profile_id)) == sorted([news.id, vip.id])


def test_web_view_shows_the_message_without_the_pixel(server, ctx, account):
    email = f"w-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    result = send(server, ctx, account, profile_id, email)
    [url] = links_in(html_of(captured(server, result.delivery_id)), "/t/v/")
    page = httpx.get(url)
    assert page.status_code == 200 and "Hello Zoë" in page.text and "/t/o/" not in page.text
    assert len(events_of(server.db, account.id, "Opened Email", profile_id)) == 0


def test_outbox_pages_and_cli(server, ctx, account):
    email = f"o-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    result = send(server, ctx, account, profile_id, email)
    assert httpx.get(f"{server.url}/outbox").status_code == 401
    assert httpx.get(f"{server.url}/outbox?token=wrong").status_code == 401
    listing = httpx.get(f"{server.url}/outbox?token={server.operator_token}&account={account.id}")
    assert listing.status_code == 200 and email in listing.text and "Spring sale" in listing.text
    shown = httpx.get(f"{server.url}/outbox/{result.delivery_id}",
                      headers={"Authorization": f"Bearer {server.operator_token}"})
    assert shown.status_code == 200 and "Hello Zoë" in shown.text
    assert "sandbox" in shown.headers["content-security-policy"]
    raw = httpx.get(f"{server.url}/outbox/{result.delivery_id}/raw?token={server.operator_token}")
    assert raw.status_code == 200 and "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw.text
    assert httpx.get(f"{server.url}/outbox/nope?token={server.operator_token}").status_code == 404
    runner = CliRunner()
    out = runner.invoke(cli, ["outbox", "--database-url", server.settings.database_url, "--account", account.id])
    assert out.exit_code == 0 and email in out.output and result.delivery_id in out.output
    shown_cli = runner.invoke(cli, ["outbox", "--database-url", server.settings.database_url,
                                    "--show", result.delivery_id])
    assert shown_cli.exit_code == 0 and "Subject: Spring sale" in shown_cli.output


def dsn_for(recipient: str, raw: bytes, status: str = "5.1.1") -> bytes:
    headers = raw.split(b"\r\n\r\n", 1)[0].decode()
    return (f"From: MAILER-DAEMON@mx.example.org\r\nTo: bounce\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
            f"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; 550 {status} user unknown\r\n\r\n"
            f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--B--\r\n").encode()


def test_dsn_to_the_verp_address_and_mailto_unsubscribe(server, ctx, account):
    email = f"d-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    result = send(server, ctx, account, profile_id, email)
    raw = captured(server, result.delivery_id)
    verp = ctx.signer.verp_local_part("bounces", result.delivery_id) + "@shop.example.com"
    assert process_inbound_email(server.db, dsn_for(email, raw), [verp], ctx=ctx) == {"bounces": 1, "unsubscribes": 0}
    row = profile_row(server.db, account.id, profile_id)
    assert row.email_suppression_reason == "HARD_BOUNCE"
    [bounced] = events_of(server.db, account.id, "Bounced Email", profile_id)
    assert bounced["Bounce Type"] == "hard" and bounced["$message"] == "01CAMPAIGNMSG"
    # The same report again (or through another channel) counts once.
    assert process_inbound_email(server.db, dsn_for(email, raw), [verp], ctx=ctx)["bounces"] == 0
    # Without VERP, the returned X-Menura-Message header attributes it; a mismatched recipient is ignored.
    other_email = f"d2-{uuid.uuid4().hex[:6]}@example.org"
    other = make_profile(server.db, account.id, email=other_email)
    second = send(server, ctx, account, other, other_email)
    report = dsn_for("someone-else@example.org", captured(server, second.delivery_id))
    assert process_inbound_email(server.db, report, ["bounces@shop.example.com"], ctx=ctx)["bounces"] == 0
    soft = dsn_for(other_email, captured(server, second.delivery_id), status="5.2.2")
    assert process_inbound_email(server.db, soft, ["bounces@shop.example.com"], ctx=ctx)["bounces"] == 1
    assert profile_row(server.db, account.id, other).email_suppression_reason is None  # soft: no suppression
    # mailto: one-click unsubscribe arrives as an email to the VERP unsubscribe address
    unsubscribe = ctx.signer.verp_local_part("unsubscribe", second.delivery_id) + "@shop.example.com"
    assert process_inbound_email(server.db, b"Subject: unsubscribe\r\n\r\n", [unsubscribe],
                                 ctx=ctx)["unsubscribes"] == 1
    assert profile_row(server.db, account.id, other).email_consent == "UNSUBSCRIBED"


def test_ses_and_sendgrid_webhooks(server, ctx, account):
    email = f"s-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    result = send(server, ctx, account, profile_id, email)
    message_id = f"<{result.delivery_id}@shop.example.com>"
    import json

    notification = {"Type": "Notification", "Message": json.dumps({
        "notificationType": "Complaint", "mail": {"commonHeaders": {"messageId": message_id}},
        "complaint": {"complainedRecipients": [{"emailAddress": email}], "complaintFeedbackType": "abuse"}})}
    response = httpx.post(f"{server.url}/webhooks/ses", content=json.dumps(notification),
                          headers={"Content-Type": "text/plain; charset=UTF-8"})
    assert response.status_code == 200 and response.json() == {"received": 1, "recorded": 1}
    assert profile_row(server.db, account.id, profile_id).email_suppression_reason == "SPAM_COMPLAINT"
    [spam] = events_of(server.db, account.id, "Marked Email as Spam", profile_id)
    assert spam["$message"] == "01CAMPAIGNMSG"

    email2 = f"g-{uuid.uuid4().hex[:6]}@example.org"
    profile2 = make_profile(server.db, account.id, email=email2)
    second = send(server, ctx, account, profile2, email2)
    events = [{"email": email2, "event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 unknown",
               "smtp-id": f"<{second.delivery_id}@shop.example.com>"},
              {"email": "stranger@example.org", "event": "spamreport", "smtp-id": message_id}]
    response = httpx.post(f"{server.url}/webhooks/sendgrid", json=events)
    assert response.json() == {"received": 2, "recorded": 1}
    assert profile_row(server.db, account.id, profile2).email_suppression_reason == "HARD_BOUNCE"
    assert httpx.post(f"{server.url}/webhooks/sendgrid", json={"not": "a list"}).status_code == 400
    assert httpx.post(f"{server.url}/webhooks/ses", content=b"{oops",
                      headers={"Content-Type": "text/plain"}).status_code == 400


NASTY = ["x", "", "a.b", "%00", "..%2F..", "AAAA.BBBB", "k6F1.xkhK", "☃", "a" * 300]
BODIES = [b"", b"List-Unsubscribe=One-Click", b"\xff\xfe", b"{}", b"[]", b"null", b'{"Type": "Notification"}',
          b'[{"event": "bounce"}]', b"From=&Body=", b"email_marketing=on&list=nope"]


def test_public_pages_never_answer_5xx(server, account):
    from menura.api import delivery_webhooks, outbox_pages, tracking_pages

    ops = [*tracking_pages.api.operations, *delivery_webhooks.api.operations, *outbox_pages.api.operations]
    types = ["application/x-www-form-urlencoded", "text/plain", "application/json", "multipart/form-data"]
    for op in ops:
        for i, value in enumerate(NASTY):
            path = op.path.replace("{token}", value or "x").replace("{id}", value or "x") \
                .replace("{account_id}", account.id if i % 2 else value or "x")
            body = BODIES[i % len(BODIES)] if op.method == "POST" else None
            headers = {"Content-Type": types[i % len(types)]} if body is not None else {}
            response = httpx.request(op.method, server.url + path, content=body, headers=headers,
                                     params={"token": server.operator_token} if i % 3 else {})
            assert response.status_code < 500, (op.operation_id, value, response.text[:300])


def test_accepted_in_the_callers_transaction_is_captured_with_it(server, ctx, account):
    email = f"t-{uuid.uuid4().hex[:6]}@example.org"
    profile_id = make_profile(server.db, account.id, email=email)
    message = delivery.OutgoingEmail(subject="Welcome", from_email="news@shop.example.com", html="<p>Hi</p>")
    with pytest.raises(RuntimeError), server.db.write() as conn:
        delivery.send_email(conn, account_id=account.id, profile_id=profile_id, to=email, message=message,
                            send_key=f"flow:welcome:{profile_id}", context=ctx)
        raise RuntimeError("the caller's transaction fails")
    assert events_of(server.db, account.id, "Received Email", profile_id) == []  # rolled back with it
    with server.db.write() as conn:
        result = delivery.send_email(conn, account_id=account.id, profile_id=profile_id, to=email, message=message,
                                     send_key=f"flow:welcome:{profile_id}", context=ctx)
    assert result.status == "captured"
    assert len(events_of(server.db, account.id, "Received Email", profile_id)) == 1
