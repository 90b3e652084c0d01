"""The JSON:API error envelope Klaviyo answers with."""

from __future__ import annotations

import uuid
from typing import Any


class ApiError(Exception):
    """An error answered as `{"errors": [...]}` with the given HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.headers = headers or {}
        self.meta = meta or {}

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "status": self.status,
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
        }
        source: dict[str, str] = {}
        if self.pointer is not None:
            source["pointer"] = self.pointer
        if self.parameter is not None:
            source["parameter"] = self.parameter
        if source:
            error["source"] = source
        error["links"] = {}
        error["meta"] = self.meta
        return error

    def document(self) -> dict[str, Any]:
        return {"errors": [self.to_dict()]}


def invalid(detail: str, *, pointer: str | None = None, parameter: str | None = None) -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail, pointer=pointer, parameter=parameter)


def parse_error(detail: str) -> ApiError:
    return ApiError(400, "parse_error", "Malformed request.", detail, pointer="/data")


def not_found(detail: str = "Not found.", *, pointer: str | None = None) -> ApiError:
    return ApiError(404, "not_found", "Not found.", detail, pointer=pointer)


def not_authenticated(detail: str = "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.") -> ApiError:
    return ApiError(401, "not_authenticated", "Authentication credentials were not provided.", detail)


def authentication_failed() -> ApiError:
    return ApiError(401, "authentication_failed", "Incorrect authentication credentials.",
                    "Incorrect authentication credentials.")


def permission_denied(detail: str = "You do not have permission to perform this action.") -> ApiError:
    return ApiError(403, "permission_denied", "You do not have permission to perform this action.", detail)


def conflict(code: str, detail: str, *, pointer: str | None = None, meta: dict[str, Any] | None = None) -> ApiError:
    return ApiError(409, code, "Conflict.", detail, pointer=pointer, meta=meta)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "method_not_allowed", "Method not allowed.", f'Method "{method}" not allowed.')


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", "Unsupported media type.",
                    f'Unsupported media type "{content_type}" in request.')


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", "Payload too large.",
                    f"The request payload exceeds the maximum size of {limit} bytes.")


def throttled(retry_after: int) -> ApiError:
    unit = "second" if retry_after == 1 else "seconds"
    return ApiError(429, "throttled", "Request was throttled.",
                    f"Request was throttled. Expected available in {retry_after} {unit}.",
                    headers={"Retry-After": str(retry_after)})


def server_error() -> ApiError:
    return ApiError(500, "error", "A server error occurred.", "A server error occurred.")
