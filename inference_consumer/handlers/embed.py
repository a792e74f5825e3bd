"""``embed``: one normalised vector per input text."""

from __future__ import annotations

from typing import Any

import torch

from inference_consumer.exceptions import InvalidTaskInputs
from inference_consumer.handlers import InlineInputs, register

__all__ = ["EmbedHandler"]


class EmbedHandler(InlineInputs):
    """Embeds a list of texts."""

    kind = "embed"

    def texts(self, inputs: dict[str, Any]) -> list[str]:
        texts = inputs.get("texts") if isinstance(inputs, dict) else None
        if not texts:
            raise InvalidTaskInputs("embed needs a non-empty list of texts")
        return list(texts)

    def output(self, inputs: dict[str, Any], vectors: torch.Tensor) -> dict[str, Any]:
        return {"vectors": vectors.tolist(), "dimensions": int(vectors.shape[1])}


register(EmbedHandler())
