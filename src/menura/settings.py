"""One typed settings object; every option also comes from a `MENURA_<OPTION>` environment variable."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("menura-data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MENURA_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # off | klaviyo | scale:N  (N multiplies Klaviyo's limits)
    rate_limits: str = "klaviyo"
    # system | virtual
    clock: str = "system"
    # run due background work inside the API process (embedded mode)
    run_worker: bool = True
    # protects /menura/* endpoints; empty means "generated at first start and stored in data_dir"
    operator_token: str = ""
    # signs cursors and tracking links; empty means "generated once and stored in the database"
    secret_key: str = ""
    public_url: str = ""
    worker_poll_seconds: float = 0.5
    work_lease_seconds: float = 60.0
    work_modules: str = ""  # comma-separated extra modules whose import registers work handlers
    max_body_bytes: int = 5 * 1024 * 1024

    @field_validator("rate_limits")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        if value in ("off", "klaviyo") or re.fullmatch(r"scale:\d+(\.\d+)?", value):
            return value
        raise ValueError("rate_limits must be off, klaviyo or scale:N")

    @field_validator("clock")
    @classmethod
    def _check_clock(cls, value: str) -> str:
        if value not in ("system", "virtual"):
            raise ValueError("clock must be system or virtual")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'menura.db').resolve()}"

    @property
    def rate_limit_scale(self) -> float | None:
        """None when rate limits are off, else the factor applied to Klaviyo's limits."""
        if self.rate_limits == "off":
            return None
        if self.rate_limits == "klaviyo":
            return 1.0
        return float(self.rate_limits.split(":", 1)[1])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
