"""Stream processor settings; env prefix ``PROCESSOR_``."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asyncarch.config import PROCESSOR_GROUP_DEFAULT
from asyncarch.paths import cache_root

__all__ = ["DEV_WEBHOOK_SECRET", "ProcessorSettings"]

DAY_S = 24 * 3600.0
# Signs webhooks in local runs only: refused when PROCESSOR_ENVIRONMENT is not "local".
DEV_WEBHOOK_SECRET = "asyncarch-local-dev-webhook-secret"


class ProcessorSettings(BaseSettings):
    """How the Faust app stores its table, serves its views and expires finished tasks."""

    model_config = SettingsConfigDict(
        env_prefix="PROCESSOR_", frozen=True, env_file=".env", extra="ignore"
    )

    app_id: str = PROCESSOR_GROUP_DEFAULT
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # rocksdb:// keeps the tables on disk under data_dir, so a restarted worker
    # reads only the changelog written since its last write instead of all of it;
    # memory:// (tests, throwaway runs) replays the whole changelog at each start.
    store: str = "rocksdb://"
    # Memory of each RocksDB database (one per table and partition: 18 with the
    # defaults). Faust's own sizes are 3 write buffers of 64 MiB and a 2 GiB block
    # cache per database, so the processor grew with the table (330 MiB after 12,000
    # tasks in the bench, on its way to gigabytes for a week of tasks).
    rocksdb_write_buffer_mib: int = Field(default=4, ge=1)
    rocksdb_block_cache_mib: int = Field(default=8, ge=1)
    # Unfinished tasks whose decoded state stays in memory beside RocksDB (each is
    # read and rewritten at every event and query until it ends; a few KiB each).
    unfinished_states_in_memory: int = Field(default=4096, ge=0)
    data_dir: Path = Field(default_factory=lambda: cache_root() / "processor")
    read_your_writes_timeout_s: float = Field(default=5.0, ge=0)
    producer_linger_s: float = Field(default=0.01, ge=0)
    # Longest wait of the consumer's fetch for new data (Faust's own: 1,500 ms).
    # aiokafka keeps one fetch in flight to a broker, and partitions whose records
    # were still being applied are left out of it; once applied they wait for that
    # fetch to return. Under load, with 1,500 ms, a fifth of the tasks of a burst
    # waited ~1.5 s that way (p99 2.2 s against 1.1 s with 250 ms). Idle, each
    # fetch costs the broker one request per this interval.
    fetch_max_wait_ms: int = Field(default=250, ge=1, le=30_000)
    # How soon the group notices a crashed worker and hands its partitions on
    # (Faust's own default is 60 s; 6 s is the broker's group.min.session.timeout.ms).
    session_timeout_s: float = Field(default=6.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    # Static membership (KIP-345): a worker restarted with the same instance id
    # gets its partitions back at once, without waiting out the session of the
    # one that died. Default: unique per host and web port; "" turns it off.
    group_instance_id: str | None = None
    # Retention: a terminal task leaves the table this long after it finished.
    task_ttl_s: float = Field(default=7 * DAY_S, gt=0)
    expiry_interval_s: float = Field(default=60.0, gt=0)
    expiry_batch_max: int = Field(default=10_000, gt=0)
    # An expired id answers 410 Gone (not 404) for this long, for at most this many ids.
    expired_ids_retention_s: float = Field(default=7 * DAY_S, gt=0)
    expired_ids_max: int = Field(default=200_000, gt=0)
    # Webhooks (callback_url): see stream_processors/README.md.
    environment: str = "local"
    webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    webhook_retry_for_s: float = Field(default=3600.0, ge=0)
    webhook_backoff_initial_s: float = Field(default=1.0, gt=0)
    webhook_backoff_max_s: float = Field(default=300.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=32, gt=0)
    webhook_poll_interval_s: float = Field(default=0.2, gt=0)
    # CIDRs that callbacks may reach although they are not public (comma-separated).
    webhook_allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()

    def rocksdb_options(self) -> dict[str, int]:
        """Faust's RocksDB options for one database (ignored by other stores)."""
        mib = 1024 * 1024
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mib * mib,
            "max_write_buffer_number": 2,
            "block_cache_size": self.rocksdb_block_cache_mib * mib,
            "block_cache_compressed_size": self.rocksdb_block_cache_mib * mib,
        }

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_network(cidr, strict=False)) for cidr in value)

    @property
    def static_member_id(self) -> str | None:
        """The consumer's ``group.instance.id``, or None for dynamic membership."""
        if self.group_instance_id is None:
            return f"{self.app_id}-{socket.gethostname()}-{self.web_port}"
        return self.group_instance_id or None

    @model_validator(mode="after")
    def _real_secret_outside_local(self) -> ProcessorSettings:
        secret = self.webhook_secret.get_secret_value()
        if self.environment != "local" and secret == DEV_WEBHOOK_SECRET:
            raise ValueError(
                "PROCESSOR_WEBHOOK_SECRET must be set when PROCESSOR_ENVIRONMENT is not local"
            )
        if not secret:
            raise ValueError("PROCESSOR_WEBHOOK_SECRET must not be empty")
        if self.webhook_backoff_max_s < self.webhook_backoff_initial_s:
            raise ValueError("PROCESSOR_WEBHOOK_BACKOFF_MAX_S must be >= BACKOFF_INITIAL_S")
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError("PROCESSOR_HEARTBEAT_INTERVAL_S must be <= SESSION_TIMEOUT_S / 3")
        return self
