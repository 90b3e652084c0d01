"""ASGI application factory: routes from the category modules, the JSON:API envelope for every
error, trailing-slash tolerance, CORS for the client endpoints, and the embedded worker."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from menura import metrics
from menura.api import system
from menura.api.operation import JSONAPI, Ctx, Operation, Reply
from menura.api.registry import all_operations
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.services import Services, build_services
from menura.settings import Settings, get_settings

log = logging.getLogger("menura.http")
_ENCODER = msgspec.json.Encoder()
_BODY_TYPES = ("application/vnd.api+json", "application/json")


def render(reply: Reply) -> Response:
    if reply.status == 204 or (reply.document is None and reply.raw is None):
        return Response(status_code=reply.status, headers=reply.headers)
    body = reply.raw if reply.raw is not None else _ENCODER.encode(reply.document)
    return Response(body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)


def error_response(err: ApiError) -> Response:
    return render(Reply(err.status, err.document(), dict(err.headers)))


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def make_endpoint(op: Operation, services: Services) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = b""
            if op.request_body or request.method == "DELETE":
                body = await read_body(request, op.max_body_bytes or services.settings.max_body_bytes)
                if body:
                    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type not in _BODY_TYPES and content_type not in op.body_types:
                        raise errors.unsupported_media_type(content_type)
            url = request.url
            ctx = Ctx(services=services, operation=op, method=request.method, url=str(url),
                      base_url=f"{url.scheme}://{url.netloc}", path_params=request.path_params,
                      params=request.query_params, headers=request.headers, body_bytes=body)
            if op.is_async:
                response = render(await op.run_async(services, ctx))
            else:
                response = render(await run_in_threadpool(op.run, services, ctx))
        except ApiError as err:
            response = error_response(err)
        except Exception:
            log.exception("unhandled error in %s", op.operation_id)
            response = error_response(errors.server_error())
        metrics.observe_request(op.operation_id, request.method, response.status_code,
                                time.perf_counter() - started)
        return response

    return endpoint


class DirectRoutes:
    """Operations with a fixed path are found with one dict look-up instead of Starlette's linear
    scan of every route (a regex per route, which dominated the cost of the hot ingest endpoints);
    any other request goes on to the router as before."""

    def __init__(self, app: ASGIApp,
                 endpoints: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class StripTrailingSlash:
    """Klaviyo answers `/api/tags` and `/api/tags/` alike; links carry the slash."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope, path=path.rstrip("/") or "/")
        await self.app(scope, receive, send)


class ClientCors:
    """Browsers call /client/* with the public key; CORS is open there and only there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                                   allow_headers=["*"], max_age=3600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/client"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(errors.method_not_allowed(request.method))
    if exc.status_code == 404:
        return error_response(errors.not_found(f"The path '{request.url.path}' does not exist."))
    return error_response(ApiError(exc.status_code, "error", str(exc.detail), str(exc.detail)))


async def _server_error(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error: %r", exc)
    return error_response(errors.server_error())


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    settings = settings or get_settings()
    services = services or build_services(settings)
    # Sending code runs deep in workers and hooks; it reads this process's settings from here.
    from menura.delivery.context import use_settings

    use_settings(settings)
    operations = all_operations()
    endpoints = {op.operation_id: make_endpoint(op, services) for op in operations}
    routes: list[Any] = [Route(op.path, endpoints[op.operation_id], methods=[op.method],
                               name=op.operation_id) for op in operations]
    routes += system.routes(services, operations)
    direct = {(op.method, op.path): endpoints[op.operation_id] for op in operations if "{" not in op.path}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        worker = None
        if settings.run_worker:
            from menura import worker as worker_runtime

            worker = worker_runtime.embedded_worker(services)
            worker.start_thread()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            services.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: _http_error, 405: _http_error, 500: _server_error})
    app.state.services = services
    app.add_middleware(DirectRoutes, endpoints=direct)
    app.add_middleware(ClientCors)
    app.add_middleware(StripTrailingSlash)
    return app


def factory() -> Starlette:
    """Entry point for uvicorn's `--factory` (settings from MENURA_* environment variables)."""
    return create_app()


__all__ = ["JSONAPI", "create_app", "factory"]
