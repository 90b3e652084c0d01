"""Validate response bodies against the schemas of Klaviyo's official OpenAPI spec (read from
../shared; tests that need it skip, saying so, when it is absent)."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "klaviyo-openapi"
SPEC_PATH = SPEC_DIR / "stable.json"
# What data-integration connectors still send; use it for requests made at that revision.
OLD_SPEC = "stable-2024-10-15.json"


@lru_cache(maxsize=2)
def load_spec(name: str = "stable.json") -> dict[str, Any]:
    return json.loads((SPEC_DIR / name).read_text())


@lru_cache(maxsize=2)
def operations(name: str = "stable.json") -> dict[str, tuple[str, str, dict[str, Any]]]:
    out = {}
    for path, item in load_spec(name)["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                out[op["operationId"]] = (method.upper(), path, op)
    return out


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> JSON Schema `type: [T, "null"]`; refs stay refs."""
    if isinstance(node, dict):
        node = {k: _to_json_schema(v) for k, v in node.items()}
        # `oneOf: [{type: integer}, {type: number}]` rejects every integer (it matches both);
        # the spec means "a number", so alternatives that are bare primitive types become anyOf.
        one_of = node.get("oneOf")
        if isinstance(one_of, list) and all(isinstance(o, dict) and set(o) == {"type"} for o in one_of):
            node["anyOf"] = node.pop("oneOf")
        elif isinstance(one_of, list) and _overlapping_objects(one_of):
            # Object alternatives that allow extra properties overlap (EmailSendOptions and
            # SMSSendOptions are the same shape), so "exactly one" cannot hold; "at least one" is meant.
            node["anyOf"] = node.pop("oneOf")
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            elif "$ref" in node or "allOf" in node or "oneOf" in node or "anyOf" in node:
                node = {"anyOf": [node, {"type": "null"}]}
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        return node
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


def _overlapping_objects(alternatives: list[Any]) -> bool:
    """Whether every alternative is a $ref (objects in Klaviyo's spec never forbid extra properties)."""
    return len(alternatives) > 1 and all(isinstance(o, dict) and set(o) == {"$ref"} for o in alternatives)


@lru_cache(maxsize=2)
def _components(name: str = "stable.json") -> dict[str, Any]:
    return _to_json_schema(copy.deepcopy(load_spec(name)["components"]))


def response_schema(operation_id: str, status: int, name: str = "stable.json") -> dict[str, Any] | None:
    _, _, op = operations(name)[operation_id]
    responses = op["responses"]
    entry = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    if entry is None:
        raise AssertionError(f"{operation_id} does not document status {status}")
    if "$ref" in entry:
        entry = load_spec(name)["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    content = entry.get("content")
    if not content:
        return None
    schema = next(iter(content.values()))["schema"]
    return {**_to_json_schema(schema), "components": _components(name)}


def assert_matches_spec(operation_id: str, status: int, body: Any, *, spec: str = "stable.json") -> None:
    """The body (already decoded JSON) is what the spec says `operation_id` answers with `status`;
    `spec=OLD_SPEC` checks an answer to a request made at revision 2024-10-15."""
    if not (SPEC_DIR / spec).exists():
        pytest.skip(f"Klaviyo spec not found at {SPEC_DIR / spec}; schema validation skipped")
    schema = response_schema(operation_id, status, spec)
    if schema is None:
        assert body in (None, b"", ""), f"{operation_id} {status} should have no body"
        return
    jsonschema.validate(body, schema, cls=jsonschema.Draft7Validator)


def operation_facts(operation_id: str) -> tuple[str, str, list[str], dict[str, str]]:
    """(method, path, scopes, rate limit) as the spec declares them."""
    method, path, op = operations()[operation_id]
    return method, path, op.get("x-klaviyo-scopes", []), op.get("x-klaviyo-ratelimit", {})
