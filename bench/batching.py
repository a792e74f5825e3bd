"""Dynamic batching and torch threads, measured side by side in one run.

Usage: .venv/bin/python bench/batching.py [--tasks 256] [--rounds 3]

Encodes the same similarity tasks (two texts each) through the worker's real
code path (``run_batch`` with the packaged all-MiniLM-L6-v2) with batches of
1, 8 and 32 tasks, interleaving the variants round by round so that noise on
this shared machine hits them alike, and prints tasks/s and the ratio to
batch size 1. A second table compares torch thread counts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

from inference_consumer.config import default_model_dir
from inference_consumer.inference import run_batch
from inference_consumer.model import SentenceEncoder


def tasks(count: int) -> list[dict]:
    return [
        {
            "task_id": str(i),
            "kind": "similarity",
            "inputs": {"item_a": f"product {i} television set", "item_b": f"brand {i % 7} tv"},
        }
        for i in range(count)
    ]


def throughput(encoder: SentenceEncoder, requests: list[dict], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(requests), batch):
        run_batch(requests[i : i + batch], encoder.encode)
    return len(requests) / (time.perf_counter() - started)


def compare(label: str, variants: dict[str, Callable[[], float]], rounds: int) -> None:
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            samples[name].append(run())
    base = statistics.median(samples[next(iter(variants))])
    print(f"\n{label}")
    print(f"{'variant':<24}{'tasks/s (median)':>18}{'ratio':>8}   samples")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"{name:<24}{median:>18.1f}{median / base:>8.2f}   "
            + ", ".join(f"{v:.1f}" for v in values)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    requests = tasks(args.tasks)
    default_threads = torch.get_num_threads()
    encoder = SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2", threads=1)
    throughput(encoder, requests[:32], 32)  # warm-up
    compare(
        "Batching (1 torch thread, same tasks)",
        {f"max_batch={b}": partial(throughput, encoder, requests, b) for b in (1, 8, 32)},
        args.rounds,
    )

    def with_threads(n: int) -> float:
        torch.set_num_threads(n)
        return throughput(encoder, requests, 32)

    compare(
        f"torch threads (max_batch=32; torch's default here is {default_threads})",
        {f"threads={n}": partial(with_threads, n) for n in (1, 2)},
        args.rounds,
    )


if __name__ == "__main__":
    main()
