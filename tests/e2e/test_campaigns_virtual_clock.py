"""A scheduled campaign on a server with the virtual clock: nothing happens until `menura clock
advance` passes its send time, then the embedded worker sends it (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from menura.cli import main as cli
from menura.clock import SystemClock
from menura.domain import accounts
from menura.settings import Settings
from tests.conftest import PG_OK, REVISION, _drop_pg_schema, _fresh_pg_schema, free_port, start_server
from tests.e2e import campaign_fixtures as cf


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def virtual_server(request, tmp_path_factory) -> Iterator[tuple[str, str]]:
    if request.param == "postgresql":
        if not PG_OK:
            pytest.skip("PostgreSQL unreachable at 127.0.0.1:5432")
        url = _fresh_pg_schema()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('virtual') / 'menura.db'}"
    settings = Settings(database_url=url, port=free_port(), rate_limits="off", clock="virtual",
                        data_dir=Path(tmp_path_factory.mktemp("data")), operator_token="op", worker_poll_seconds=0.05)
    server, thread, _ = start_server(settings)
    try:
        yield f"http://127.0.0.1:{settings.port}", url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if request.param == "postgresql":
            _drop_pg_schema(url)


def advance(url: str, duration: str) -> datetime:
    result = CliRunner().invoke(cli, ["clock", "advance", duration, "--database-url", url])
    assert result.exit_code == 0, result.output
    return datetime.fromisoformat(result.output.strip())


def test_scheduled_send_runs_when_the_clock_is_advanced_past_it(virtual_server):
    base, url = virtual_server
    from menura.store.db import Database

    db = Database(url)
    made = accounts.create_account(db, SystemClock().now(), name=f"Virtual {uuid.uuid4().hex[:4]}")
    db.dispose()
    headers = {"Authorization": f"Klaviyo-API-Key {made.private_api_key}", "revision": REVISION}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        now = datetime.fromisoformat(httpx.get(f"{base}/menura/clock",
                                               headers={"Authorization": "Bearer op"}).json()["now"])
        people = [cf.profile(http, f"v{i}@example.com") for i in range(3)]
        list_id = cf.new_list(http, members=people)
        at = now + timedelta(days=2)
        campaign_id, _ = cf.ready_email_campaign(http, [list_id],
                                                 strategy={"method": "static", "datetime": at.isoformat()})
        assert cf.send(http, campaign_id).status_code == 202
        assert http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]["status"] == "Scheduled"
        advance(url, "1d")
        time.sleep(0.5)
        assert cf.job_status(http, campaign_id) == "queued"
        advance(url, "1d1m")
        cf.wait_sent(http, campaign_id, timeout=20)
        attributes = http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]
        assert attributes["status"] == "Sent"
        assert attributes["send_time"] == at.isoformat()
