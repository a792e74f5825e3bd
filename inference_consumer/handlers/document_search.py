"""``document-search``: an uploaded document's passages ranked against a query."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from asyncarch.blobstore import BlobError, BlobRef, BlobStore
from inference_consumer.documents import chunk_text, extract_text
from inference_consumer.exceptions import InvalidTaskInputs
from inference_consumer.handlers import register

__all__ = ["DocumentSearchHandler"]

MAX_PASSAGES = 2000


class DocumentSearchHandler:
    """Reads the document by claim check, chunks it, ranks chunks by cosine similarity."""

    kind = "document-search"

    def prepare(self, inputs: dict[str, Any], store: BlobStore | None) -> dict[str, Any]:
        """Read, extract and chunk the document named by the inputs."""
        if store is None:
            raise InvalidTaskInputs("this worker has no document store configured")
        try:
            ref = BlobRef(
                inputs["document_uri"], inputs["document_size"], inputs["document_sha256"]
            )
            data = store.read(ref)
        except (KeyError, TypeError) as exc:
            raise InvalidTaskInputs("document-search needs a query and a document") from exc
        except BlobError as exc:
            raise InvalidTaskInputs(str(exc)) from exc
        passages = chunk_text(extract_text(data, inputs["content_type"]))[:MAX_PASSAGES]
        if not passages:
            raise InvalidTaskInputs("the document contains no text")
        return {**inputs, "passages": [asdict(p) for p in passages]}

    def texts(self, inputs: dict[str, Any]) -> list[str]:
        return [inputs["query"], *(p["text"] for p in inputs["passages"])]

    def output(self, inputs: dict[str, Any], vectors: torch.Tensor) -> dict[str, Any]:
        scores = vectors[1:] @ vectors[0]
        top = torch.topk(scores, k=min(int(inputs.get("top_k") or 5), len(scores)))
        passages = inputs["passages"]
        return {
            "passages": [
                {**passages[i], "score": float(score)}
                for score, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]
        }


register(DocumentSearchHandler())
