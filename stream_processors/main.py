"""Entry point of ``asyncarch processor``: one Faust worker."""

from __future__ import annotations

import logging
import time

from faust.worker import Worker

from asyncarch.kafka_admin import create_topics
from asyncarch.logs import configure_logging
from schemas.topics import TopicSpec

__all__ = ["RepeatedKafkaErrors", "main"]


class RepeatedKafkaErrors(logging.Filter):
    """Lets one of each aiokafka message through per ``every_s``, with a count of the rest.

    While the broker is down aiokafka retries every 100 ms and logs each failed
    connection: tens of lines a second, for as long as the outage lasts.
    """

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key, now = (record.name, record.msg), time.monotonic()
        last, suppressed = self._last.get(key, (float("-inf"), 0))
        if now - last < self.every_s:
            self._last[key] = (last, suppressed + 1)
            return False
        self._last[key] = (now, 0)
        if suppressed:
            record.suppressed_since_last = suppressed
        return True


class ServiceLogWorker(Worker):
    """A Faust worker that logs through ``asyncarch.logs``, like every other service."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging("stream_processors")
        for handler in logging.getLogger().handlers:
            handler.addFilter(RepeatedKafkaErrors())


def main() -> None:
    """Run the Faust app until SIGTERM/SIGINT."""
    from stream_processors import agents, views  # noqa: F401  (registers them on the app)
    from stream_processors.app import app, kafka_settings, processor_settings, topic_settings
    from stream_processors.delivery import dispatch  # noqa: F401  (the delivery timer)

    processor_settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Faust creates changelog topics itself but can check their partitions
    # before its metadata has them, and then crashes the agent
    # (PartitionsMismatch); creating them first avoids that race.
    changelogs = [
        TopicSpec(
            table.changelog_topic.get_topic_name(),
            topic_settings.partitions,
            {"cleanup.policy": "compact"},
        )
        for table in app.tables.values()
    ]
    create_topics(kafka_settings, changelogs, topic_settings.replication_factor)
    ServiceLogWorker(app, loglevel="INFO").execute_from_commandline()
