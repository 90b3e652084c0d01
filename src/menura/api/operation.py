"""Declaring an operation, and the pipeline every request goes through:
revision -> authentication -> scopes -> rate limit -> query parsing -> handler -> JSON:API reply."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.types import Scope

from menura.domain import keys as key_rules
from menura.jsonapi import errors
from menura.jsonapi.documents import LinkBuilder
from menura.jsonapi.errors import ApiError
from menura.jsonapi.query import Query, QuerySpec, parse_query
from menura.jsonapi.revisions import parse_revision
from menura.ratelimit import RateTier
from menura.services import Services

T = TypeVar("T")
Auth = Literal["private", "public", "operator", "none"]
JSONAPI = "application/vnd.api+json"


@dataclass
class Reply:
    status: int = 200
    document: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = JSONAPI
    raw: bytes | None = None  # already-encoded body (HTML, metrics, ...)


@dataclass
class Ctx:
    """Everything a handler may look at for one request."""

    services: Services
    operation: Operation
    method: str
    scope: Scope
    path_params: Mapping[str, str]
    params: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body_bytes: bytes
    revision: str = ""
    account_id: str = ""
    query: Query | None = None

    # The URL is built only when a handler asks (links); the hot ingest path never does.
    @cached_property
    def _url(self) -> URL:
        return URL(scope=self.scope)

    @property
    def url(self) -> str:
        return str(self._url)

    @property
    def base_url(self) -> str:
        return f"{self._url.scheme}://{self._url.netloc}"

    @property
    def db(self) -> Any:
        return self.services.db

    @property
    def links(self) -> LinkBuilder:
        return LinkBuilder(self.base_url)

    def now(self) -> Any:
        return self.services.clock.now()

    def body(self, type_: type[T]) -> T:
        """Decode the JSON body into a msgspec type; errors point at the culprit."""
        if not self.body_bytes:
            raise errors.invalid("A request body is required.", pointer="/data")
        try:
            return msgspec.json.decode(self.body_bytes, type=type_)
        except msgspec.ValidationError as exc:
            raise validation_error(str(exc)) from None
        except msgspec.DecodeError as exc:
            raise errors.parse_error(f"JSON parse error - {exc}") from None


def validation_error(message: str) -> ApiError:
    """Turn msgspec's "... - at `$.data.attributes.name`" into a JSON:API pointer."""
    detail, _, where = message.partition(" - at `")
    pointer = ""
    if where:
        path = where.rstrip("`")
        if path.startswith("$"):
            path = path[1:]
        parts = [p for p in path.replace("[", ".").replace("]", "").split(".") if p]
        pointer = "/" + "/".join(parts) if parts else "/"
    # "Object missing required field `name`" points at the missing field itself.
    if detail.startswith("Object missing required field `"):
        name = detail.split("`")[1]
        pointer = pointer.rstrip("/") + "/" + name
        detail = f"'{name}' is a required field."
    elif detail.startswith("Object contains unknown field `"):
        name = detail.split("`")[1]
        pointer = pointer.rstrip("/") + "/" + name
        detail = f"'{name}' is not a valid field for this resource."
    return errors.invalid(detail, pointer=pointer or "/")


# A handler returns a Reply, a document, or None; `async def` handlers return those from a coroutine.
Handler = Callable[[Ctx], Any]


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str
    category: str
    handler: Handler
    scopes: tuple[str, ...] = ()
    rate: RateTier | None = None
    query: QuerySpec = field(default_factory=QuerySpec)
    auth: Auth = "private"
    summary: str = ""
    success: int = 200
    request_body: bool = False
    body_types: tuple[str, ...] = ()  # media types accepted besides JSON (e.g. multipart/form-data)
    max_body_bytes: int | None = None  # overrides the server-wide limit (image uploads)

    @cached_property
    def is_async(self) -> bool:
        """An `async def` handler runs on the event loop (no thread hop): for hot paths that only
        parse, validate and hand off to a background writer."""
        return inspect.iscoroutinefunction(self.handler)

    def run(self, services: Services, ctx: Ctx) -> Reply:
        rate_headers = self._authorize(services, ctx)
        ctx.query = parse_query(ctx.params, self.query)
        return self._reply(self.handler(ctx), rate_headers)

    async def run_async(self, services: Services, ctx: Ctx) -> Reply:
        """`run` for async handlers; authentication only leaves the loop when its cache misses."""
        if key_rules.needs_lookup(services.db, self.auth, ctx.headers, ctx.params):
            rate_headers = await run_in_threadpool(self._authorize, services, ctx)
        else:
            rate_headers = self._authorize(services, ctx)
        ctx.query = parse_query(ctx.params, self.query)
        return self._reply(await self.handler(ctx), rate_headers)

    def _authorize(self, services: Services, ctx: Ctx) -> dict[str, str]:
        if self.auth in ("private", "public"):
            if self.auth == "private":
                ctx.revision = parse_revision(ctx.headers.get("revision"))
                key = key_rules.authenticate(services.db, ctx.headers.get("authorization"))
                if not key_rules.has_scopes(key.scopes, self.scopes):
                    raise errors.permission_denied()
                ctx.account_id = key.account_id
            else:
                ctx.revision = parse_revision(ctx.headers.get("revision"))
                ctx.account_id = key_rules.authenticate_public(services.db, ctx.params.get("company_id"))
            return self._rate_limit(services, ctx.account_id)
        if self.auth == "operator":
            key_rules.check_operator(services, ctx.headers.get("authorization"))
        return {}

    def _reply(self, result: Any, rate_headers: dict[str, str]) -> Reply:
        if isinstance(result, Reply):
            reply = result
        elif result is None:
            reply = Reply(204 if self.success == 200 else self.success)
        else:
            reply = Reply(self.success, result)
        reply.headers.update(rate_headers)
        return reply

    def _rate_limit(self, services: Services, account_id: str) -> dict[str, str]:
        if self.rate is None:
            return {}
        decision = services.rate_limiter.hit(f"{account_id}:{self.operation_id}", self.rate, time.time())
        if not decision.allowed:
            err = errors.throttled(decision.retry_after)
            err.headers.update(decision.headers)
            raise err
        return decision.headers


class Category:
    """The operations of one Klaviyo category, declared with decorators."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.operations: list[Operation] = []

    def _add(self, method: str, path: str, operation_id: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(Operation(method, path, operation_id, self.name, handler,
                                             summary=(handler.__doc__ or "").strip().split("\n")[0],
                                             request_body=method in ("POST", "PATCH", "PUT"), **kwargs))
            return handler
        return register

    def get(self, path: str, operation_id: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, operation_id, **kwargs)

    def post(self, path: str, operation_id: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, operation_id, **kwargs)

    def patch(self, path: str, operation_id: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("PATCH", path, operation_id, **kwargs)

    def delete(self, path: str, operation_id: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path, operation_id, **kwargs)

    def put(self, path: str, operation_id: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("PUT", path, operation_id, **kwargs)


# Klaviyo's rate tiers (burst per second, steady per minute).
XS = RateTier(1, 15)
S = RateTier(3, 60)
M = RateTier(10, 150)
L = RateTier(75, 700)
XL = RateTier(350, 3500)


def tier(burst: int, steady: int) -> RateTier:
    return RateTier(burst, steady)
