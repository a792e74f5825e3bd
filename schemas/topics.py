"""The one place that names the topics and says how each is configured."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TopicSettings", "TopicSpec"]

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name and the configuration it is created with."""

    name: str
    partitions: int
    config: dict[str, str]


class TopicSettings(BaseSettings):
    """Topic names and sizing; env prefix ``TOPIC_`` (e.g. ``TOPIC_PREFIX=staging``)."""

    model_config = SettingsConfigDict(
        env_prefix="TOPIC_", frozen=True, env_file=".env", extra="ignore"
    )

    prefix: str = "asyncarch"
    partitions: int = 6
    replication_factor: int = 1
    retention_ms: int = 7 * DAY_MS
    dead_letter_retention_ms: int = 30 * DAY_MS

    @property
    def requests(self) -> str:
        """Task requests from the API to the workers."""
        return f"{self.prefix}.tasks.requests"

    @property
    def status(self) -> str:
        """Lifecycle status events from the workers."""
        return f"{self.prefix}.tasks.status"

    @property
    def results(self) -> str:
        """Result events, written transactionally by the workers."""
        return f"{self.prefix}.tasks.results"

    @property
    def dead_letters(self) -> str:
        """Messages that could not be processed."""
        return f"{self.prefix}.tasks.dead-letters"

    @property
    def cancellations(self) -> str:
        """Cancel requests (TaskStatus CANCELLED), read by workers and the table."""
        return f"{self.prefix}.tasks.cancellations"

    @property
    def task_state(self) -> str:
        """Public compacted topic: the latest state of every task."""
        return f"{self.prefix}.tasks.state"

    @property
    def transactional(self) -> frozenset[str]:
        """Topics the workers write in transactions: each ends in a commit marker."""
        return frozenset((self.status, self.results))

    @cached_property
    def specs(self) -> tuple[TopicSpec, ...]:
        """Every topic the pipeline needs, with its configuration."""
        timed = {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}
        return (
            TopicSpec(self.requests, self.partitions, timed),
            TopicSpec(self.status, self.partitions, timed),
            TopicSpec(self.results, self.partitions, timed),
            TopicSpec(
                self.dead_letters,
                self.partitions,
                {"cleanup.policy": "delete", "retention.ms": str(self.dead_letter_retention_ms)},
            ),
            TopicSpec(
                self.cancellations, self.partitions, {**timed, "cleanup.policy": "compact,delete"}
            ),
            TopicSpec(self.task_state, self.partitions, {"cleanup.policy": "compact"}),
        )
