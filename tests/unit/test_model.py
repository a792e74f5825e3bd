"""The real packaged model: our pooling matches sentence-transformers, offline."""

from __future__ import annotations

import pytest
import torch

from inference_consumer.config import default_model_dir
from inference_consumer.exceptions import ModelLoadError
from inference_consumer.model import SentenceEncoder


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2", threads=1)


def test_embeddings_match_sentence_transformers(encoder: SentenceEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["TV", "Samsung", "A man is eating food.", "Ein Mann isst."]
    reference = SentenceTransformer(str(default_model_dir()), device="cpu").encode(
        texts, normalize_embeddings=True, convert_to_tensor=True
    )
    ours = encoder.encode(texts)
    assert ours.shape == (4, 384)
    assert torch.allclose(ours, reference.cpu(), atol=1e-5)


def test_long_input_is_truncated_not_fatal(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(["word " * 5000, "short"])
    assert vectors.shape == (2, 384)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)


def test_identity_names_weights_and_device(encoder: SentenceEncoder) -> None:
    assert encoder.identity.device == "cpu"
    assert len(encoder.identity.revision) == 12


def test_a_missing_model_directory_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError, match="cannot load a model"):
        SentenceEncoder(tmp_path, "nothing")
