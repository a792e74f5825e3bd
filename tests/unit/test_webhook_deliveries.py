"""Webhook deliveries: backoff bounds, what each answer means, the record, the API view."""

from __future__ import annotations

import pytest

from stream_processors.config import DEV_WEBHOOK_SECRET, ProcessorSettings
from stream_processors.delivery.deliveries import (
    AttemptResult,
    DueDeliveries,
    RetryPolicy,
    backoff_delay_s,
    classify_response,
    needs_delivery,
    new_delivery,
    record_attempt,
    with_deliveries,
)

POLICY = RetryPolicy(retry_for_ms=3_600_000, initial_s=1.0, max_s=300.0)
STATE = {
    "task_id": "t-1",
    "state": "SUCCESS",
    "callback_url": "http://127.0.0.1/hook",
    "history": [
        {"state": "PENDING", "at": 1, "attempt": 0},
        {"state": "SUCCESS", "at": 5, "attempt": 1},
    ],
}
HTTP_500 = AttemptResult("retrying", 500, {"type": "HTTPStatus", "message": "HTTP 500"})


@pytest.mark.parametrize("failures", range(1, 40))
def test_backoff_stays_within_full_jitter_bounds(failures: int) -> None:
    ceiling = min(POLICY.max_s, POLICY.initial_s * 2 ** (failures - 1))
    assert backoff_delay_s(failures, POLICY, rng=lambda: 0.0) == 0.0
    assert backoff_delay_s(failures, POLICY, rng=lambda: 0.999999) == pytest.approx(
        ceiling, rel=1e-5
    )
    for _ in range(20):
        assert 0.0 <= backoff_delay_s(failures, POLICY) <= ceiling


def test_backoff_ceiling_doubles_then_caps() -> None:
    ceilings = [backoff_delay_s(n, POLICY, rng=lambda: 1.0) for n in range(1, 12)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_delay_s(10_000, POLICY, rng=lambda: 1.0) == 300


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (500, "retrying"),
        (503, "retrying"),
        (429, "retrying"),
        (400, "failed"),
        (404, "failed"),
        (410, "failed"),
        (301, "failed"),
        (308, "failed"),
    ],
)
def test_what_each_answer_means(code: int, outcome: str) -> None:
    assert classify_response(code, {}).outcome == outcome


def test_retry_after_is_read_from_429() -> None:
    assert classify_response(429, {"retry-after": "7"}).retry_after_s == 7.0
    assert (
        classify_response(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}).retry_after_s
        is None
    )


def test_only_finished_tasks_with_a_callback_need_delivery() -> None:
    assert needs_delivery(STATE)
    assert not needs_delivery({**STATE, "state": "RUNNING"})
    assert not needs_delivery({**STATE, "callback_url": None})
    assert not needs_delivery(None)


def test_500_twice_then_200_is_three_attempts_then_settled() -> None:
    delivery = new_delivery(STATE, 1_000, POLICY)
    assert (delivery["status"], delivery["next_attempt_at"]) == ("pending", 1_000)
    delivery = record_attempt(delivery, HTTP_500, 1_000, POLICY, rng=lambda: 0.5)
    assert delivery["next_attempt_at"] == 1_500 and delivery["status"] == "pending"
    delivery = record_attempt(delivery, HTTP_500, 1_500, POLICY, rng=lambda: 0.5)
    assert delivery["next_attempt_at"] == 2_500
    delivery = record_attempt(delivery, AttemptResult("delivered", 200), 2_500, POLICY)
    assert (delivery["status"], delivery["attempt_count"], delivery["next_attempt_at"]) == (
        "delivered",
        3,
        None,
    )
    assert [a["outcome"] for a in delivery["attempts"]] == ["retrying", "retrying", "delivered"]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]


def test_retrying_stops_at_the_end_of_the_window() -> None:
    policy = RetryPolicy(retry_for_ms=2_000, initial_s=1.0, max_s=1.0)
    delivery = record_attempt(new_delivery(STATE, 0, policy), HTTP_500, 0, policy, rng=lambda: 1.0)
    assert delivery["status"] == "pending"
    delivery = record_attempt(delivery, HTTP_500, 1_500, policy, rng=lambda: 1.0)
    last = delivery["attempts"][-1]
    assert (delivery["status"], last["outcome"], last["next_attempt_at"]) == (
        "failed",
        "failed",
        None,
    )
    assert "gave up after 2 attempts" in last["error"]["message"]


def test_a_receivers_retry_after_is_honoured_up_to_the_cap() -> None:
    slow = AttemptResult("retrying", 429, {"type": "HTTPStatus", "message": "HTTP 429"}, 60.0)
    delivery = record_attempt(new_delivery(STATE, 0, POLICY), slow, 0, POLICY, rng=lambda: 0.0)
    assert delivery["next_attempt_at"] == 60_000


def test_the_api_view_appends_attempts_to_the_history() -> None:
    delivery = record_attempt(
        new_delivery(STATE, 10, POLICY), HTTP_500, 10, POLICY, rng=lambda: 0.0
    )
    view = with_deliveries(STATE, delivery)
    assert view["history"][:2] == STATE["history"]
    webhook_entry = view["history"][2]
    assert webhook_entry["state"] == "WEBHOOK"
    assert (webhook_entry["attempt"], webhook_entry["at"], webhook_entry["outcome"]) == (
        1,
        10,
        "retrying",
    )
    assert webhook_entry["status_code"] == 500 and webhook_entry["next_attempt_at"] == 10
    assert view["webhook"]["status"] == "pending" and view["webhook"]["attempts"] == 1
    assert with_deliveries(STATE, None) is STATE


def test_due_deliveries_come_out_in_time_order_within_the_limit() -> None:
    due = DueDeliveries()
    due.schedule("a", 30)
    due.schedule("b", 10)
    due.schedule("c", 20)
    due.schedule("a", 5)  # rescheduled: the earlier entry is stale
    assert due.take(now_ms=25, limit=2) == ["a", "b"]
    assert due.take(now_ms=25, limit=5) == ["c"]
    assert due.take(now_ms=1_000, limit=5) == []
    due.in_flight.add("d")
    due.reset([("d", 0), ("e", 0)])
    assert due.take(now_ms=1, limit=5) == ["e"] and len(due) == 0


def test_settings_refuse_the_dev_secret_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProcessorSettings().webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET
    monkeypatch.setenv("PROCESSOR_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="PROCESSOR_WEBHOOK_SECRET"):
        ProcessorSettings()
    monkeypatch.setenv("PROCESSOR_WEBHOOK_SECRET", "a-real-secret")
    settings = ProcessorSettings()
    assert "a-real-secret" not in repr(settings)


def test_allowed_networks_come_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProcessorSettings().webhook_allowed_networks == ()
    monkeypatch.setenv("PROCESSOR_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32, 10.1.0.0/16")
    assert ProcessorSettings().webhook_allowed_networks == ("127.0.0.1/32", "10.1.0.0/16")
    monkeypatch.setenv("PROCESSOR_WEBHOOK_ALLOWED_NETWORKS", "not-a-network")
    with pytest.raises(ValueError):
        ProcessorSettings()
