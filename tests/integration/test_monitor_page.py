"""The live monitor in headless Chromium: a burst's lag shows while no worker runs, then
drains to zero once one starts; with Kafka unreachable the page shows the 503."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asyncarch.config import KafkaSettings
from asyncarch.supervisor import ServiceGroup
from tests.helpers import eventually, submit_similarity_tasks
from tests.integration.chromium import DevTools, launch_browser
from tests.stack import free_port, launch_pipeline

pytestmark = pytest.mark.integration

BURST = 20
WORKERS_LAG = "Number(document.querySelector('[data-lag-total=\"workers\"]')?.textContent ?? NaN)"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with launch_browser(tmp_path) as devtools:
        devtools.call(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield devtools


def test_lag_shows_while_a_burst_waits_and_drains_to_zero(
    kafka: KafkaSettings, browser: DevTools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (log_dir := tmp_path / "pipeline").mkdir()
    pipeline = launch_pipeline(kafka, log_dir, names=("processor", "api"))
    try:
        browser.call("Page.navigate", url=f"{pipeline.base_url}/monitor")
        browser.wait_for(f"{WORKERS_LAG} === 0")
        with pipeline.client() as client:
            submit_similarity_tasks(client, BURST, "burst")
        browser.wait_for(f"{WORKERS_LAG} === {BURST}")
        pending = browser.screenshot(tmp_path / "monitor-burst-pending.png")

        pipeline.services.start("worker")
        browser.wait_for(f"{WORKERS_LAG} === 0", timeout_s=180)
        browser.wait_for(
            "document.querySelector('[data-lag-total=\"processor\"]')?.textContent === '0'"
        )
        done = browser.screenshot(tmp_path / "monitor-burst-drained.png")
        with capsys.disabled():
            print(f"\nscreenshots of the monitor: {pending} (burst pending), {done} (drained)")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pipeline.logs()}") from exc
    finally:
        pipeline.services.stop()
    assert pending.stat().st_size > 5_000 and done.stat().st_size > 5_000


@pytest.fixture
def api_without_kafka(tmp_path: Path) -> Iterator[str]:
    """The API alone, pointed at a port where no broker listens."""
    port = free_port()
    services = ServiceGroup(
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "API_PORT": str(port),
            "API_PROCESSOR_URL": f"http://127.0.0.1:{free_port()}",
        },
        log_dir=tmp_path,
    )
    services.start("api")
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: httpx.get(f"{url}/healthz", timeout=1),
            60,
            "the API answering /healthz",
            ignoring=(httpx.HTTPError,),
        )
        yield url
    finally:
        services.stop()


def test_unreachable_kafka_is_a_quick_503_problem_that_the_page_shows(
    api_without_kafka: str, browser: DevTools
) -> None:
    for _ in range(2):
        started = time.monotonic()
        response = httpx.get(f"{api_without_kafka}/monitor/data", timeout=30)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Kafka unavailable"
        assert response.headers["Retry-After"]
        assert elapsed < 3.0, elapsed

    browser.call("Page.navigate", url=f"{api_without_kafka}/monitor")
    error_text = "document.getElementById('error')?.textContent"
    shown = eventually(lambda: browser.evaluate(error_text), 15, "the page showing an error")
    assert shown.startswith("503 Kafka unavailable")
    assert browser.evaluate("document.getElementById('monitor').classList.contains('stale')")
