"""ASGI application factory: routes from the category modules, the JSON:API envelope for every
error, trailing-slash tolerance, CORS for the client endpoints, and the embedded worker."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
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


def error_reply(err: ApiError) -> Reply:
    return Reply(err.status, err.document(), dict(err.headers))


def error_response(err: ApiError) -> Response:
    return render(error_reply(err))


async def send_reply(send: Send, reply: Reply) -> None:
    """Answer with `reply` straight through ASGI, with the headers Starlette's `Response` would set
    (content-length unless 204; content-type when there is a body, charset for text)."""
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
    body = b""
    if reply.status != 204 and (reply.document is not None or reply.raw is not None):
        body = reply.raw if reply.raw is not None else _ENCODER.encode(reply.document)
        media_type = reply.media_type
        if media_type.startswith("text/") and "charset=" not in media_type:
            media_type += "; charset=utf-8"
        headers.append((b"content-type", media_type.encode("latin-1")))
    if reply.status != 204:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def request_headers(scope: Scope) -> dict[str, str]:
    """Header names lower-case (ASGI servers send them so); the first of repeated headers wins."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_NO_PARAMS = QueryParams("")


class OperationEndpoint:
    """One operation as a plain ASGI app: the request's parts go into a `Ctx`, the pipeline runs
    (on the event loop for async handlers, in the thread pool otherwise) and the reply is sent.
    No Request/Response objects: the single-event ingest path is answered thousands of times a
    second per process, and this wrapper is most of what it costs besides the handler."""

    def __init__(self, op: Operation, services: Services) -> None:
        self.op = op
        self.services = services
        self.reads_body = op.request_body or op.method == "DELETE"
        self.limit = op.max_body_bytes or services.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        op = self.op
        headers = request_headers(scope)
        try:
            body = b""
            if self.reads_body:
                body = await read_body(receive, headers, self.limit)
                if body:
                    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type not in _BODY_TYPES and content_type not in op.body_types:
                        raise errors.unsupported_media_type(content_type)
            query_string = scope.get("query_string", b"")
            ctx = Ctx(services=self.services, operation=op, method=scope["method"], scope=scope,
                      path_params=scope.get("path_params", {}),
                      params=QueryParams(query_string) if query_string else _NO_PARAMS,
                      headers=headers, body_bytes=body)
            if op.is_async:
                reply = await op.run_async(self.services, ctx)
            else:
                reply = await run_in_threadpool(op.run, self.services, ctx)
        except ClientDisconnect:
            return
        except ApiError as err:
            reply = error_reply(err)
        except Exception:
            log.exception("unhandled error in %s", op.operation_id)
            reply = error_reply(errors.server_error())
        await send_reply(send, reply)
        metrics.observe_request(op.operation_id, scope["method"], reply.status, time.perf_counter() - started)


class DirectRoutes:
    """Operations with a fixed path are found with one dict look-up instead of Starlette's linear
    scan of every route (a regex per route, which dominated the cost of the hot ingest endpoints);
    any other request goes on to the router as before."""

    def __init__(self, app: ASGIApp, endpoints: dict[tuple[str, str], OperationEndpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
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
    endpoints = {op.operation_id: OperationEndpoint(op, services) for op in operations}
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

    app = MenuraApp(routes=routes, lifespan=lifespan,
                    exception_handlers={404: _http_error, 405: _http_error, 500: _server_error})
    app.state.services = services
    app.direct_endpoints = direct
    return app


class MenuraApp(Starlette):
    """Starlette, with the fixed-path operations answered before its own middleware: an operation
    endpoint turns every error into a JSON:API reply itself, so Starlette's error middleware (and
    its per-message wrapper) would only add cost to the hottest requests."""

    direct_endpoints: dict[tuple[str, str], OperationEndpoint] = {}

    def build_middleware_stack(self) -> ASGIApp:
        return StripTrailingSlash(ClientCors(DirectRoutes(super().build_middleware_stack(), self.direct_endpoints)))


def factory() -> Starlette:
    """Entry point for uvicorn's `--factory` (settings from MENURA_* environment variables)."""
    return create_app()


__all__ = ["JSONAPI", "create_app", "factory"]
