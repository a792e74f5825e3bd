"""The model ceiling: the packaged model called directly, as a worker batches it,
and the direct computation that results from the stacks are checked against."""

from __future__ import annotations

import time
from typing import Any

import torch

from inference_consumer.config import WorkerSettings, default_model_dir
from inference_consumer.inference import run_batch
from inference_consumer.model import SentenceEncoder

__all__ = [
    "bracketed",
    "load_encoder",
    "measure_ceiling",
    "verify_outputs",
    "worker_batch_and_threads",
]

TOLERANCE = 1e-4


def load_encoder(threads: int) -> SentenceEncoder:
    """The default model, on the CPU threads the workers use."""
    return SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2", device="cpu", threads=threads)


def _requests(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"task_id": str(i), "kind": "similarity", "inputs": {"item_a": a, "item_b": b}}
        for i, (a, b) in enumerate(pairs)
    ]


def measure_ceiling(
    encoder: SentenceEncoder, pairs: list[tuple[str, str]], batch: int, rounds: int = 3
) -> dict[str, Any]:
    """Similarity pairs/s through the worker's ``run_batch`` at ``batch`` tasks a forward
    pass; the median of ``rounds`` passes over ``pairs`` after one warm-up batch."""
    requests = _requests(pairs)
    run_batch(requests[:batch], encoder.encode)
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(0, len(requests), batch):
            run_batch(requests[i : i + batch], encoder.encode)
        rates.append(len(requests) / (time.perf_counter() - started))
    rates.sort()
    single = _single_task_ms(encoder, requests[: min(20, len(requests))])
    return {
        "pairs_per_s": round(rates[len(rates) // 2], 1),
        "samples_pairs_per_s": [round(r, 1) for r in rates],
        "pairs": len(pairs),
        "batch": batch,
        "torch_threads": torch.get_num_threads(),
        "single_task_ms_p50": single,
    }


def bracketed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One ceiling from a measurement before the pipeline ran and one right after:
    ``pairs_per_s`` is their mean, and both stay in the record."""
    return {
        **before,
        "pairs_per_s": round((before["pairs_per_s"] + after["pairs_per_s"]) / 2, 1),
        "before_pipeline_pairs_per_s": before["pairs_per_s"],
        "after_pipeline_pairs_per_s": after["pairs_per_s"],
        "samples_pairs_per_s": before["samples_pairs_per_s"] + after["samples_pairs_per_s"],
    }


def _single_task_ms(encoder: SentenceEncoder, requests: list[dict[str, Any]]) -> float:
    """Median time of one task alone in a forward pass (what an unloaded worker does)."""
    times = []
    for request in requests:
        started = time.perf_counter()
        run_batch([request], encoder.encode)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return round(times[len(times) // 2], 2)


def worker_batch_and_threads() -> tuple[int, int]:
    """The workers' ``max_batch`` and torch threads, as their settings resolve here."""
    settings = WorkerSettings()
    return settings.max_batch, settings.torch_threads


def verify_outputs(
    encoder: SentenceEncoder,
    pairs: list[tuple[str, str]],
    outputs: dict[int, dict[str, Any] | None],
) -> dict[str, Any]:
    """Compare each returned similarity with the model's own, computed here."""
    indices = sorted(outputs)
    direct = run_batch(_requests([pairs[i] for i in indices]), encoder.encode)
    worst, mismatched = 0.0, 0
    for index, outcome in zip(indices, direct, strict=True):
        got = (outputs[index] or {}).get("similarity")
        expected = (outcome.output or {})["similarity"]
        if not isinstance(got, int | float):
            mismatched += 1
            continue
        worst = max(worst, abs(float(got) - expected))
        mismatched += abs(float(got) - expected) > TOLERANCE
    return {
        "checked": len(indices),
        "mismatched": mismatched,
        "max_abs_diff": worst,
        "tolerance": TOLERANCE,
    }
