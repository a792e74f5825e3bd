"""Cluster checks and idempotent topic creation."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from asyncarch.config import KafkaSettings
from asyncarch.exceptions import AsyncarchError
from schemas.topics import TopicSettings, TopicSpec

__all__ = ["BrokerUnavailable", "create_topics", "ensure_topics", "wait_for_broker"]

log = logging.getLogger(__name__)


class BrokerUnavailable(AsyncarchError):
    """The Kafka cluster did not answer in time."""


def wait_for_broker(kafka: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Block until the cluster answers a metadata request with at least one broker."""
    # Refused connections are expected while a broker starts: keep librdkafka quiet.
    admin = AdminClient(kafka.librdkafka(log_level=2))
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=2).brokers:
                return
        except KafkaException as exc:
            last_error = exc
        time.sleep(0.3)
    raise BrokerUnavailable(
        f"no Kafka broker answered at {kafka.bootstrap_servers} "
        f"within {timeout_s:.0f}s: {last_error}"
    )


def ensure_topics(
    kafka: KafkaSettings, topics: TopicSettings, timeout_s: float = 30.0
) -> list[str]:
    """Create every pipeline topic that does not exist yet; returns the names created."""
    return create_topics(kafka, topics.specs, topics.replication_factor, timeout_s)


def create_topics(
    kafka: KafkaSettings,
    specs: Iterable[TopicSpec],
    replication_factor: int,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet (idempotent); returns the names created."""
    admin = AdminClient(kafka.librdkafka())
    wanted = [NewTopic(s.name, s.partitions, replication_factor, config=s.config) for s in specs]
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    if created:
        log.info("created topics", extra={"topics": created})
    return created
