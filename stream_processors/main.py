"""Entry point of ``asyncarch processor``: one Faust worker."""

from __future__ import annotations

import logging

from faust.worker import Worker

from asyncarch.kafka_admin import create_topics
from asyncarch.logs import configure_logging
from schemas.topics import TopicSpec

__all__ = ["main"]


class JsonLogWorker(Worker):
    """A Faust worker whose log records are JSON lines, like every other service's."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging("stream_processors")


def main() -> None:
    """Run the Faust app until SIGTERM/SIGINT."""
    from stream_processors.app import app, kafka_settings, processor_settings, topic_settings

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
    JsonLogWorker(app, loglevel="INFO").execute_from_commandline()
