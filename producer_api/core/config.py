"""API settings; env prefix ``API_``."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncarch.config import (
    PROCESSOR_GROUP_DEFAULT,
    PROCESSOR_GROUP_VARIABLE,
    WORKER_GROUP_DEFAULT,
    WORKER_GROUP_VARIABLE,
)
from producer_api.core.api_keys import parse_key_hashes

__all__ = ["ApiSettings"]


class ApiSettings(BaseSettings):
    """Where the API listens, how long it waits for Kafka, and its input limits.

    A request body must arrive whole within ``body_read_timeout_s`` (408 after),
    so a slow-loris upload cannot hold a connection and its buffers open.

    The per-caller rate limit is off unless ``rate_limit_per_s`` is set (0 or
    unset = off): the pipeline's own backpressure (``max_waiting_tasks``) is what
    protects the workers, and a default quota would throttle below their capacity.

    Backpressure and the monitor follow the workers' group and the Faust app's,
    read from the variables those services read (``WORKER_GROUP_ID``,
    ``PROCESSOR_APP_ID``): one variable per fact. The monitor shows
    every tenant's dead letters, so with auth on only ``monitor_tenants`` (comma
    separated) may read it.
    """

    model_config = SettingsConfigDict(
        env_prefix="API_", frozen=True, env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    processor_url: str = "http://127.0.0.1:6066"
    publish_timeout_s: float = Field(default=5.0, gt=0)
    query_timeout_s: float = Field(default=10.0, gt=0)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    body_read_timeout_s: float = Field(default=60.0, gt=0)
    auth_enabled: bool = False
    keys: SecretStr = SecretStr("")
    rate_limit_per_s: float | None = Field(default=None, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    worker_group_id: str = Field(default=WORKER_GROUP_DEFAULT, alias=WORKER_GROUP_VARIABLE)
    max_waiting_tasks: int = Field(default=10_000, ge=1)
    lag_check_interval_s: float = Field(default=2.0, gt=0)
    processor_group_id: str = Field(default=PROCESSOR_GROUP_DEFAULT, alias=PROCESSOR_GROUP_VARIABLE)
    monitor_tenants: str = ""
    access_log: bool = False
    ssl_certfile: str | None = None  # HTTPS: PEM certificate (chain); producer_api/tls.py
    ssl_keyfile: str | None = None  # HTTPS: its unencrypted PEM private key

    @model_validator(mode="after")
    def _keys_when_auth(self) -> ApiSettings:
        if self.auth_enabled and not self.key_hashes:
            raise ValueError("API_AUTH_ENABLED needs API_KEYS (tenant:<sha256 of key>,...)")
        return self

    @cached_property
    def key_hashes(self) -> dict[str, str]:
        """Configured key hashes → tenant."""
        return parse_key_hashes(self.keys.get_secret_value())

    @property
    def monitor_tenant_set(self) -> frozenset[str]:
        """Tenants whose keys may open the monitor when auth is on."""
        return frozenset(filter(None, (t.strip() for t in self.monitor_tenants.split(","))))

    @property
    def base_url(self) -> str:
        """The URL printed to users and used in links."""
        scheme = "https" if self.ssl_certfile else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"
