"""The Celery worker: ``celery -A bench.celery_seed.tasks worker --pool prefork``."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from inference_consumer.config import default_model_dir
from inference_consumer.inference import run_batch
from inference_consumer.model import SentenceEncoder

__all__ = ["SIMILARITY_TASK", "app", "similarity"]

SIMILARITY_TASK = "bench.celery_seed.tasks.similarity"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")

app = Celery("tasks", broker=f"{REDIS_URL}/0", backend=f"{REDIS_URL}/1")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

_encoder: SentenceEncoder | None = None


@worker_process_init.connect
def load_model(**_: Any) -> None:
    """Each prefork child loads the model once, with the thread count its operator set."""
    global _encoder
    threads = int(os.environ.get("BENCH_TORCH_THREADS", "1"))
    _encoder = SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2", threads=threads)


@app.task(name=SIMILARITY_TASK)
def similarity(item_a: str, item_b: str) -> dict[str, Any]:
    """The seed's item_a / item_b task through the pipeline's own model code."""
    assert _encoder is not None, "worker_process_init did not run"
    request = {"task_id": "-", "kind": "similarity", "inputs": {"item_a": item_a, "item_b": item_b}}
    (outcome,) = run_batch([request], _encoder.encode)
    if outcome.output is None:
        raise ValueError(outcome.error_message)
    return outcome.output
