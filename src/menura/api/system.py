"""Endpoints outside Klaviyo's categories: health, Prometheus metrics, and Menura's own OpenAPI
description (/openapi.json) with a browsable page (/docs)."""

from __future__ import annotations

import html
from typing import Any

import msgspec
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from menura import __version__, metrics
from menura.api.operation import Operation
from menura.services import Services
from menura.store import work


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in _path_names(op.path):
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    if op.auth in ("private", "public"):
        params.append({"name": "revision", "in": "header", "required": True,
                       "schema": {"type": "string", "default": "2026-07-15"}})
    if op.auth == "public":
        params.append({"name": "company_id", "in": "query", "required": True, "schema": {"type": "string"}})
    spec = op.query
    for rtype, allowed in spec.fields.items():
        params.append({"name": f"fields[{rtype}]", "in": "query", "explode": False,
                       "schema": {"type": "array", "items": {"type": "string", "enum": list(allowed)}}})
    for rtype, allowed in spec.additional_fields.items():
        params.append({"name": f"additional-fields[{rtype}]", "in": "query", "explode": False,
                       "schema": {"type": "array", "items": {"type": "string", "enum": list(allowed)}}})
    if spec.filters:
        params.append({"name": "filter", "in": "query", "schema": {"type": "string"},
                       "description": "Allowed fields: " + ", ".join(sorted(spec.filters))})
    if spec.include:
        params.append({"name": "include", "in": "query", "explode": False,
                       "schema": {"type": "array", "items": {"type": "string", "enum": list(spec.include)}}})
    if spec.page:
        params.append({"name": "page[cursor]", "in": "query", "schema": {"type": "string"}})
        params.append({"name": "page[size]", "in": "query",
                       "schema": {"type": "integer", "default": spec.page.default,
                                  "minimum": spec.page.minimum, "maximum": spec.page.maximum}})
    if spec.sort:
        values = [v for s in spec.sort for v in (s, f"-{s}")]
        params.append({"name": "sort", "in": "query", "schema": {"type": "string", "enum": values}})
    return params


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def openapi_document(operations: list[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.category],
            "parameters": _parameters(op),
            "responses": {str(op.success): {"description": "Success"},
                          "4XX": {"description": "Client error (JSON:API error document)"}},
        }
        if op.scopes:
            entry["x-klaviyo-scopes"] = list(op.scopes)
        if op.rate is not None:
            entry["x-klaviyo-ratelimit"] = {"burst": f"{op.rate.burst}/s", "steady": f"{op.rate.steady}/m"}
        if op.request_body:
            entry["requestBody"] = {"required": True, "content": {"application/vnd.api+json": {
                "schema": {"type": "object"}}}}
        security = {"private": [{"Klaviyo-API-Key": []}], "operator": [{"OperatorToken": []}]}.get(op.auth)
        if security is not None:
            entry["security"] = security
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.0.2",
        "info": {"title": "Menura API", "version": __version__,
                 "description": "Klaviyo-compatible REST API (revision 2026-07-15) plus Menura's "
                                "own operator endpoints under /menura."},
        "paths": paths,
        "components": {"securitySchemes": {
            "Klaviyo-API-Key": {"type": "apiKey", "in": "header", "name": "Authorization",
                                "description": "Klaviyo-API-Key pk_…"},
            "OperatorToken": {"type": "http", "scheme": "bearer"},
        }},
    }


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained page (no external assets: Menura runs offline)."""
    rows: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            scopes = ", ".join(op.get("x-klaviyo-scopes", []))
            rate = op.get("x-klaviyo-ratelimit")
            rate_text = f"{rate['burst']}, {rate['steady']}" if rate else ""
            rows.setdefault(op["tags"][0], []).append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['operationId'])}</td><td>{html.escape(op['summary'])}</td>"
                f"<td>{html.escape(scopes)}</td><td>{rate_text}</td></tr>")
    sections = "".join(
        f"<h2>{html.escape(cat)}</h2><table><tr><th>Method</th><th>Path</th><th>Operation</th>"
        f"<th>Summary</th><th>Scopes</th><th>Rate</th></tr>{''.join(items)}</table>"
        for cat, items in rows.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Menura API</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}"
        "</style></head><body><h1>Menura API</h1><p>Machine-readable: <a href='/openapi.json'>"
        f"/openapi.json</a></p>{sections}</body></html>")


def routes(services: Services, operations: list[Operation]) -> list[Route]:
    document = openapi_document(operations)
    encoded = msgspec.json.encode(document)

    async def healthz(_request: Request) -> Response:
        def check() -> bool:
            with services.db.read() as conn:
                conn.execute(text("SELECT 1"))
            return True

        try:
            await run_in_threadpool(check)
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    def measure_queues() -> None:
        with services.db.read() as conn:
            depth = work.queue_depth_by_kind(conn)
        metrics.set_queue_depth(depth)

    async def metrics_endpoint(_request: Request) -> Response:
        await run_in_threadpool(measure_queues)
        body, content_type = metrics.render_metrics()
        return Response(body, media_type=content_type)

    async def openapi(_request: Request) -> Response:
        return Response(encoded, media_type="application/json")

    async def docs(_request: Request) -> Response:
        return HTMLResponse(docs_page(document))

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
