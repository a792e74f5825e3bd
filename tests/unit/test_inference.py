"""Batching and the task handlers, with a tiny injected encoder."""

from __future__ import annotations

import pytest
import torch

from inference_consumer.exceptions import UnknownTaskKind
from inference_consumer.handlers import handler_for, registered_kinds
from inference_consumer.inference import run_batch


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
