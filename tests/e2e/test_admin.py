from __future__ import annotations

import httpx


def test_operator_endpoints_need_the_token(server):
    assert httpx.get(f"{server.url}/menura/clock").status_code == 401
    ok = httpx.get(f"{server.url}/menura/clock", headers={"Authorization": f"Bearer {server.operator_token}"})
    assert ok.status_code == 200 and ok.json()["virtual"] is False


def test_create_account_then_use_it(server):
    made = httpx.post(f"{server.url}/menura/accounts", json={"name": "Via API"},
                      headers={"Authorization": f"Bearer {server.operator_token}"})
    assert made.status_code == 201
    key = made.json()["private_api_key"]
    accounts = httpx.get(f"{server.url}/api/accounts",
                         headers={"Authorization": f"Klaviyo-API-Key {key}", "revision": "2026-07-15"})
    assert accounts.json()["data"][0]["id"] == made.json()["account_id"]


def test_system_clock_cannot_be_moved(server):
    response = httpx.post(f"{server.url}/menura/clock", json={"advance": "1d"},
                          headers={"Authorization": f"Bearer {server.operator_token}"})
    assert response.status_code == 409
