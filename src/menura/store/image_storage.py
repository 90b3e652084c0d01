"""Where image bytes live: a directory under the data dir (default), or an S3-compatible bucket.

Configured by environment (kept apart from the main settings on purpose):
    MENURA_IMAGE_STORAGE          local (default) | s3
    MENURA_IMAGE_S3_BUCKET        bucket name
    MENURA_IMAGE_S3_ENDPOINT_URL  e.g. a MinIO or R2 endpoint; empty for AWS
    MENURA_IMAGE_S3_REGION        region name
    MENURA_IMAGE_S3_PREFIX        key prefix inside the bucket
    MENURA_IMAGE_PUBLIC_URL       base URL images are served from (CDN / public bucket); empty:
                                  local images are served by Menura at /i/<account>/<file>,
                                  S3 images from the endpoint's path-style URL.
Credentials for S3 come from boto3's usual sources (AWS_ACCESS_KEY_ID, profiles, roles)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_.-]{1,128}$")


class ImageStorageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MENURA_IMAGE_", extra="ignore")

    storage: str = "local"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_prefix: str = ""
    public_url: str = ""


def valid_key(key: str) -> bool:
    """Keys are `<account>/<file>`: nothing that could climb out of the storage root."""
    return bool(_KEY.match(key)) and ".." not in key


class ImageStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str, base_url: str) -> str: ...


class LocalImageStorage:
    def __init__(self, root: Path, public_url: str = "") -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"invalid image key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str, base_url: str) -> str:
        if self.public_url:
            return f"{self.public_url}/{key}"
        return f"{base_url.rstrip('/')}/i/{key}"


class S3ImageStorage:
    def __init__(self, settings: ImageStorageSettings, client: Any = None) -> None:
        if not settings.s3_bucket:
            raise ValueError("MENURA_IMAGE_S3_BUCKET is required for S3 image storage")
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix.strip("/")
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None,
                                  region_name=settings.s3_region or None)
        self.client = client

    def _object(self, key: str) -> str:
        if not valid_key(key):
            raise ValueError(f"invalid image key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data, ContentType=content_type,
                               CacheControl="public, max-age=31536000, immutable")

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(key))
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(response["Body"].read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def url(self, key: str, base_url: str) -> str:
        if self.settings.public_url:
            return f"{self.settings.public_url.rstrip('/')}/{self._object(key)}"
        endpoint = self.settings.s3_endpoint_url.rstrip("/")
        if endpoint:
            return f"{endpoint}/{self.bucket}/{self._object(key)}"
        region = self.settings.s3_region or "us-east-1"
        return f"https://{self.bucket}.s3.{region}.amazonaws.com/{self._object(key)}"


_storages: dict[str, ImageStorage] = {}


def image_storage(data_dir: Path) -> ImageStorage:
    """The configured storage (one per data dir and configuration, built once)."""
    settings = ImageStorageSettings()
    cache_key = f"{data_dir.resolve()}|{settings.model_dump_json()}"
    storage = _storages.get(cache_key)
    if storage is None:
        if settings.storage == "s3":
            storage = S3ImageStorage(settings)
        elif settings.storage == "local":
            storage = LocalImageStorage(data_dir / "images", settings.public_url)
        else:
            raise ValueError("MENURA_IMAGE_STORAGE must be local or s3")
        _storages[cache_key] = storage
    return storage
