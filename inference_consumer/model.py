"""Loading a local Hugging Face model and turning texts into sentence embeddings."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from inference_consumer.exceptions import ModelLoadError

__all__ = ["ModelIdentity", "SentenceEncoder"]

log = logging.getLogger(__name__)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ModelIdentity:
    """What a result records about the model that produced it."""

    name: str
    revision: str
    device: str


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local model directory.

    Loads offline only: nothing is fetched from a hub. Inputs longer than the
    model's limit are truncated by the tokenizer.
    """

    def __init__(self, model_dir: Path, name: str, device: str = "auto", threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        torch.set_num_threads(threads)
        self.device = _pick_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self.model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load a model from {model_dir}: {exc}") from exc
        self.model.to(self.device).eval()
        self.max_length = min(int(self.tokenizer.model_max_length), 512)
        self.identity = ModelIdentity(name, _revision(model_dir), self.device.type)
        log.info(
            "model loaded",
            extra={"model": name, "device": self.device.type, "revision": self.identity.revision},
        )

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Embeddings of ``texts`` as a (len(texts), dim) float32 CPU tensor."""
        chunks = [
            self._encode_chunk(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.empty(0, self.dimensions)

    @property
    def dimensions(self) -> int:
        """Length of one embedding."""
        return int(self.model.config.hidden_size)

    def _encode_chunk(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu()


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _revision(model_dir: Path) -> str:
    """A short hash of the weights file, so results say exactly which weights ran."""
    for name in WEIGHT_FILES:
        path = model_dir / name
        if path.exists():
            digest = hashlib.sha256()
            with path.open("rb") as weights:
                while block := weights.read(1 << 20):
                    digest.update(block)
            return digest.hexdigest()[:12]
    return "unknown"
