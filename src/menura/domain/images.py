"""Images: uploads from a URL (allowed hosts only), a data URI or a file; JPEG, PNG and GIF up to
5 MB; names unique per account (a clashing name gets a " (n)" suffix); `hidden` hides an image
from the asset library without breaking messages that use it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from menura.domain import remote_fetch
from menura.jsonapi import errors
from menura.store import images as store
from menura.store.db import Database
from menura.store.image_storage import ImageStorage

MAX_BYTES = 5 * 1024 * 1024
MAX_NAME = 255
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif"}
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?);base64,(?P<data>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Upload:
    content: bytes
    name: str | None
    hidden: bool


def sniff_format(content: bytes) -> str | None:
    """The image format from its first bytes (never from a name or a header)."""
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def decode_data_uri(uri: str, pointer: str) -> bytes:
    match = _DATA_URI.match(uri.strip())
    if match is None:
        raise errors.invalid("The data URI must be base64 encoded (data:image/...;base64,...).", pointer=pointer)
    try:
        return base64.b64decode(re.sub(r"\s+", "", match.group("data")), validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid("The data URI is not valid base64.", pointer=pointer) from None


def name_from_url(url: str) -> str | None:
    path = unquote(urlsplit(url).path)
    name = PurePosixPath(path).name
    return name or None


def fetch_image(url: str, allowed_hosts: str, pointer: str) -> bytes:
    try:
        return remote_fetch.fetch(url, remote_fetch.allowed_hosts(allowed_hosts), max_bytes=MAX_BYTES,
                                  timeout=10.0).content
    except remote_fetch.FetchError as exc:
        raise errors.invalid(str(exc), pointer=pointer) from None


def _check_content(content: bytes, pointer: str) -> str:
    if not content:
        raise errors.invalid("The image is empty.", pointer=pointer)
    if len(content) > MAX_BYTES:
        raise errors.invalid("The image is larger than the maximum of 5MB.", pointer=pointer)
    image_format = sniff_format(content)
    if image_format is None:
        raise errors.invalid("Unsupported image format; supported formats: jpeg, png, gif.", pointer=pointer)
    return image_format


def _check_name(name: Any, pointer: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid("'name' must be a non-empty string.", pointer=pointer)
    name = name.strip()
    if len(name) > MAX_NAME - 8:  # room for a " (nnn)" suffix
        raise errors.invalid(f"'name' must be at most {MAX_NAME - 8} characters.", pointer=pointer)
    return name


def unique_name(conn: Connection, account_id: str, wanted: str, *, except_id: int | None = None) -> str:
    """`wanted`, or `stem (n).ext` with the smallest free n."""
    if not store.name_taken(conn, account_id, wanted, except_id=except_id):
        return wanted
    path = PurePosixPath(wanted)
    suffix = path.suffix if 0 < len(path.suffix) <= 5 else ""
    stem = wanted[: len(wanted) - len(suffix)] if suffix else wanted
    existing = store.names_like(conn, account_id, stem)
    n = 1
    while f"{stem} ({n}){suffix}" in existing:
        n += 1
    return f"{stem} ({n}){suffix}"


def create_image(db: Database, storage: ImageStorage, account_id: str, now: datetime, upload: Upload, *,
                 default_name: str | None, pointer: str) -> Row[Any]:
    image_format = _check_content(upload.content, pointer)
    digest = hashlib.sha256(upload.content).hexdigest()
    wanted = _check_name(upload.name, "/data/attributes/name") if upload.name is not None else (
        default_name or f"image.{'jpg' if image_format == 'jpeg' else image_format}")[:MAX_NAME - 8]
    # Content-addressed: the same bytes uploaded twice share one stored file.
    key = f"{account_id}/{digest[:40]}.{'jpg' if image_format == 'jpeg' else image_format}"
    storage.put(key, upload.content, CONTENT_TYPES[image_format])
    for _attempt in range(5):
        try:
            with db.write() as conn:
                name = unique_name(conn, account_id, wanted)
                image_id = store.insert_image(conn, {
                    "account_id": account_id, "name": name, "format": image_format, "size": len(upload.content),
                    "hidden": upload.hidden, "storage_key": key, "sha256": digest, "created": now,
                    "updated_at": now})
                row = store.get_image(conn, account_id, image_id)
                assert row is not None
                return row
        except IntegrityError:
            continue  # another upload took the same name meanwhile: pick the next suffix
    raise errors.conflict("conflict", "Could not find a free name for the image; try again.", pointer="/data")


def get_image(conn: Connection, account_id: str, image_id: str) -> Row[Any]:
    row = store.get_image(conn, account_id, int(image_id)) if image_id.isdigit() and len(image_id) < 19 else None
    if row is None:
        raise errors.not_found(f"An image with id '{image_id}' does not exist.")
    return row


def update_image(db: Database, account_id: str, image_id: str, now: datetime, *, name: Any = None,
                 hidden: Any = None) -> Row[Any]:
    if hidden is not None and not isinstance(hidden, bool):
        raise errors.invalid("'hidden' must be a boolean.", pointer="/data/attributes/hidden")
    wanted = _check_name(name, "/data/attributes/name") if name is not None else None
    with db.write() as conn:
        row = get_image(conn, account_id, image_id)
        values: dict[str, Any] = {}
        if wanted is not None and wanted != row.name:
            values["name"] = unique_name(conn, account_id, wanted, except_id=row.id)
        if hidden is not None:
            values["hidden"] = hidden
        if values:
            values["updated_at"] = now
            store.update_image(conn, account_id, row.id, values)
        return get_image(conn, account_id, image_id)


def image_bytes(conn: Connection, storage: ImageStorage, account_id: str, file_name: str) -> tuple[bytes, str] | None:
    """The bytes and content type behind a public image URL, if such an image exists."""
    key = f"{account_id}/{file_name}"
    row = store.find_by_storage_key(conn, account_id, key)
    if row is None:
        return None
    content = storage.get(key)
    if content is None:
        return None
    return content, CONTENT_TYPES.get(row.format, "application/octet-stream")
