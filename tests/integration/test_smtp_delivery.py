"""Email through a real SMTP server (aiosmtpd on loopback): headers and a DKIM signature that verifies,
tracking links that work against the running server, STARTTLS + AUTH, connection reuse, per-domain
rate limits, 5xx hard bounces, 4xx deferrals, the relay down then up (nothing lost, nothing twice), a
message accepted in the caller's transaction, and an unsubscribe between attempts."""

from __future__ import annotations

import base64
import datetime as dt
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy

import dkim
import httpx
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from menura import delivery
from menura.delivery.context import delivery_context, use_settings
from menura.domain import consent
from menura.store import delivery as store
from tests.conftest import free_port
from tests.delivery_support import SmtpSink, events_of, html_of, links_in, make_profile, profile_row, smtp_sink
from tests.integration.worker_process import wait_for

ATTRIBUTION = {"$message": "01SMTPMSG", "Campaign Name": "Launch"}


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory) -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(path), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def relay(server) -> Iterator[Callable[..., object]]:
    """Settings for a relay URL (background retries in this process use them too)."""

    def configure(url: str, **extra: object):
        settings = server.settings.model_copy(update={"smtp_url": url, "delivery_retry_seconds": 0.2, **extra})
        use_settings(settings)
        return delivery_context(server.db, settings=settings)

    yield configure
    use_settings(None)


def message(html: str = "<html><body><p>Hi <a href='https://shop.example.com/new'>new</a></p></body></html>",
            **kwargs: object) -> delivery.OutgoingEmail:
    return delivery.OutgoingEmail(subject="Launch day", from_email="news@shop.example.com", from_label="Shop",
                                  html=html, **kwargs)


def recipients(server, account, n: int, domain: str = "example.org") -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        email = f"r-{uuid.uuid4().hex[:8]}@{domain}"
        out.append((make_profile(server.db, account.id, email=email), email))
    return out


def jobs(account, people: list[tuple[str, str]], prefix: str, **kwargs: object) -> list[delivery.EmailJob]:
    return [delivery.EmailJob(account.id, pid, email, message(**kwargs), f"{prefix}:{pid}", ATTRIBUTION)
            for pid, email in people]




def statuses(server, ids: list[str]) -> dict[str, str]:
    with server.db.read() as conn:
        return {i: r.status for i, r in store.messages_by_ids(conn, ids).items()}


def test_campaign_batch_reaches_smtp_with_dkim_and_working_links(server, account, relay, dkim_key):
    key_path, dns_record = dkim_key
    port = free_port()
    ctx = relay(f"smtp://127.0.0.1:{port}?pool=3", dkim_selector="m1", dkim_domain="shop.example.com",
                dkim_private_key_path=key_path)
    people = recipients(server, account, 12)
    with smtp_sink(port) as sink:
        results = delivery.send_emails(server.db, jobs(account, people, "launch"), context=ctx)
    assert [r.status for r in results] == ["sent"] * 12
    assert len(sink.messages) == 12 and len({m.peer for m in sink.messages}) <= 3  # pooled connections
    pid, email = people[0]
    [received] = sink.to(email)
    assert received.mail_from.startswith("bounces+") and received.mail_from.endswith("@shop.example.com")
    parsed = message_from_bytes(received.data, policy=policy.default)
    assert parsed["Subject"] == "Launch day" and parsed["To"] == email
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == f"<{results[0].delivery_id}@shop.example.com>"
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: dns_record if name == b"m1._domainkey."
                       b"shop.example.com." else None)
    assert len(events_of(server.db, account.id, "Received Email", pid)) == 1
    [click] = links_in(html_of(received.data), "/t/c/")
    assert click.startswith(server.url)
    assert httpx.get(click, follow_redirects=False).status_code == 302
    assert len(events_of(server.db, account.id, "Clicked Email", pid)) == 1
    # Retrying the whole batch sends nothing twice.
    with smtp_sink(port) as again:
        repeated = delivery.send_emails(server.db, jobs(account, people, "launch"), context=ctx)
    assert all(r.duplicate for r in repeated) and again.messages == []


def _self_signed() -> ssl.SSLContext:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pem") as cert_file, tempfile.NamedTemporaryFile(suffix=".key") as k:
        cert_file.write(cert.public_bytes(serialization.Encoding.PEM))
        k.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
        cert_file.flush()
        k.flush()
        context.load_cert_chain(cert_file.name, k.name)
    return context


def test_starttls_and_auth(server, account, relay):
    port = free_port()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server_, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss")

    people = recipients(server, account, 2)
    with smtp_sink(port, tls_context=_self_signed(), require_starttls=True, authenticator=authenticator,
                   auth_required=True) as sink:
        ctx = relay(f"smtp://mailer:p%40ss@127.0.0.1:{port}?starttls=true&verify=false&pool=1")
        results = delivery.send_emails(server.db, jobs(account, people, "tls"), context=ctx)
        assert [r.status for r in results] == ["sent", "sent"] and len(sink.messages) == 2
        assert logins[0] == (b"mailer", b"p@ss")
        bad = relay(f"smtp://mailer:wrong@127.0.0.1:{port}?starttls=true&verify=false&pool=1&timeout=2")
        refused = delivery.send_emails(server.db, jobs(account, recipients(server, account, 1), "tls-bad"),
                                       context=bad)
        assert refused[0].status == "deferred"  # a relay that refuses us never loses the message
        assert len(sink.messages) == 2


def test_bounces_and_deferrals_at_send_time(server, account, relay):
    port = free_port()
    tries: dict[str, int] = {}

    def reply_for(rcpt: str) -> str | None:
        if rcpt.startswith("gone-"):
            return f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
        if rcpt.startswith("full-"):
            return "552 5.2.2 Mailbox full"
        if rcpt.startswith("busy-"):
            tries[rcpt] = tries.get(rcpt, 0) + 1
            return "451 4.7.1 Greylisted, try again" if tries[rcpt] == 1 else None
        return None

    gone = make_profile(server.db, account.id, email=f"gone-{uuid.uuid4().hex[:6]}@example.org")
    full = make_profile(server.db, account.id, email=f"full-{uuid.uuid4().hex[:6]}@example.org")
    busy = make_profile(server.db, account.id, email=f"busy-{uuid.uuid4().hex[:6]}@example.org")
    people = [(p, profile_row(server.db, account.id, p).email) for p in (gone, full, busy)]
    with smtp_sink(port, SmtpSink(reply_for=reply_for)) as sink:
        ctx = relay(f"smtp://127.0.0.1:{port}")
        results = delivery.send_emails(server.db, jobs(account, people, "bounce"), context=ctx)
        assert [r.status for r in results] == ["bounced", "bounced", "deferred"]
        wait_for(lambda: statuses(server, [results[2].delivery_id])[results[2].delivery_id] == "sent")
        assert len(sink.to(people[2][1])) == 1
    assert profile_row(server.db, account.id, gone).email_suppression_reason == "HARD_BOUNCE"
    assert profile_row(server.db, account.id, full).email_suppression_reason is None
    assert [e["Bounce Type"] for e in events_of(server.db, account.id, "Bounced Email", gone)] == ["hard"]
    assert [e["Bounce Type"] for e in events_of(server.db, account.id, "Bounced Email", full)] == ["soft"]
    assert len(events_of(server.db, account.id, "Received Email", busy)) == 1


def test_relay_down_then_up_loses_nothing_and_sends_nothing_twice(server, account, relay):
    port = free_port()
    ctx = relay(f"smtp://127.0.0.1:{port}?pool=4")
    people = recipients(server, account, 25)
    results = delivery.send_emails(server.db, jobs(account, people, "outage"), context=ctx)
    assert {r.status for r in results} == {"deferred"}
    ids = [r.delivery_id for r in results]
    time.sleep(1.0)  # the relay stays down through several retries
    assert set(statuses(server, ids).values()) <= {"deferred", "sending"}
    with smtp_sink(port) as sink:
        wait_for(lambda: set(statuses(server, ids).values()) == {"sent"}, timeout=30)
        for _, email in people:
            assert len(sink.to(email)) == 1
    with server.db.read() as conn:
        rows = store.messages_by_ids(conn, ids)
    assert all(row.attempts >= 2 for row in rows.values())
    for pid, _ in people:
        assert len(events_of(server.db, account.id, "Received Email", pid)) == 1


def test_queued_in_the_callers_transaction_and_unsubscribe_before_retry(server, account, relay):
    port = free_port()
    ctx = relay(f"smtp://127.0.0.1:{port}")
    (pid, email), (quitter, quitter_email) = recipients(server, account, 2)
    with server.db.write() as conn:
        result = delivery.send_email(conn, account_id=account.id, profile_id=pid, to=email, message=message(),
                                     send_key=f"flow:{pid}", attribution=ATTRIBUTION, context=ctx)
        assert result.status == "queued"
    # Not sent yet (relay down): it is deferred by the work item, then the relay comes up.
    deferred = delivery.send_emails(server.db, jobs(account, [(quitter, quitter_email)], "quit"), context=ctx)
    assert deferred[0].status == "deferred"
    with server.db.write() as conn:
        consent.set_email_marketing(conn, account_id=account.id, profile_id=quitter, consent=consent.UNSUBSCRIBED,
                                    now=ctx.now())
    with smtp_sink(port) as sink:
        wait_for(lambda: statuses(server, [result.delivery_id])[result.delivery_id] == "sent", timeout=30)
        wait_for(lambda: statuses(server, [deferred[0].delivery_id])[deferred[0].delivery_id] == "skipped")
        assert len(sink.to(email)) == 1 and sink.to(quitter_email) == []


def test_per_domain_rate_limit(server, account, relay):
    port = free_port()
    ctx = relay(f"smtp://127.0.0.1:{port}?pool=4&rate=slow.example:10")
    slow = recipients(server, account, 6, domain="slow.example")
    fast = recipients(server, account, 6, domain="fast.example")
    with smtp_sink(port):
        started = time.perf_counter()
        delivery.send_emails(server.db, jobs(account, fast, "fast"), context=ctx)
        fast_time = time.perf_counter() - started
        started = time.perf_counter()
        results = delivery.send_emails(server.db, jobs(account, slow, "slow"), context=ctx)
        slow_time = time.perf_counter() - started
    assert {r.status for r in results} == {"sent"}
    assert slow_time >= 0.45 and slow_time > fast_time  # 6 messages at 10/s: at least 0.5 s of spacing


def test_cc_and_bcc_copies(server, account, relay):
    """Each recipient's own message also goes to the Cc and Bcc addresses in the same SMTP transaction:
    Cc is a visible header, Bcc only an envelope recipient. A refused copy does not bounce the
    recipient; a deferred message keeps its copies for the retry."""
    port = free_port()
    ctx = relay(f"smtp://127.0.0.1:{port}")
    people = recipients(server, account, 2)
    copies = {"cc": "manager@shop.example.com", "bcc": "archive@shop.example.com"}
    with smtp_sink(port) as sink:
        results = delivery.send_emails(server.db, jobs(account, people, "copies", cc=(copies["cc"],),
                                                       bcc=(copies["bcc"],)), context=ctx)
    assert [r.status for r in results] == ["sent", "sent"]
    assert len(sink.messages) == 2
    for pid, email in people:
        [received] = sink.to(email)
        assert received.rcpt_tos == [email, copies["cc"], copies["bcc"]]
        parsed = message_from_bytes(received.data, policy=policy.default)
        assert parsed["To"] == email and parsed["Cc"] == copies["cc"]
        assert parsed["Bcc"] is None and copies["bcc"].encode() not in received.data
        [event] = events_of(server.db, account.id, "Received Email", pid)
        assert not any(key.startswith("_menura") for key in event)

    # The relay refuses the Bcc copy: the recipient still has the message (and the Cc copy).
    refuse = SmtpSink(reply_for=lambda rcpt: "550 5.1.1 no such user" if rcpt.startswith("archive@") else None)
    person = recipients(server, account, 1)
    with smtp_sink(port, refuse) as sink:
        [result] = delivery.send_emails(server.db, jobs(account, person, "refused-copy", cc=(copies["cc"],),
                                                        bcc=(copies["bcc"],)), context=ctx)
    assert result.status == "sent" and sink.messages[0].rcpt_tos == [person[0][1], copies["cc"]]

    # Relay down: the deferred message is sent later from its stored bytes, with its copies.
    later = recipients(server, account, 1)
    [deferred] = delivery.send_emails(server.db, jobs(account, later, "copies-later", bcc=(copies["bcc"],)),
                                      context=ctx)
    assert deferred.status == "deferred"
    with smtp_sink(port) as sink:
        wait_for(lambda: statuses(server, [deferred.delivery_id])[deferred.delivery_id] == "sent", timeout=30)
        assert [m.rcpt_tos for m in sink.messages] == [[later[0][1], copies["bcc"]]]
