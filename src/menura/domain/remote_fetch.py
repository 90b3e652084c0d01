"""Fetching from other hosts (image imports, web feeds) — only from hosts the operator allows
(MENURA_FETCH_ALLOWED_HOSTS), without following redirects, within a size and time limit."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


class FetchError(Exception):
    """The URL may not be fetched, or fetching it failed; the message says why."""


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str
    status: int


def allowed_hosts(setting: str) -> list[str]:
    return [part.strip().lower() for part in setting.split(",") if part.strip()]


def host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def check_url(url: str, allowed: list[str]) -> str:
    """The URL's host if it may be fetched, else FetchError."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError(f"'{url}' is not a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"'{url}' is not an http(s) URL.")
    if not host_allowed(parts.hostname, allowed):
        raise FetchError(f"Fetching from host '{parts.hostname}' is not allowed on this server.")
    return parts.hostname


def fetch(url: str, allowed: list[str], *, method: str = "GET", max_bytes: int, timeout: float) -> Fetched:
    check_url(url, allowed)
    try:
        with httpx.Client(follow_redirects=False, timeout=timeout) as client, \
                client.stream(method.upper(), url, headers={"User-Agent": "Menura/1 (+web feeds, images)"}) as resp:
            if resp.is_redirect:
                raise FetchError(f"'{url}' answered with a redirect ({resp.status_code}); redirects are not followed.")
            if resp.status_code >= 400:
                raise FetchError(f"'{url}' answered {resp.status_code}.")
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"'{url}' is larger than {max_bytes} bytes.")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"'{url}' is larger than {max_bytes} bytes.")
                chunks.append(chunk)
            content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            return Fetched(b"".join(chunks), content_type, resp.status_code)
    except httpx.TimeoutException as exc:
        raise FetchError(f"'{url}' did not answer within {timeout:g} seconds.") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"'{url}' could not be fetched: {exc}") from exc
