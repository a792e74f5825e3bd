"""Stream processor settings; env prefix ``PROCESSOR_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncarch.local_kafka import cache_root

__all__ = ["ProcessorSettings"]


class ProcessorSettings(BaseSettings):
    """How the Faust app stores its table and serves its views."""

    model_config = SettingsConfigDict(env_prefix="PROCESSOR_", frozen=True)

    app_id: str = "asyncarch-processor"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    store: str = "memory://"
    data_dir: Path = Field(default_factory=lambda: cache_root() / "processor")
    read_your_writes_timeout_s: float = Field(default=5.0, ge=0)
