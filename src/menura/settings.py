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
    # hosts image imports and web feeds may fetch from: comma-separated names, "*.example.com", or "*"
    fetch_allowed_hosts: str = ""
    # Delivery. No SMTP relay configured: email is captured in the outbox (database), not sent.
    # smtp://user:pass@host:587?starttls=true&pool=4&rate=gmail.com:20,*:100  or  smtps://...:465
    smtp_url: str = ""
    # twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001111 ; empty: SMS captured in the outbox
    sms_url: str = ""
    # What one SMS credit costs you (campaign reports' text_message_spend and ROI); 0: spend is 0
    sms_credit_price: float = 0.0
    # DKIM signing of outgoing email (all three needed; the key file is PEM RSA)
    dkim_selector: str = ""
    dkim_private_key_path: str = ""
    dkim_domain: str = ""
    # Domain of the VERP bounce address (bounces+TOKEN@domain); empty: the From address's domain
    bounce_domain: str = ""
    # First retry delay of a deferred delivery (relay down, 4xx); doubles per attempt up to 15 minutes
    delivery_retry_seconds: float = 30.0
    # Recipients per campaign send batch (one render + hand-over + commit); the in-flight batch is
    # what a killed worker may send twice
    campaign_batch_size: int = 250
    # Work items that deliver one campaign in parallel (run as many worker processes to use them)
    campaign_send_parallelism: int = 1

    @field_validator("rate_limits")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        if value in ("off", "klaviyo") or re.fullmatch(r"scale:\d+(\.\d+)?", value):
            return value
        raise ValueError("rate_limits must be off, klaviyo or scale:N")

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str) -> str:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("smtp_url must start with smtp:// or smtps://")
        return value

    @field_validator("sms_url")
    @classmethod
    def _check_sms_url(cls, value: str) -> str:
        if value and not value.startswith("twilio://"):
            raise ValueError("sms_url must look like twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+1...")
        return value

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
