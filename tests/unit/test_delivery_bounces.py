"""Parsing what comes back after sending: RFC 3464 DSNs (hard, soft, delayed, several recipients, returned
headers), RFC 5965 complaint reports, Amazon SES notifications via SNS and SendGrid events."""

from __future__ import annotations

import json

from menura.delivery.bounces import COMPLAINT, DROPPED, HARD, SOFT, parse_report, parse_sendgrid, parse_ses

TOKEN = "k6FtpkFDQzEyM7phYmNk.J9VYKFXaVN3ZuYn5YWoHMw"


def dsn(status_blocks: str, returned: str, content_type: str = "text/rfc822-headers") -> bytes:
    return f"""From: MAILER-DAEMON@mx.example.org
To: bounces+abc-def@shop.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org. I'm sorry to have to inform you that your message
could not be delivered to one or more recipients.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Thu, 5 Mar 2026 14:30:00 +0000

{status_blocks}
--BOUND
Content-Type: {content_type}

{returned}
--BOUND--
""".replace("\n", "\r\n").encode()


ORIGINAL = f"""From: Shop <news@shop.example.com>
To: zoe@example.org
Subject: Spring sale
Message-ID: <abcdefghijklmnopqrstuvwxyz@shop.example.com>
X-Menura-Message: {TOKEN}
"""


def test_hard_bounce_with_returned_headers():
    blocks = """Final-Recipient: rfc822; zoe@example.org
Original-Recipient: rfc822;Zoe@Example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <zoe@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table
"""
    [report] = parse_report(dsn(blocks, ORIGINAL))
    assert (report.kind, report.recipient, report.status, report.source) == (HARD, "zoe@example.org", "5.1.1", "dsn")
    assert "User unknown in virtual mailbox table" in report.diagnostic
    assert report.message_token == TOKEN
    assert report.message_id == "<abcdefghijklmnopqrstuvwxyz@shop.example.com>"


def test_soft_bounce_delayed_notice_and_several_recipients():
    blocks = """Final-Recipient: rfc822; full@example.org
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

Final-Recipient: rfc822; later@example.org
Action: delayed
Status: 4.4.7
Diagnostic-Code: smtp; 451 try again

Final-Recipient: rfc822; ok@example.org
Action: delivered
Status: 2.0.0
"""
    reports = parse_report(dsn(blocks, ORIGINAL, content_type="message/rfc822"))
    assert [(r.kind, r.recipient, r.status) for r in reports] == [(SOFT, "full@example.org", "5.2.2")]
    assert reports[0].message_token == TOKEN  # from a whole returned message/rfc822


def test_status_taken_from_diagnostic_code_when_missing():
    blocks = """Final-Recipient: rfc822; gone@example.org
Action: failed
Diagnostic-Code: smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound
"""
    [report] = parse_report(dsn(blocks, ORIGINAL))
    assert (report.kind, report.status) == (HARD, "5.1.10")


def test_non_reports_are_ignored():
    assert parse_report(b"From: a@b\r\nSubject: Out of office\r\n\r\nI am away.\r\n") == []
    assert parse_report(b"not an email at all") == []


def test_feedback_loop_complaint():
    arf = f"""From: fbl@isp.example
To: bounces@shop.example.com
Subject: Complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B"

--B
Content-Type: text/plain

This is an email abuse report.
--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeFBL/1.0
Version: 1
Original-Rcpt-To: zoe@example.org

--B
Content-Type: message/rfc822

{ORIGINAL}
body
--B--
""".replace("\n", "\r\n").encode()
    [report] = parse_report(arf)
    assert (report.kind, report.recipient, report.source, report.message_token) == (
        COMPLAINT, "zoe@example.org", "arf", TOKEN)


def sns(message: dict) -> dict:
    return {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:ses",
            "Message": json.dumps(message)}


MAIL = {"messageId": "0100018e-ses-id", "source": "news@shop.example.com",
        "headers": [{"name": "Message-ID", "value": "<abcdefghijklmnopqrstuvwxyz@shop.example.com>"},
                    {"name": "X-Menura-Message", "value": TOKEN}],
        "commonHeaders": {"messageId": "<abcdefghijklmnopqrstuvwxyz@shop.example.com>"}}


def test_ses_bounces_complaints_and_suppressed():
    permanent = sns({"notificationType": "Bounce", "mail": MAIL, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": "zoe@example.org", "action": "failed", "status": "5.1.1",
                               "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}})
    [report] = parse_ses(permanent)
    assert (report.kind, report.recipient, report.status, report.source) == (HARD, "zoe@example.org", "5.1.1", "ses")
    assert report.message_token == TOKEN and report.message_id == "<abcdefghijklmnopqrstuvwxyz@shop.example.com>"
    transient = sns({"eventType": "Bounce", "mail": MAIL, "bounce": {
        "bounceType": "Transient", "bounceSubType": "MailboxFull",
        "bouncedRecipients": [{"emailAddress": "zoe@example.org"}]}})
    assert parse_ses(transient)[0].kind == SOFT
    suppressed = sns({"notificationType": "Bounce", "mail": MAIL, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "Suppressed",
        "bouncedRecipients": [{"emailAddress": "zoe@example.org"}]}})
    assert parse_ses(suppressed)[0].kind == DROPPED
    complaint = sns({"notificationType": "Complaint", "mail": MAIL, "complaint": {
        "complainedRecipients": [{"emailAddress": "zoe@example.org"}], "complaintFeedbackType": "abuse"}})
    assert [(r.kind, r.recipient) for r in parse_ses(complaint)] == [(COMPLAINT, "zoe@example.org")]
    assert parse_ses(sns({"notificationType": "Delivery", "mail": MAIL})) == []
    assert parse_ses({"Type": "Notification", "Message": "not json"}) == []


def test_sendgrid_events():
    events = [
        {"email": "a@example.org", "event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 unknown",
         "smtp-id": "<a@shop.example.com>"},
        {"email": "b@example.org", "event": "bounce", "type": "blocked", "status": "5.7.1", "reason": "blocked"},
        {"email": "c@example.org", "event": "dropped", "reason": "Bounced Address"},
        {"email": "d@example.org", "event": "spamreport", "menura_message": TOKEN},
        {"email": "e@example.org", "event": "delivered"},
        {"email": "f@example.org", "event": "open"},
        "garbage",
    ]
    reports = parse_sendgrid(events)
    assert [(r.kind, r.recipient) for r in reports] == [
        (HARD, "a@example.org"), (SOFT, "b@example.org"), (DROPPED, "c@example.org"), (COMPLAINT, "d@example.org")]
    assert reports[0].message_id == "<a@shop.example.com>" and reports[3].message_token == TOKEN
