"""The processor's group consumer: read_committed, and a bounded fetch wait."""

from __future__ import annotations

import asyncio

import pytest

from stream_processors.config import ProcessorSettings


def _group_consumer_settings() -> tuple[str, int]:
    async def build() -> tuple[str, int]:
        from stream_processors.app import app

        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._isolation_level, consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()  # never started: only releases what it holds

    return asyncio.run(build())


def test_reads_committed_with_the_configured_fetch_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSOR_FETCH_MAX_WAIT_MS", "123")
    assert _group_consumer_settings() == ("read_committed", 123)


def test_the_default_fetch_wait_is_not_fausts_1500_ms() -> None:
    # Faust's 1,500 ms held partitions applied meanwhile for up to 1.5 s under load.
    assert ProcessorSettings().fetch_max_wait_ms == 250


def test_a_fetch_wait_of_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSOR_FETCH_MAX_WAIT_MS", "0")
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        ProcessorSettings()
