"""GET /monitor/data against the real pipeline: topics, partitions, group lag, dead letters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from tests.helpers import NotYet, eventually, submit_similarity_tasks
from tests.stack import TEST_PARTITIONS, Pipeline, wait_for_state

pytestmark = pytest.mark.integration


def monitor_until(
    client: httpx.Client, done: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0
) -> dict[str, Any]:
    """Poll /monitor/data until ``done(body)``; fail with the last body."""

    def body_when_done() -> dict[str, Any] | NotYet:
        response = client.get("/monitor/data")
        assert response.status_code == 200, response.text
        return body if done(body := response.json()) else NotYet(body)

    return eventually(body_when_done, timeout_s, "the monitor got there", 0.5)


def group(body: dict[str, Any], role: str) -> dict[str, Any]:
    return next(g for g in body["groups"] if g["role"] == role)


def test_reports_every_topic_with_its_partitions_and_end_offsets(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_ids = submit_similarity_tasks(client, 4, "monitor")
        for task_id in task_ids:
            wait_for_state(client, task_id, {"SUCCESS"})
        body = client.get("/monitor/data").json()
    topics = {t["topic"]: t for t in body["topics"]}
    assert set(topics) == {spec.name for spec in pipeline.topics.specs}
    for topic in topics.values():
        assert [p["partition"] for p in topic["partitions"]] == list(range(TEST_PARTITIONS))
    requests = topics[pipeline.topics.requests]
    assert sum(p["end"] for p in requests["partitions"]) >= len(task_ids)
    assert requests["retained_offsets"] == sum(
        p["end"] - p["start"] for p in requests["partitions"]
    )


def test_group_lag_is_zero_once_workers_and_processor_are_done(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        for task_id in submit_similarity_tasks(client, 3, "lag"):
            wait_for_state(client, task_id, {"SUCCESS"})
        body = monitor_until(
            client, lambda b: group(b, "workers")["lag"] == 0 and group(b, "processor")["lag"] == 0
        )
    workers = group(body, "workers")
    assert workers["group"].startswith("workers-") and workers["members"] == 1
    assert {p["topic"] for p in workers["partitions"]} == {pipeline.topics.requests}
    # A partition that no task hashed to has nothing committed, and nothing in it.
    assert all(p["committed"] == p["end"] or p["end"] == 0 for p in workers["partitions"])
    processor = group(body, "processor")
    assert processor["group"].startswith("processor-") and processor["members"] >= 1
    assert {p["topic"] for p in processor["partitions"]} >= {
        pipeline.topics.requests,
        pipeline.topics.status,
        pipeline.topics.results,
    }


def test_reports_throughput_latency_and_tasks_by_state(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        client.get("/monitor/data")  # the first sample of the history
        for task_id in submit_similarity_tasks(client, 3, "rate"):
            wait_for_state(client, task_id, {"SUCCESS"})
        body = monitor_until(
            client, lambda b: b["processor"].get("tasks_by_state", {}).get("SUCCESS", 0) >= 3, 30
        )
    processor = body["processor"]
    assert processor["completed_total"] >= 3
    assert processor["completed_per_s"]["60s"] > 0
    assert 0 < processor["latency_s"]["mean"] < 60
    assert processor["series"]


def test_lists_recent_dead_letters_with_their_error(pipeline: Pipeline) -> None:
    producer = Producer(pipeline.kafka.librdkafka())
    producer.produce(pipeline.topics.requests, key=b"not-a-task", value=b"\x00garbage")
    assert producer.flush(10) == 0
    with pipeline.client() as client:
        body = monitor_until(client, lambda b: bool(b["dead_letters"]))
    letter = body["dead_letters"][0]
    assert letter["task_id"] == "not-a-task"
    assert letter["source"].startswith(f"{pipeline.topics.requests}/")
    assert letter["error_type"] and letter["error_message"]
