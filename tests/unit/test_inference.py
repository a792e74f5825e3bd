"""Batching and the task handlers, with a tiny injected encoder."""

from __future__ import annotations

import pytest
import torch

from inference_consumer.exceptions import UnknownTaskKind
from inference_consumer.handlers import handler_for, registered_kinds
from inference_consumer.inference import RetryPolicy, run_batch, run_with_retries


class CountingEncoder:
    """Maps each text to a fixed unit vector and counts forward passes."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(texts)
        vectors = torch.tensor([[float(len(t)), 1.0, float(t.count("a"))] for t in texts])
        return torch.nn.functional.normalize(vectors, dim=1)


def test_kinds_are_registered() -> None:
    assert {"similarity", "embed"} <= set(registered_kinds())
    with pytest.raises(UnknownTaskKind):
        handler_for("translate")


def test_a_batch_is_one_forward_pass_and_outputs_go_to_their_tasks() -> None:
    encoder = CountingEncoder()
    requests = [
        {"task_id": "a", "kind": "similarity", "inputs": {"item_a": "TV", "item_b": "TV"}},
        {"task_id": "b", "kind": "embed", "inputs": {"texts": ["x", "banana", "yy"]}},
        {"task_id": "c", "kind": "similarity", "inputs": {"item_a": "aaa", "item_b": "b"}},
    ]
    outcomes = run_batch(requests, encoder)
    assert len(encoder.calls) == 1 and len(encoder.calls[0]) == 7
    assert [o.request["task_id"] for o in outcomes] == ["a", "b", "c"]
    assert outcomes[0].output["similarity"] == pytest.approx(1.0)
    expected = encoder(["x", "banana", "yy"])
    assert torch.allclose(torch.tensor(outcomes[1].output["vectors"]), expected)
    assert outcomes[1].output["dimensions"] == 3
    a, b = encoder(["aaa", "b"])
    assert outcomes[2].output["similarity"] == pytest.approx(float(a @ b))


def test_an_invalid_task_fails_alone() -> None:
    outcomes = run_batch(
        [
            {"task_id": "bad", "kind": "translate", "inputs": {}},
            {"task_id": "empty", "kind": "embed", "inputs": {"texts": []}},
            {"task_id": "ok", "kind": "similarity", "inputs": {"item_a": "a", "item_b": "b"}},
        ],
        CountingEncoder(),
    )
    assert outcomes[0].output is None and outcomes[0].error_type == "UnknownTaskKind"
    assert outcomes[1].output is None and outcomes[1].error_type == "InvalidTaskInputs"
    assert outcomes[2].output is not None


def test_an_all_invalid_batch_runs_no_forward_pass() -> None:
    encoder = CountingEncoder()
    outcomes = run_batch([{"task_id": "bad", "kind": "nope", "inputs": {}}], encoder)
    assert encoder.calls == [] and outcomes[0].error_type == "UnknownTaskKind"


class FlakyEncoder(CountingEncoder):
    """Fails its first ``failures`` forward passes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("CUDA out of memory")
        return super().__call__(texts)


REQUESTS = [{"task_id": "a", "kind": "similarity", "inputs": {"item_a": "x", "item_b": "y"}}]


def test_a_failing_forward_pass_is_retried_then_succeeds() -> None:
    retries: list[int] = []
    outcomes = run_with_retries(
        REQUESTS,
        FlakyEncoder(2),
        RetryPolicy(3, 0.001),
        lambda attempt, _exc: retries.append(attempt),
    )
    assert retries == [1, 2]
    assert outcomes[0].output is not None and outcomes[0].attempt == 3


def test_past_the_budget_every_task_fails_with_the_error() -> None:
    retries: list[int] = []
    outcomes = run_with_retries(
        REQUESTS,
        FlakyEncoder(5),
        RetryPolicy(2, 0.001),
        lambda attempt, _exc: retries.append(attempt),
    )
    assert retries == [1]
    assert outcomes[0].output is None
    assert outcomes[0].error_type == "InferenceError"
    assert "CUDA out of memory" in (outcomes[0].error_message or "")
    assert outcomes[0].attempt == 2


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(10, backoff_s=0.1, max_backoff_s=0.5)
    assert all(0 <= policy.delay(1) <= 0.1 for _ in range(50))
    assert all(0 <= policy.delay(8) <= 0.5 for _ in range(50))


def test_document_search_ranks_passages_of_the_stored_document(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from asyncarch.blobstore import LocalBlobStore

    store = LocalBlobStore(tmp_path)
    text = ("aaaa aaaa aaaa. " * 3) + ("bbbb cccc. " * 3)
    ref = store.put([text.encode()])
    request = {
        "task_id": "d",
        "kind": "document-search",
        "inputs": {
            "query": "aaaa",
            "document_uri": ref.uri,
            "document_size": ref.size,
            "document_sha256": ref.sha256,
            "content_type": "text/plain",
            "top_k": 2,
        },
    }
    encoder = CountingEncoder()
    [outcome] = run_batch([request], encoder, store)
    passages = outcome.output["passages"]
    assert 1 <= len(passages) <= 2
    assert passages == sorted(passages, key=lambda p: -p["score"])
    assert all(text[p["start"] : p["end"]].strip().startswith(p["text"][:4]) for p in passages)


def test_document_search_with_a_tampered_document_fails_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from asyncarch.blobstore import LocalBlobStore

    store = LocalBlobStore(tmp_path)
    ref = store.put([b"original text"])
    (tmp_path / ref.uri.rsplit("/", 1)[1]).write_bytes(b"tampered text")
    request = {
        "task_id": "d",
        "kind": "document-search",
        "inputs": {
            "query": "q",
            "document_uri": ref.uri,
            "document_size": ref.size,
            "document_sha256": ref.sha256,
            "content_type": "text/plain",
            "top_k": 2,
        },
    }
    [outcome] = run_batch([request], CountingEncoder(), store)
    assert outcome.error_type == "InvalidTaskInputs"
    assert "does not match" in (outcome.error_message or "")


def test_long_tasks_report_rising_progress_between_chunks() -> None:
    encoder = CountingEncoder()
    long_task = {
        "task_id": "long",
        "kind": "embed",
        "inputs": {"texts": [f"t{i}" for i in range(200)]},
    }
    short_task = {
        "task_id": "short",
        "kind": "similarity",
        "inputs": {"item_a": "a", "item_b": "b"},
    }
    reports: list[tuple[str, float]] = []
    outcomes = run_batch(
        [short_task, long_task], encoder, on_progress=lambda r, f: reports.append((r["task_id"], f))
    )
    assert len(encoder.calls) == 4  # 202 texts in chunks of 64
    assert {task for task, _ in reports} == {"long"}
    fractions = [f for _, f in reports]
    assert fractions == sorted(fractions) and all(0 < f < 1 for f in fractions)
    assert len(outcomes[1].output["vectors"]) == 200
    assert outcomes[0].output["similarity"] == pytest.approx(
        float(encoder(["a"])[0] @ encoder(["b"])[0])
    )


def test_failures_carry_a_stack_summary() -> None:
    outcomes = run_with_retries(
        REQUESTS, FlakyEncoder(5), RetryPolicy(1, 0.001), lambda attempt, _exc: None
    )
    assert "RuntimeError: CUDA out of memory" in (outcomes[0].error_stack or "")
    assert "Traceback" in (outcomes[0].error_stack or "")
