"""Following a listing's `links.next` to the end, as a client pages through results."""

from __future__ import annotations

import httpx

from tests.spec import assert_matches_spec


def walk(http: httpx.Client, path: str, params: dict, *, operation: str | None = None) -> list[dict]:
    """Every resource of a listing; with `operation`, each page is checked against the spec."""
    seen: list[dict] = []
    response = http.get(path, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        if operation is not None:
            assert_matches_spec(operation, 200, body)
        seen += body["data"]
        if "next" not in body["links"]:
            return seen
        response = http.get(body["links"]["next"])
