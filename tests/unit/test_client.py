"""The client's pure core: requests, problem bodies into errors, the polling schedule.

HTTP is answered by ``httpx.MockTransport``; no server, no broker.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from asyncarch.client import (
    ApiUnreachable,
    AsyncarchClient,
    AsyncAsyncarchClient,
    ClientError,
    ServiceUnavailable,
    StatusPoll,
    TaskHandle,
    TaskNotFinished,
    TaskNotFound,
    TaskTimeout,
    backoff_delays,
    error_from_response,
    parse_result,
    parse_retry_after,
    parse_submit,
    result_request,
    status_request,
    submit_request,
)
from asyncarch.exceptions import AsyncarchError

TASK_ID = "6f1c0d6e-8f57-4a55-9a43-0f6a3d0b7c11"
PROBLEM = "application/problem+json"
Handler = Callable[[httpx.Request], httpx.Response]


def problem(
    status: int, title: str, detail: str, retry_after: str = "5", **extra: object
) -> httpx.Response:
    """A problem body as producer_api.problems writes it (503 carries Retry-After)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"content-type": PROBLEM, **({"Retry-After": retry_after} if status == 503 else {})}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def status_body(state: str, attempt: int = 0) -> dict:
    return {"task_id": TASK_ID, "kind": "similarity", "status": state, "attempt": attempt}


def replay(responses: list[httpx.Response]) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering ``responses`` in order (the last one forever), and what it saw."""
    seen: list[httpx.Request] = []
    answers: Iterator[httpx.Response] = itertools.chain(responses, itertools.repeat(responses[-1]))

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    return handle, seen


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_submit_request_carries_kind_inputs_and_optional_fields() -> None:
    plain = submit_request("similarity", {"item_a": "TV", "item_b": "Samsung"})
    assert (plain.method, plain.path, plain.headers) == ("POST", "/v1/tasks", {})
    assert plain.json == {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}
    full = submit_request(
        "embed", {"texts": ["a"]}, callback_url="http://cb/x", idempotency_key="k-1"
    )
    assert full.json is not None and full.json["callback_url"] == "http://cb/x"
    assert full.headers == {"Idempotency-Key": "k-1"}


def test_task_ids_are_quoted_into_one_path_segment() -> None:
    assert status_request("../healthz").path == "/v1/tasks/..%2Fhealthz"
    assert status_request(TaskHandle(TASK_ID, "PENDING")).path == f"/v1/tasks/{TASK_ID}"


def test_422_problem_becomes_client_error_naming_the_fields() -> None:
    errors = [{"field": "inputs.item_b", "message": "Field required", "type": "missing"}]
    exc = error_from_response(
        problem(422, "Invalid request", "invalid: inputs.item_b", errors=errors)
    )
    assert type(exc) is ClientError
    assert isinstance(exc, AsyncarchError)
    assert (exc.status_code, exc.title, exc.detail) == (
        422,
        "Invalid request",
        "invalid: inputs.item_b",
    )
    assert exc.fields == ["inputs.item_b"]
    assert exc.problem["errors"] == errors
    assert str(exc) == "422 Invalid request: invalid: inputs.item_b"


def test_404_is_task_not_found_and_503_exposes_retry_after() -> None:
    missing = error_from_response(problem(404, "Not Found", f"no task with id {TASK_ID}"))
    assert isinstance(missing, TaskNotFound)
    assert missing.detail == f"no task with id {TASK_ID}"
    busy = error_from_response(problem(503, "Kafka unavailable", "not acknowledged in 5s"))
    assert isinstance(busy, ServiceUnavailable)
    assert busy.retry_after == 5.0


def test_an_error_without_a_problem_body_still_becomes_a_client_error() -> None:
    exc = error_from_response(httpx.Response(502, text="<html>bad gateway</html>"))
    assert exc.status_code == 502
    assert exc.title == "Bad Gateway"
    assert "bad gateway" in exc.detail


@pytest.mark.parametrize(
    ("header", "seconds"), [("1", 1.0), ("2.5", 2.5), ("-3", 0.0), (None, None), ("soon", None)]
)
def test_retry_after_is_read_as_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_result_202_is_task_not_finished() -> None:
    running = httpx.Response(202, json=status_body("RUNNING"), headers={"Retry-After": "1"})
    with pytest.raises(TaskNotFinished) as caught:
        parse_result(running)
    assert (caught.value.status, caught.value.retry_after) == ("RUNNING", 1.0)
    done = {**status_body("SUCCESS"), "output": {"similarity": 0.6}}
    assert parse_result(httpx.Response(200, json=done)) == done


def test_parse_submit_returns_a_handle() -> None:
    links = {"self": f"/v1/tasks/{TASK_ID}", "result": f"/v1/tasks/{TASK_ID}/result"}
    answer = httpx.Response(202, json={"task_id": TASK_ID, "status": "PENDING", "links": links})
    handle = parse_submit(answer)
    assert handle == TaskHandle(TASK_ID, "PENDING", links)
    assert str(handle) == TASK_ID


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = list(itertools.islice(backoff_delays(0.1, 1.0), 7))
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert next(backoff_delays(5.0, 2.0)) == 2.0


def test_status_poll_reports_changes_restarts_backoff_and_times_out() -> None:
    clock, seen = FakeClock(), []
    poll = StatusPoll(TASK_ID, 1.0, 0.1, 0.4, on_status=seen.append, clock=clock)
    assert poll.observe(status_body("PENDING")) is False
    assert [poll.next_delay() for _ in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.4])
    poll.observe(status_body("PENDING"))
    poll.observe(status_body("RUNNING", attempt=1))
    assert poll.next_delay() == pytest.approx(0.1)
    assert poll.next_delay(hint_s=5.0) == pytest.approx(1.0)
    clock.now += 0.95
    assert poll.next_delay() == pytest.approx(0.05)
    clock.now += 0.05
    with pytest.raises(TaskTimeout) as caught:
        poll.next_delay()
    assert [body["status"] for body in seen] == ["PENDING", "RUNNING"]
    assert caught.value.last == status_body("RUNNING", attempt=1)
    assert poll.observe(status_body("SUCCESS")) is True


def test_status_poll_rejects_a_nonsense_schedule() -> None:
    with pytest.raises(ValueError):
        StatusPoll(TASK_ID, 10, poll_interval_s=0, max_interval_s=1)
    with pytest.raises(ValueError):
        StatusPoll(TASK_ID, 10, poll_interval_s=2, max_interval_s=1)


def test_sync_wait_polls_through_503_until_terminal() -> None:
    handle, seen = replay(
        [
            httpx.Response(200, json=status_body("PENDING")),
            problem(503, "Processor unavailable", "rebalancing", retry_after="0.01"),
            httpx.Response(200, json=status_body("PENDING")),
            httpx.Response(200, json=status_body("RUNNING", 1)),
            httpx.Response(200, json=status_body("SUCCESS", 1)),
        ]
    )
    changes: list[str] = []
    with AsyncarchClient("http://api", transport=httpx.MockTransport(handle)) as client:
        final = client.wait(
            TASK_ID,
            timeout_s=5.0,
            poll_interval_s=0.001,
            max_interval_s=0.002,
            on_status=lambda body: changes.append(body["status"]),
        )
    assert final["status"] == "SUCCESS"
    assert changes == ["PENDING", "RUNNING", "SUCCESS"]
    assert len(seen) == 5
    assert all(request.url.path == f"/v1/tasks/{TASK_ID}" for request in seen)


def test_sync_wait_raises_task_timeout() -> None:
    handle, _ = replay([httpx.Response(200, json=status_body("RUNNING", 1))])
    with (
        AsyncarchClient("http://api", transport=httpx.MockTransport(handle)) as client,
        pytest.raises(TaskTimeout, match="still RUNNING"),
    ):
        client.wait(TASK_ID, timeout_s=0.05, poll_interval_s=0.01, max_interval_s=0.02)


def test_sync_client_sends_and_parses() -> None:
    handle, seen = replay(
        [
            httpx.Response(202, json={"task_id": TASK_ID, "status": "PENDING", "links": {}}),
            problem(404, "Not Found", "no task with id x"),
        ]
    )
    with AsyncarchClient("http://api/base", transport=httpx.MockTransport(handle)) as client:
        assert client.submit_similarity("TV", "Samsung", idempotency_key="k").task_id == TASK_ID
        with pytest.raises(TaskNotFound):
            client.result("x")
    assert seen[0].url == "http://api/base/v1/tasks"
    assert json.loads(seen[0].content)["inputs"] == {"item_a": "TV", "item_b": "Samsung"}
    assert seen[0].headers["Idempotency-Key"] == "k"
    assert seen[1].url.path == "/base/v1/tasks/x/result"


def test_no_answer_at_all_is_api_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        AsyncarchClient("http://api", transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(ApiUnreachable) as caught,
    ):
        client.status(TASK_ID)
    assert caught.value.status_code is None
    assert "connection refused" in caught.value.detail
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_async_client_submits_and_waits() -> None:
    handle, seen = replay(
        [
            httpx.Response(202, json={"task_id": TASK_ID, "status": "PENDING", "links": {}}),
            httpx.Response(200, json=status_body("RUNNING", 1)),
            httpx.Response(200, json=status_body("SUCCESS", 1)),
            httpx.Response(200, json={**status_body("SUCCESS", 1), "output": {"x": 1}}),
        ]
    )
    changes: list[str] = []
    async with AsyncAsyncarchClient("http://api", transport=httpx.MockTransport(handle)) as client:
        task = await client.submit("embed", {"texts": ["a"]})
        final = await client.wait(
            task, poll_interval_s=0.001, on_status=lambda b: changes.append(b["status"])
        )
        result = await client.result(task)
    assert final["status"] == "SUCCESS"
    assert changes == ["RUNNING", "SUCCESS"]
    assert result["output"] == {"x": 1}
    assert [request.method for request in seen] == ["POST", "GET", "GET", "GET"]


async def test_async_client_raises_the_same_errors() -> None:
    handle, _ = replay([problem(503, "Kafka unavailable", "not acknowledged")])
    async with AsyncAsyncarchClient("http://api", transport=httpx.MockTransport(handle)) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.submit_similarity("a", "b")
    assert caught.value.retry_after == 5.0


def timed_body(state: str, updated_at: int) -> dict:
    return {**status_body(state), "updated_at": updated_at}


def test_status_request_long_polls_with_a_longer_timeout() -> None:
    plain = status_request(TASK_ID)
    assert plain.params is None and plain.send_kwargs(30.0)["timeout"] == 30.0
    poll = status_request(TASK_ID, wait_s=20, since=1700)
    assert poll.params == {"wait": "20.000", "since": "1700"}
    assert poll.send_kwargs(30.0)["timeout"] == 50.0
    assert result_request(TASK_ID, wait_s=5).params == {"wait": "5.000"}


def test_status_poll_asks_at_once_then_long_polls_from_the_last_change() -> None:
    clock = FakeClock()
    poll = StatusPoll(TASK_ID, 60.0, 0.1, 2.0, clock=clock, long_poll_s=20.0)
    assert poll.request_wait() == (0.0, None)
    poll.observe(timed_body("PENDING", 1_000))
    assert poll.delay_after(0.01) == 0.0  # changed: the next long-poll waits by itself
    assert poll.request_wait() == (20.0, 1_000)
    poll.observe(timed_body("PENDING", 1_000))
    assert poll.delay_after(20.0) == 0.0  # the server waited: no sleep on top
    assert poll.delay_after(0.01) == pytest.approx(0.19)  # it did not: back off
    clock.now += 50.0
    assert poll.request_wait() == (pytest.approx(10.0), 1_000)
    clock.now += 10.0
    with pytest.raises(TaskTimeout):
        poll.request_wait()


def test_sync_wait_long_polls_each_change_without_sleeping() -> None:
    handle, seen = replay(
        [
            httpx.Response(200, json=timed_body("PENDING", 1)),
            httpx.Response(200, json=timed_body("RUNNING", 2)),
            httpx.Response(200, json=timed_body("SUCCESS", 3)),
        ]
    )
    changes: list[str] = []
    with AsyncarchClient("http://api", transport=httpx.MockTransport(handle)) as client:
        started = time.monotonic()
        final = client.wait(
            TASK_ID,
            timeout_s=30.0,
            poll_interval_s=5.0,
            max_interval_s=10.0,
            on_status=lambda body: changes.append(body["status"]),
        )
        elapsed = time.monotonic() - started
    assert final["status"] == "SUCCESS"
    assert changes == ["PENDING", "RUNNING", "SUCCESS"]
    assert elapsed < 2.0  # a 5 s backoff sleep would have shown
    assert [dict(r.url.params) for r in seen] == [
        {},
        {"wait": "20.000", "since": "1"},
        {"wait": "20.000", "since": "2"},
    ]
