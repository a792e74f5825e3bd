"""Publishes task requests to Kafka and confirms each write before answering.

A request is answered 202 only after the broker acknowledged its event. While
every broker is known to be down (see ``broker_connectivity``) a write is
refused at once with 503, and nothing is queued, so it can never be delivered
later; while an outage is only reported, a write waits for the probe's verdict
(half a second at most). A write already queued when the brokers go away waits for its delivery
report, bounded by ``message.timeout.ms`` (the publish timeout); the API's own
wait is one second longer, so librdkafka gives up first and a 503 means the
event was not acknowledged. One case remains: a broker that wrote the event but
whose acknowledgement was lost. The client was told 503 and retries; with an
``Idempotency-Key`` the retry finds the first task instead of making a second.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from asyncarch.clock import now_ms
from asyncarch.config import KafkaSettings
from producer_api.broker_connectivity import BrokerConnectivity
from producer_api.exceptions import BrokersDown, BrokerUnavailable, SchemaRegistryUnavailable
from schemas.codec import codec_for
from schemas.exceptions import SchemaRegistryError
from schemas.headers import event_headers, new_traceparent
from schemas.records import task_status_record
from schemas.states import CANCELLED
from schemas.topics import TopicSettings

__all__ = ["TaskPublisher"]

log = logging.getLogger(__name__)
# While the brokers are down, how often the delivery thread asks for metadata
# to learn that one is back (librdkafka does not report that by itself).
PROBE_INTERVAL_S = 0.5


class TaskPublisher:
    """An idempotent ``acks=all`` producer; ``publish`` resolves once the broker acked."""

    def __init__(self, kafka: KafkaSettings, topics: TopicSettings, timeout_s: float) -> None:
        self.topics = topics
        self.timeout_s = timeout_s
        self.connectivity = BrokerConnectivity()
        self._producer = Producer(
            kafka.producer(
                **{
                    "message.timeout.ms": int(timeout_s * 1000),
                    "client.id": "producer_api",
                    "error_cb": self.connectivity.on_error,
                    # Notice a broker that is back within a second or so.
                    "reconnect.backoff.max.ms": 1000,
                }
            )
        )
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    async def publish_request(self, request: dict[str, Any]) -> tuple[int, int]:
        """Write a TaskRequest; returns (partition, offset). Raises BrokerUnavailable."""
        return await self._publish(self.topics.requests, "TaskRequest", request)

    async def publish_cancellation(self, task_id: str) -> tuple[int, int]:
        """Write a CANCELLED TaskStatus to the cancellations topic."""
        event = task_status_record(task_id, CANCELLED, now_ms(), attempt=0)
        return await self._publish(self.topics.cancellations, "TaskStatus", event)

    def learn_schema_ids(self) -> None:
        """With a registry, learn now the ids of the events this API writes, so that a
        later registry outage does not refuse them. Best effort: while the registry
        is unavailable the first write of each asks it again (and is refused, 503)."""
        try:
            codec_for("TaskRequest").learn_schema_id(self.topics.requests)
            codec_for("TaskStatus").learn_schema_id(self.topics.cancellations)
        except SchemaRegistryError as exc:
            log.warning("schema registry unavailable at start", extra={"error": str(exc)})

    async def ensure_accepting(self) -> None:
        """Raise BrokersDown at once while every broker is known to be down, so that
        a caller refuses a write before doing any other work for it."""
        await self._brokers_verdict()
        if self.connectivity.down:
            raise BrokersDown(
                f"no Kafka broker reachable for {self.connectivity.down_for_s():.1f}s;"
                " nothing was accepted"
            )

    async def _publish(self, topic: str, event_type: str, event: dict[str, Any]) -> tuple[int, int]:
        await self.ensure_accepting()
        codec = codec_for(event_type)
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[Message] = loop.create_future()

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is None:
                self.connectivity.on_reachable()
            loop.call_soon_threadsafe(_settle, acked, error, message)

        task_id = event["task_id"]
        try:
            # With a registry, the first event of a subject registers its schema: from a
            # thread, as a registry that hangs would hold the event loop for its timeout.
            if codec.needs_registry(topic=topic):
                await asyncio.to_thread(codec.learn_schema_id, topic)
            value = codec.encode(event, topic)
        except SchemaRegistryError as exc:
            raise SchemaRegistryUnavailable(
                f"the schema registry is unavailable, nothing was accepted: {exc}"
            ) from exc
        try:
            self._producer.produce(
                topic,
                key=task_id.encode(),
                value=value,
                headers=event_headers(
                    codec.schema, task_id, "producer_api", new_traceparent(), codec.content_type
                ),
                on_delivery=on_delivery,
            )
        except (BufferError, KafkaException) as exc:
            raise BrokerUnavailable(f"could not queue the event for Kafka: {exc}") from exc
        try:
            message = await asyncio.wait_for(acked, self.timeout_s + 1)
        except TimeoutError as exc:
            raise BrokerUnavailable("Kafka did not acknowledge the event in time") from exc
        return message.partition() or 0, message.offset() or 0

    async def _brokers_verdict(self) -> None:
        """While the brokers are suspect, wait (a probe's time at most) for the verdict:
        an idle connection closed by the broker is cleared in milliseconds."""
        deadline = time.monotonic() + 2 * PROBE_INTERVAL_S
        while self.connectivity.suspect and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def broker_reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether a broker answers a metadata request now; False at once while all
        brokers are known to be down (the delivery thread probes them)."""
        return not self.connectivity.down and self._probe(timeout_s)

    def _probe(self, timeout_s: float) -> bool:
        try:
            reachable = bool(
                self._producer.list_topics(self.topics.requests, timeout=timeout_s).brokers
            )
        except KafkaException:
            return False
        if reachable:
            self.connectivity.on_reachable()
        return reachable

    def close(self) -> None:
        """Deliver what is queued, then stop the delivery thread."""
        self._producer.flush(self.timeout_s)
        self._closing.set()
        self._poller.join(timeout=2)

    def _poll(self) -> None:
        """Serve delivery reports and errors; once all brokers were reported down,
        probe them until one answers."""
        next_probe = 0.0
        while not self._closing.is_set():
            self._producer.poll(0.1)
            if self.connectivity.needs_probe and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_INTERVAL_S
                if not self._probe(timeout_s=PROBE_INTERVAL_S):
                    self.connectivity.on_probe_failed()


def _settle(future: asyncio.Future[Message], error: KafkaError | None, message: Message) -> None:
    if future.done():
        return
    if error is not None:
        log.warning("task not acknowledged by Kafka", extra={"error": str(error)})
        future.set_exception(BrokerUnavailable(f"Kafka did not accept the task: {error.str()}"))
    else:
        future.set_result(message)
