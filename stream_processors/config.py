"""Stream processor settings; env prefix ``PROCESSOR_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncarch.local_kafka import cache_root

__all__ = ["ProcessorSettings"]

DAY_S = 24 * 3600.0


class ProcessorSettings(BaseSettings):
    """How the Faust app stores its table, serves its views and expires finished tasks."""

    model_config = SettingsConfigDict(env_prefix="PROCESSOR_", frozen=True)

    app_id: str = "asyncarch-processor"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    store: str = "memory://"
    data_dir: Path = Field(default_factory=lambda: cache_root() / "processor")
    read_your_writes_timeout_s: float = Field(default=5.0, ge=0)
    # How soon the group notices a crashed worker and hands its partitions on
    # (Faust's own default is 60 s, which a restarted worker also waits out).
    session_timeout_s: float = Field(default=10.0, gt=0)
    # Retention: a terminal task leaves the table this long after it finished.
    task_ttl_s: float = Field(default=7 * DAY_S, gt=0)
    expiry_interval_s: float = Field(default=60.0, gt=0)
    expiry_batch_max: int = Field(default=10_000, gt=0)
    # An expired id answers 410 Gone (not 404) for this long, for at most this many ids.
    expired_ids_retention_s: float = Field(default=7 * DAY_S, gt=0)
    expired_ids_max: int = Field(default=200_000, gt=0)
