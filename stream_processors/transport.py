"""A Faust Kafka transport whose consumers read with ``read_committed``.

faust-streaming reads ``read_committed`` only in its own exactly-once mode,
which its users report as fragile on rebalance. The table's correctness comes
from the idempotent state machine instead; what it still needs is never to
see a result from a worker transaction that was aborted. This transport keeps
at-least-once processing and only changes the consumers' isolation level.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["SCHEME", "ReadCommittedTransport"]

SCHEME = "asyncarch"


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Creates the group consumer with ``isolation_level=read_committed``."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its fetcher on start(), which has not run yet.
        consumer._isolation_level = "read_committed"
        return consumer


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    """The aiokafka driver's consumer, on the read-committed thread."""

    def _new_consumer_thread(self) -> ReadCommittedConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    """Selected by broker URLs such as ``asyncarch://127.0.0.1:9092``."""

    Consumer = ReadCommittedConsumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:ReadCommittedTransport"
