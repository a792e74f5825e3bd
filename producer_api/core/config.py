"""API settings; env prefix ``API_``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings"]


class ApiSettings(BaseSettings):
    """Where the API listens, how long it waits for Kafka, and its input limits."""

    model_config = SettingsConfigDict(env_prefix="API_", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    processor_url: str = "http://127.0.0.1:6066"
    publish_timeout_s: float = Field(default=5.0, gt=0)
    query_timeout_s: float = Field(default=10.0, gt=0)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)

    @property
    def base_url(self) -> str:
        """The URL printed to users and used in links."""
        return self.public_url or f"http://{self.host}:{self.port}"
