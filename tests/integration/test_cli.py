"""The `menura` command as a user runs it: accounts, keys, clock, and `serve` with several processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REVISION, free_port

MENURA = [sys.executable, "-m", "menura.cli"]


def run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(MENURA + args, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MENURA_DATABASE_URL": database_url, "MENURA_DATA_DIR": str(tmp_path)}


def wait_until_up(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


def test_accounts_keys_and_scopes(env):
    made = json.loads(run(["accounts", "create", "--name", "Shop", "--json"], env))
    assert set(made) == {"account_id", "private_api_key", "public_api_key"}
    scoped = json.loads(run(["keys", "create", "--account", made["account_id"], "--scopes",
                             "tags:read,lists:write", "--json"], env))
    assert scoped["scopes"] == ["lists:write", "tags:read"]
    run(["keys", "revoke", scoped["key_id"]], env)
    bad = subprocess.run([*MENURA, "keys", "create", "--account", made["account_id"], "--scopes", "nope:read"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not a scope" in bad.stderr


def test_serve_with_two_processes_and_virtual_clock(env):
    port = free_port()
    env = {**env, "MENURA_CLOCK": "virtual", "MENURA_OPERATOR_TOKEN": "op_cli"}
    proc = subprocess.Popen([*MENURA, "serve", "--port", str(port), "--workers", "2", "--rate-limits", "off"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        saved = json.loads((Path(env["MENURA_DATA_DIR"]) / "default-api-key.json").read_text())
        headers = {"Authorization": f"Klaviyo-API-Key {saved['private_api_key']}", "revision": REVISION}
        for _ in range(6):  # spread over both processes
            assert httpx.get(f"{url}/api/accounts", headers=headers).status_code == 200
        operator = {"Authorization": "Bearer op_cli"}
        before = httpx.get(f"{url}/menura/clock", headers=operator).json()
        assert before["virtual"] is True
        after = run(["clock", "advance", "3d"], env).strip()
        seen = httpx.get(f"{url}/menura/clock", headers=operator).json()["now"]
        assert seen == after
        assert "menura_http_requests_total" in httpx.get(f"{url}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
