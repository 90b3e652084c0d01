"""Every declared operation matches the spec's facts, and the auth matrix holds for each:
no key -> 401, a key without the operation's scopes -> 403."""

from __future__ import annotations

import re

import httpx
import pytest

from menura.api.registry import all_operations
from menura.clock import SystemClock
from menura.domain import keys
from tests.conftest import REVISION
from tests.spec import SPEC_PATH, operation_facts

KLAVIYO_OPS = [op for op in all_operations() if op.auth in ("private", "public")]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "abc123", path)


@pytest.mark.parametrize("op", KLAVIYO_OPS, ids=lambda op: op.operation_id)
def test_declaration_matches_spec(op):
    if not SPEC_PATH.exists():
        pytest.skip("Klaviyo spec absent")
    method, path, scopes, rate = operation_facts(op.operation_id)
    assert (op.method, op.path) == (method, path)
    assert sorted(op.scopes) == sorted(scopes)
    if rate:
        assert op.rate is not None
        assert f"{op.rate.burst}/s" == rate["burst"] and f"{op.rate.steady}/m" == rate["steady"]


def test_auth_matrix(server, account):
    # A key whose only scope no Klaviyo operation here needs.
    _, scoped = keys.create_key(server.db, account.id, SystemClock().now(), scopes=["webhooks:read"])
    for op in KLAVIYO_OPS:
        if op.auth != "private":
            continue
        url = server.url + _concrete(op.path)
        body = b"{}" if op.request_body else None
        headers = {"revision": REVISION, "Content-Type": "application/vnd.api+json"}
        anonymous = httpx.request(op.method, url, headers=headers, content=body)
        assert anonymous.status_code == 401, op.operation_id
        if keys.has_scopes(frozenset(["webhooks:read"]), op.scopes):
            continue
        forbidden = httpx.request(op.method, url, content=body,
                                  headers={**headers, "Authorization": f"Klaviyo-API-Key {scoped}"})
        assert forbidden.status_code == 403, op.operation_id
