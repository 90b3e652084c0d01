"""Rate limits through a real server with a tiny configured limit (scale:0 -> every tier allows 1)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from menura.clock import SystemClock
from menura.domain import accounts
from menura.settings import Settings
from tests.conftest import REVISION, free_port, start_server


@pytest.fixture(scope="module")
def limited_server(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(database_url=database_url, port=free_port(), rate_limits="scale:0",
                        data_dir=Path(tmp_path_factory.mktemp("rl")), run_worker=False)
    srv, thread, services = start_server(settings)
    yield f"http://127.0.0.1:{settings.port}", services
    srv.should_exit = True
    thread.join(timeout=10)


def test_second_request_in_the_window_is_throttled(limited_server):
    url, services = limited_server
    made = accounts.create_account(services.db, SystemClock().now(), name="Limited")
    headers = {"Authorization": f"Klaviyo-API-Key {made.private_api_key}", "revision": REVISION}
    first = httpx.get(f"{url}/api/accounts", headers=headers)
    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == "1"
    assert first.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(first.headers["RateLimit-Reset"]) <= 60
    second = httpx.get(f"{url}/api/accounts", headers=headers)
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) >= 1
    error = second.json()["errors"][0]
    assert error["status"] == 429 and error["code"] == "throttled"
    # Limits are per account: another account is unaffected.
    other = accounts.create_account(services.db, SystemClock().now(), name="Other")
    fresh = httpx.get(f"{url}/api/accounts",
                      headers={"Authorization": f"Klaviyo-API-Key {other.private_api_key}", "revision": REVISION})
    assert fresh.status_code == 200


def test_limits_are_shared_through_redis(database_url, tmp_path):
    """Two servers (as two API processes) sharing Redis share one account's window."""
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis unreachable at 127.0.0.1:6379")
    servers = []
    try:
        for name in ("a", "b"):
            settings = Settings(database_url=database_url, port=free_port(), rate_limits="scale:0",
                                redis_url="redis://127.0.0.1:6379/0", data_dir=tmp_path / name, run_worker=False)
            srv, thread, services = start_server(settings)
            servers.append((srv, thread, f"http://127.0.0.1:{settings.port}", services))
        made = accounts.create_account(servers[0][3].db, SystemClock().now(), name="Shared")
        headers = {"Authorization": f"Klaviyo-API-Key {made.private_api_key}", "revision": REVISION}
        assert httpx.get(f"{servers[0][2]}/api/accounts", headers=headers).status_code == 200
        assert httpx.get(f"{servers[1][2]}/api/accounts", headers=headers).status_code == 429
    finally:
        for srv, thread, _, _ in servers:
            srv.should_exit = True
            thread.join(timeout=10)
