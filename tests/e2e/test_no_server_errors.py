"""No input may produce a 500: every declared operation, fed random query parameters, path ids and
bodies (well-formed JSON of the wrong shape, and fragments of the right shape), answers with a
status below 500 and, for errors, a JSON:API error document."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menura.api.registry import all_operations
from tests.conftest import REVISION

OPERATIONS = [op for op in all_operations() if op.auth in ("private", "public")]

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                     st.text(max_size=30), st.sampled_from(["", "2024-01-01T00:00:00Z", "not-a-date", "+15005550006",
                                                           "a@b.co", "SUBSCRIBED", "$email"]))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                     max_leaves=12)
_names = st.sampled_from(["name", "email", "id", "phone_number", "external_id", "properties", "location",
                          "profile", "metric", "list", "profiles", "subscriptions", "value", "time", "html",
                          "definition", "channel", "audiences", "send_strategy", "datetime", "url"])


@st.composite
def bodies(draw: st.DrawFn, rtype: str) -> Any:
    """Mostly JSON:API-shaped bodies with random attributes and relationships, sometimes anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(_json)
    attributes = draw(st.dictionaries(_names, _json, max_size=5))
    data: dict[str, Any] = {"type": draw(st.sampled_from([rtype, "profile", "nope"])), "attributes": attributes}
    if draw(st.booleans()):
        data["id"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        data["relationships"] = draw(st.dictionaries(_names, st.fixed_dictionaries(
            {"data": st.one_of(_json, st.fixed_dictionaries({"type": st.text(max_size=10),
                                                            "id": st.text(max_size=10)}))}), max_size=2))
    if draw(st.booleans()):
        return {"data": [data]}
    return {"data": data}


_filter_tokens = st.lists(st.sampled_from(["equals(", "any(", "greater-than(", "and(", "or(", "not(", "has(",
                                           "contains(", "id", "email", "name", "datetime", "metric_id", ",",
                                           ")", "'x'", "\"y\"", "1", "-2.5", "true", "null", "[", "]",
                                           "2024-01-01T00:00:00Z", "'", "\\"]), max_size=12).map("".join)


@st.composite
def queries(draw: st.DrawFn, op: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["filter"] = draw(st.one_of(_filter_tokens, st.text(max_size=40)))
    if draw(st.booleans()):
        params["page[size]"] = draw(st.sampled_from(["0", "1", "-1", "x", "100000", "10"]))
    if draw(st.booleans()):
        params["page[cursor]"] = draw(st.text(max_size=40))
    if draw(st.booleans()):
        params["sort"] = draw(st.sampled_from(["-id", "id", "nope", "-", "created", "-updated"]))
    if draw(st.booleans()):
        rtype = draw(st.sampled_from(list(op.query.fields) or ["profile"]))
        params[f"fields[{rtype}]"] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        params["include"] = draw(st.sampled_from([*op.query.include, "nope", ""]))
    return params


def _path(op: Any, value: str) -> str:
    return re.sub(r"\{[^}]+\}", quote(value, safe="") or "x", op.path)


SEEN: dict[int, int] = {}


def _check(response: httpx.Response, op: Any) -> None:
    SEEN[response.status_code] = SEEN.get(response.status_code, 0) + 1
    assert response.status_code < 500, f"{op.operation_id}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("errors"), list) and body["errors"], op.operation_id


def test_random_input_never_500s(server, account):
    headers = {"Authorization": f"Klaviyo-API-Key {account.key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:

        @settings(max_examples=int(os.environ.get("MENURA_FUZZ_EXAMPLES", "8")), deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(data=st.data())
        def one_operation(op: Any, data: st.DataObject) -> None:
            ids = st.sampled_from(["abc123", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
            path_id = data.draw(st.one_of(st.text(max_size=20), ids))
            params = data.draw(queries(op))
            if op.auth == "public":
                params["company_id"] = account.id
            content = None
            if op.request_body:
                rtype = op.operation_id.replace("create_", "").replace("update_", "").replace("_", "-")
                content = json.dumps(data.draw(bodies(rtype))).encode()
            _check(client.request(op.method, _path(op, path_id), params=params, content=content), op)

        failures = []
        for op in OPERATIONS:
            try:
                one_operation(op)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
        print("statuses seen:", sorted(SEEN.items()))
        assert not failures, "\n".join(failures)
