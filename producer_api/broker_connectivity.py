"""Whether the API can reach a Kafka broker now, as librdkafka reports it.

librdkafka says when it has lost every broker (``_ALL_BROKERS_DOWN`` to the
``error_cb``), but not when one is back. So the connection counts as down from
that report until a delivery succeeds or a metadata probe answers. While it is
down the API refuses writes at once (503 + Retry-After) instead of queueing
them behind a broker that is not there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError

__all__ = ["BrokerConnectivity"]

log = logging.getLogger(__name__)


class BrokerConnectivity:
    """The last word on the brokers: all down since some moment, or reachable.

    Written by the producer's delivery thread, read by the event loop; each is
    a single attribute write or read.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        """Whether every broker was reported down and none answered since."""
        return self._down_since is not None

    def down_for_s(self) -> float:
        """Seconds since every broker was reported down; 0 while reachable."""
        since = self._down_since
        return 0.0 if since is None else self._clock() - since

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's ``error_cb``: only 'all brokers down' changes anything."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self._down_since is None:
            self._down_since = self._clock()
            log.warning("all Kafka brokers are down; refusing new tasks")

    def on_reachable(self) -> None:
        """A delivery succeeded or a metadata probe answered."""
        if self._down_since is not None:
            log.warning(
                "Kafka brokers reachable again", extra={"down_for_s": round(self.down_for_s(), 3)}
            )
            self._down_since = None
