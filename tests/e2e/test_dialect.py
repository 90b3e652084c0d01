"""Resource-agnostic behaviour of the JSON:API dialect, through the real server."""

from __future__ import annotations

import httpx

from tests.conftest import REVISION
from tests.spec import assert_matches_spec


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"errors"}
    assert_matches_spec("get_accounts", response.status_code, body)
    return body["errors"][0]


def test_revision_header_missing_and_malformed(server, account):
    auth = {"Authorization": f"Klaviyo-API-Key {account.key}"}
    missing = httpx.get(f"{server.url}/api/accounts", headers=auth)
    assert missing.status_code == 400
    assert _error(missing)["source"] == {"parameter": "revision"}
    bad = httpx.get(f"{server.url}/api/accounts", headers={**auth, "revision": "yesterday"})
    assert bad.status_code == 400
    unknown = httpx.get(f"{server.url}/api/accounts", headers={**auth, "revision": "2019-01-01"})
    assert unknown.status_code == 400


def test_every_published_revision_is_accepted(server, account):
    for revision in ("2024-10-15", "2025-07-15", "2026-07-15", "2026-10-15", "2024-10-15.pre"):
        response = httpx.get(f"{server.url}/api/accounts",
                             headers={"Authorization": f"Klaviyo-API-Key {account.key}", "revision": revision})
        assert response.status_code == 200, revision


def test_authentication(server, account):
    url = f"{server.url}/api/accounts"
    none = httpx.get(url, headers={"revision": REVISION})
    assert none.status_code == 401 and _error(none)["code"] == "not_authenticated"
    wrong_scheme = httpx.get(url, headers={"revision": REVISION, "Authorization": f"Bearer {account.key}"})
    assert wrong_scheme.status_code == 401
    unknown = httpx.get(url, headers={"revision": REVISION, "Authorization": "Klaviyo-API-Key pk_nope"})
    assert unknown.status_code == 401 and _error(unknown)["code"] == "authentication_failed"


def test_trailing_slash_and_links_are_absolute(http, server):
    body = http.get("/api/accounts/").json()
    assert body["links"]["self"].startswith(server.url)
    assert body["data"][0]["links"]["self"].startswith(server.url + "/api/accounts/")


def test_unknown_route_and_wrong_method(http):
    missing = http.get("/api/no-such-thing")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"
    wrong = http.put("/api/accounts")
    assert wrong.status_code == 405 and _error(wrong)["code"] == "method_not_allowed"


def test_health_metrics_openapi_docs(server, http):
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "menura_http_requests_total" in metrics
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["paths"]["/api/accounts"]["get"]["operationId"] == "get_accounts"
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200 and "get_accounts" in page.text


def test_metrics_report_queue_depth(server):
    from menura.store import work

    with server.db.write() as conn:
        work.enqueue(conn, kind="test.never-handled", payload={}, now=server.services.clock.now())
    text = httpx.get(f"{server.url}/metrics").text
    assert 'menura_work_queue_depth{kind="test.never-handled"} 1.0' in text


def test_revoked_key_is_refused(server, account):
    from menura.clock import SystemClock
    from menura.domain import keys

    key_id, key = keys.create_key(server.db, account.id, SystemClock().now())
    headers = {"Authorization": f"Klaviyo-API-Key {key}", "revision": REVISION}
    assert httpx.get(f"{server.url}/api/accounts", headers=headers).status_code == 200
    assert keys.revoke_key(server.db, key_id, SystemClock().now())
    assert httpx.get(f"{server.url}/api/accounts", headers=headers).status_code == 401


def test_body_errors_are_json_api(http):
    tag = {"data": {"type": "tag", "attributes": {"name": "x"}}}
    wrong_type = http.post("/api/tags", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and _error(wrong_type)["code"] == "unsupported_media_type"
    malformed = http.post("/api/tags", content=b'{"data": ')
    assert malformed.status_code == 400 and _error(malformed)["code"] == "parse_error"
    too_big = http.post("/api/tags", content=b'{"data": "' + b"x" * (5 * 1024 * 1024) + b'"}')
    assert too_big.status_code == 413
    missing = http.post("/api/tags", json={"data": {"type": "tag", "attributes": {}}})
    assert missing.status_code == 400
    assert _error(missing)["source"]["pointer"] == "/data/attributes/name"
    plain_json = http.post("/api/tags", json=tag, headers={"Content-Type": "application/json"})
    assert plain_json.status_code == 201


def test_reset_removes_the_accounts_data_only(server, http, account):
    made = http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": "to go"}}})
    assert made.status_code == 201
    operator = {"Authorization": f"Bearer {server.operator_token}"}
    assert httpx.post(f"{server.url}/menura/accounts/{account.id}/reset", headers=operator).status_code == 204
    assert http.get("/api/tags").json()["data"] == []
    assert http.get("/api/accounts").status_code == 200  # the account and its key survive
    missing = httpx.post(f"{server.url}/menura/accounts/nope/reset", headers=operator)
    assert missing.status_code == 404
