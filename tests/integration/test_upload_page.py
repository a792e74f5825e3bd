"""The seed's upload page in headless Chromium: fill the form, submit, watch the task succeed.

Chromium is Debian's ``chromium``, driven as ``tests/integration/chromium.py`` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncarch.config import KafkaSettings
from producer_api.security import hash_api_key
from tests.helpers import eventually
from tests.integration.chromium import DevTools, launch_browser
from tests.stack import Pipeline, launch_pipeline

pytestmark = pytest.mark.integration

SEED = "/activedocuments/nexans"
LIVE_STATES = {"PENDING", "RUNNING", "RETRYING", "SUCCESS"}
API_KEY = "page-tenant-secret-key"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with launch_browser(tmp_path) as devtools:
        yield devtools


@pytest.fixture(scope="module")
def secured(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """API keys on, and no worker: a task the page submits stays PENDING."""
    pipeline = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("secured-page"),
        names=("processor", "api"),
        API_AUTH_ENABLED="true",
        API_KEYS=f"page-tenant:{hash_api_key(API_KEY)}",
    )
    yield pipeline
    pipeline.services.stop()


def open_upload_page(browser: DevTools, pipeline: Pipeline) -> None:
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=1000,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.call("Page.navigate", url=f"{pipeline.base_url}{SEED}/upload/")
    browser.wait_for("document.readyState === 'complete' && !!document.getElementById('submit')")


def test_form_submit_shows_the_task_id_live_status_and_result(
    pipeline: Pipeline, browser: DevTools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_upload_page(browser, pipeline)
    # Record every status the page shows, to see it follow the task live.
    browser.evaluate(
        "window.seenStates = []; new MutationObserver(() => "
        "window.seenStates.push(document.getElementById('status').textContent))"
        ".observe(document.getElementById('status'), {childList: true, subtree: true})"
    )
    browser.type_into("item_a", "TV")
    browser.type_into("item_b", "Samsung")
    browser.click("submit")

    browser.wait_for("document.getElementById('status').textContent === 'SUCCESS'", 90)
    browser.wait_for("document.getElementById('summary').textContent !== ''")
    shot = browser.screenshot(tmp_path / "upload-page-success.png")
    with capsys.disabled():
        print(f"\nscreenshot of the upload page: {shot}")

    task_id = browser.evaluate("document.getElementById('task-id').textContent")
    summary = browser.evaluate("document.getElementById('summary').textContent")
    seen = browser.evaluate("window.seenStates")
    with pipeline.client() as client:
        result = client.get(f"/v1/tasks/{task_id}/result").json()
    assert result["status"] == "SUCCESS"
    assert result["kind"] == "similarity"
    assert summary == f"Similarity: {result['output']['similarity']:.4f}"
    assert seen[-1] == "SUCCESS" and set(seen) <= LIVE_STATES, seen
    assert shot.stat().st_size > 5_000


def test_an_empty_form_shows_the_problem(pipeline: Pipeline, browser: DevTools) -> None:
    open_upload_page(browser, pipeline)
    browser.click("submit")
    error_text = "document.getElementById('error').textContent"
    error = eventually(lambda: browser.evaluate(error_text), 15, "an error shown", 0.1)
    assert error.startswith("422 Invalid request")
    assert "item_a" in error and "item_b" in error
    assert browser.evaluate("document.getElementById('progress').hidden") is True


def test_with_api_keys_on_the_page_sends_the_key_it_is_given(
    secured: Pipeline, browser: DevTools
) -> None:
    open_upload_page(browser, secured)
    browser.type_into("item_a", "TV")
    browser.type_into("item_b", "Samsung")
    browser.click("submit")
    browser.wait_for("document.getElementById('error').textContent !== ''", 15)
    assert browser.evaluate("document.getElementById('error').textContent").startswith(
        "401 Unauthorized"
    )

    browser.type_into("api_key", API_KEY)
    browser.click("submit")
    browser.wait_for("document.getElementById('status').textContent === 'PENDING'", 30)
    task_id = browser.evaluate("document.getElementById('task-id').textContent")
    with secured.client() as client:
        anonymous = client.get(f"{SEED}/task_status/{task_id}")
        keyed = client.get(f"{SEED}/task_status/{task_id}", headers={"X-API-Key": API_KEY})
    assert anonymous.status_code == 401
    assert (keyed.status_code, keyed.text) == (200, "Status of the Task PENDING")
