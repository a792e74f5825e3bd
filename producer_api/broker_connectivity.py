"""Whether the API can reach a Kafka broker now, as librdkafka reports it.

librdkafka says when it has lost every broker (``_ALL_BROKERS_DOWN`` to the
``error_cb``), but not when one is back, and it says the same when a broker
merely closed an idle connection (``connections.max.idle.ms``, 10 minutes by
default), after which it reconnects at once. So a report only makes the
brokers *suspect*: a metadata probe decides. If it fails they are *down* until
a probe answers or a delivery succeeds; while they are down the API refuses
writes at once (503 + Retry-After) instead of queueing them behind a broker
that is not there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError

__all__ = ["BrokerConnectivity"]

log = logging.getLogger(__name__)


class BrokerConnectivity:
    """The last word on the brokers: reachable, suspect (reported down, not yet
    probed) or down (a probe failed after the report).

    Written by the producer's delivery thread, read by the event loop; each is
    a single attribute write or read.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reported_since: float | None = None
        self._confirmed = False

    @property
    def down(self) -> bool:
        """Every broker was reported down and a probe since could not reach one."""
        return self._reported_since is not None and self._confirmed

    @property
    def suspect(self) -> bool:
        """Every broker was reported down; no probe has answered either way yet."""
        return self._reported_since is not None and not self._confirmed

    @property
    def needs_probe(self) -> bool:
        """Whether the delivery thread should probe the brokers."""
        return self._reported_since is not None

    def down_for_s(self) -> float:
        """Seconds since every broker was reported down; 0 while reachable."""
        since = self._reported_since
        return 0.0 if since is None else self._clock() - since

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's ``error_cb``: only 'all brokers down' changes anything."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self._reported_since is None:
            self._reported_since = self._clock()

    def on_probe_failed(self) -> None:
        """A metadata probe reached no broker: a reported outage is real."""
        if self._reported_since is not None and not self._confirmed:
            self._confirmed = True
            log.warning("all Kafka brokers are down; refusing new tasks")

    def on_reachable(self) -> None:
        """A delivery succeeded or a metadata probe answered."""
        if self._confirmed:
            log.warning(
                "Kafka brokers reachable again", extra={"down_for_s": round(self.down_for_s(), 3)}
            )
        self._reported_since, self._confirmed = None, False
