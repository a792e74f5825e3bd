"""``similarity``: cosine similarity of item_a and item_b, with both embeddings."""

from __future__ import annotations

from typing import Any

import torch

from inference_consumer.exceptions import InvalidTaskInputs
from inference_consumer.handlers import InlineInputs, register

__all__ = ["SimilarityHandler"]


class SimilarityHandler(InlineInputs):
    """The seed's item_a / item_b task."""

    kind = "similarity"

    def texts(self, inputs: dict[str, Any]) -> list[str]:
        try:
            return [inputs["item_a"], inputs["item_b"]]
        except (KeyError, TypeError) as exc:
            raise InvalidTaskInputs("similarity needs item_a and item_b") from exc

    def output(self, inputs: dict[str, Any], vectors: torch.Tensor) -> dict[str, Any]:
        a, b = vectors[0], vectors[1]
        return {
            "similarity": float(torch.dot(a, b).item()),
            "embedding_a": a.tolist(),
            "embedding_b": b.tolist(),
        }


register(SimilarityHandler())
