"""What the API believes about the brokers, from librdkafka's reports; and the
settings that decide what the API refuses by default."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from producer_api.broker_connectivity import BrokerConnectivity
from producer_api.core.config import ApiSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_report_of_all_brokers_down_is_suspect_until_a_probe_decides() -> None:
    clock = FakeClock()
    link = BrokerConnectivity(clock)
    assert not (link.down or link.suspect or link.needs_probe) and link.down_for_s() == 0.0
    link.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert link.suspect and link.needs_probe and not link.down
    clock.now += 2.5
    link.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))  # repeated: still since the first
    link.on_probe_failed()
    assert link.down and link.needs_probe and not link.suspect
    assert link.down_for_s() == pytest.approx(2.5)
    link.on_reachable()
    assert not (link.down or link.suspect or link.needs_probe) and link.down_for_s() == 0.0


def test_an_idle_disconnect_clears_when_the_probe_answers() -> None:
    """Brokers close idle connections and librdkafka reports all brokers down."""
    link = BrokerConnectivity()
    link.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    link.on_reachable()
    link.on_probe_failed()  # a late failure of an older probe proves nothing now
    assert not link.down and not link.needs_probe


@pytest.mark.parametrize(
    "code", [KafkaError._TRANSPORT, KafkaError._MSG_TIMED_OUT, KafkaError._RESOLVE]
)
def test_other_errors_do_not_mark_the_connection_down(code: int) -> None:
    link = BrokerConnectivity()
    link.on_error(KafkaError(code))
    link.on_probe_failed()
    assert not (link.down or link.needs_probe)


def test_rate_limit_and_access_log_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ApiSettings()
    assert settings.rate_limit_per_s is None
    assert settings.access_log is False
    monkeypatch.setenv("API_RATE_LIMIT_PER_S", "0")
    assert not ApiSettings().rate_limit_per_s
    monkeypatch.setenv("API_RATE_LIMIT_PER_S", "20")
    monkeypatch.setenv("API_ACCESS_LOG", "true")
    assert (ApiSettings().rate_limit_per_s, ApiSettings().access_log) == (20.0, True)
