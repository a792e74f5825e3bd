"""A Faust Kafka transport whose consumers read with ``read_committed``.

faust-streaming reads ``read_committed`` only in its own exactly-once mode,
which its users report as fragile on rebalance. The table's correctness comes
from the idempotent state machine instead; what it still needs is never to
see a result from a worker transaction that was aborted. This transport keeps
at-least-once processing, changes the consumers' isolation level, and corrects
how Faust commits offsets across the transaction markers this brings.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream_processors.config import ProcessorSettings

__all__ = ["SCHEME", "ReadCommittedTransport"]

SCHEME = "asyncarch"


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Creates the group consumer with ``isolation_level=read_committed`` and the
    fetch wait of ``PROCESSOR_FETCH_MAX_WAIT_MS`` (Faust fixes it at 1,500 ms)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands these to its fetcher on start(), which has not run yet.
        consumer._isolation_level = "read_committed"
        consumer._fetch_max_wait_ms = ProcessorSettings().fetch_max_wait_ms
        return consumer


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    """The aiokafka driver's consumer, on the read-committed thread, committing
    past transaction markers at once.

    Every worker transaction leaves a commit (or abort) marker in each partition
    it wrote, and an aborted one also leaves records that ``read_committed``
    never delivers: offsets with no message. Faust commits the longest run of
    consecutive offsets that are acked, and bridges such holes with "gaps": when
    message ``n`` arrives after message ``r`` it records the offsets from
    ``r + 1`` up to *and including* ``n``. On the next commit the gap is merged
    into the acked offsets, and ``n`` is then there twice (once from the gap,
    once from its own ack). Faust finds runs with ``consecutive_numbers``, which
    a repeated number ends, so each commit (every ``broker_commit_interval``)
    got only as far as the next marker. The committed offsets on the results
    topic crawled one transaction per commit behind the end, and a restarted
    processor re-read nearly the whole topic (issue #9).

    Here a gap stops before the delivered message, so nothing is in the acked
    list twice, and the list is cleared of repeats and of offsets below the
    committed one before each commit. At-least-once holds: a delivered message's
    offset enters the list only through its own ack, and a gap only ever holds
    offsets that ``read_committed`` skipped, so no commit passes a message that
    is not acked. A committed offset that points at a marker (the first offset
    after a transaction's last record) delivers nothing when read again; Faust
    accepts such a one-offset head gap, and it is the usual resting point of a
    partition whose last write was a transaction.
    """

    def _new_consumer_thread(self) -> ReadCommittedConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust passes the delivered message's offset as ``offset_to``; it is
        # acked by the stream, never by the gap.
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_offset(self, tp: TP) -> int | None:
        self._drop_repeated_acks(tp)
        return super()._new_offset(tp)

    def _drop_repeated_acks(self, tp: TP) -> None:
        """Keep each acked offset once, and none the committed offset already covers."""
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        kept = sorted({offset for offset in acked if committed is None or offset >= committed})
        if len(kept) != len(acked):
            self._acked_index[tp].intersection_update(kept)
        acked[:] = kept


class ReadCommittedTransport(faust_aiokafka.Transport):
    """Selected by broker URLs such as ``asyncarch://127.0.0.1:9092``."""

    Consumer = ReadCommittedConsumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:ReadCommittedTransport"
