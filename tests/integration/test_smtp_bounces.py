"""Bounces arriving over SMTP: `menura bounces --listen` (a real process) receives a DSN at the VERP
address and an RFC 8058 mailto unsubscribe; the profile is suppressed / unsubscribed at once."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid

import pytest

from menura import delivery
from menura.delivery import outbox
from menura.delivery.context import delivery_context
from tests.conftest import free_port
from tests.delivery_support import events_of, make_profile, profile_row
from tests.e2e.test_tracking_pages import dsn_for
from tests.integration.worker_process import wait_for


@pytest.fixture
def bounce_listener(server):
    port = free_port()
    env = {**os.environ, "MENURA_DATABASE_URL": server.settings.database_url,
           "MENURA_DATA_DIR": str(server.settings.data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "menura.cli", "bounces", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"menura bounces exited: {output}") from None
            time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(10)




def test_dsn_and_mailto_unsubscribe_over_smtp(server, account, bounce_listener):
    ctx = delivery_context(server.db, settings=server.settings)
    people = []
    for _ in range(2):
        email = f"b-{uuid.uuid4().hex[:6]}@example.org"
        pid = make_profile(server.db, account.id, email=email)
        message = delivery.OutgoingEmail(subject="Hello", from_email="news@shop.example.com", html="<p>Hi</p>")
        result = delivery.send_email(server.db, account_id=account.id, profile_id=pid, to=email, message=message,
                                     send_key=f"bounce-test:{pid}", attribution={"$message": "B1"}, context=ctx)
        people.append((pid, email, result.delivery_id))
    (gone, gone_email, gone_id), (leaver, _leaver_email, leaver_id) = people
    with server.db.read() as conn:
        raw = outbox.raw_message(conn, gone_id)
    verp = ctx.signer.verp_local_part("bounces", gone_id) + "@shop.example.com"
    unsubscribe = ctx.signer.verp_local_part("unsubscribe", leaver_id) + "@shop.example.com"
    with smtplib.SMTP("127.0.0.1", bounce_listener, timeout=10) as client:
        client.sendmail("", [verp], dsn_for(gone_email, raw))
        client.sendmail("someone@example.org", [unsubscribe], b"Subject: unsubscribe\r\n\r\nunsubscribe\r\n")
    wait_for(lambda: profile_row(server.db, account.id, gone).email_suppression_reason == "HARD_BOUNCE")
    wait_for(lambda: profile_row(server.db, account.id, leaver).email_consent == "UNSUBSCRIBED")
    assert events_of(server.db, account.id, "Bounced Email", gone)[0]["$message"] == "B1"
    assert events_of(server.db, account.id, "Unsubscribed", leaver)[0]["method_detail"] == "mailto"
