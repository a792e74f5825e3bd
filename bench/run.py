"""``python -m bench.run``: the pipeline beside the model ceiling and the seed's design.

One run measures, on this machine and side by side: the packaged model called
directly (the ceiling), the real pipeline end to end (ephemeral Kafka broker,
processor, N workers, API) and the seed's Flask + Celery + Redis stack, each
under the same burst of similarity tasks from concurrent HTTP clients and
unloaded (one task at a time). It writes ``bench/results/<timestamp>.json``,
``.md`` and ``.png`` and prints the table, ratios last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from bench import report
from bench.ceiling import (
    bracketed,
    load_encoder,
    measure_ceiling,
    verify_outputs,
    worker_batch_and_threads,
)
from bench.loadgen import (
    LoadResult,
    PipelineTarget,
    SeedTarget,
    Target,
    make_pairs,
    read_histories,
    run_load,
    stage_breakdown,
)
from bench.procs import RssSampler, cpu_seconds, host_cpu, settled_twice
from bench.stacks import CeleryStack, PipelineStack, kafka_broker
from inference_consumer.model import SentenceEncoder

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
MAX_DEFAULT_PROCESSES = 8
# Warm-up ends when the stack's JIT-compiling processes settled (bench.procs.settled_twice),
# or after this many rounds.
WARM_UP_MAX_ROUNDS = 10


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The bench's command line (also ``asyncarch bench``)."""
    cores = min(os.cpu_count() or 1, MAX_DEFAULT_PROCESSES)
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--tasks", type=int, default=2000, help="similarity tasks in the burst (default 2000)")
    add("--clients", type=int, default=64, help="concurrent HTTP clients (default 64)")
    add("--unloaded", type=int, default=30, help="tasks sent one at a time (default 30)")
    add("--workers", type=int, default=cores, help=f"pipeline workers (default: cores, {cores})")
    add("--partitions", type=int, default=6, help="partitions per topic (default 6)")
    add("--concurrency", type=int, default=cores, help=f"Celery children (default {cores})")
    add("--poll-ms", type=float, default=50.0, help="status poll interval under load")
    add("--wait-s", type=float, default=5.0, help="long-poll wait asked of the pipeline API")
    add(
        "--warm-up",
        type=int,
        help="tasks in one warm-up round: each stack runs rounds at full concurrency, "
        "unmeasured, until the broker's CPU per task holds within 10%% for two rounds, so "
        "its JIT, the model and every connection are warm, as in a service that has been "
        "up a while (default: half of --tasks, at least 16)",
    )
    add(
        "--warm-up-rounds",
        type=int,
        default=WARM_UP_MAX_ROUNDS,
        help=f"most warm-up rounds per stack (default {WARM_UP_MAX_ROUNDS})",
    )
    add("--sample", type=int, default=32, help="results checked against the model")
    add("--timeout-s", type=float, help="bound on one burst (default 60 s + 0.1 s a task)")
    add("--only", choices=["pipeline", "celery"], help="skip the other stack")
    add("--sweep", action="store_true", help="also: workers 1→2, partitions 1→12, tasks 1k→10k")
    add("--quick", action="store_true", help="tiny numbers (40 tasks, 8 clients, 5 unloaded)")
    add("--out", type=Path, default=RESULTS, help="results folder (default bench/results)")
    return parser


def _quick(args: argparse.Namespace) -> None:
    args.tasks, args.clients, args.unloaded, args.sample = 40, 8, 5, 8
    args.warm_up = 8 if args.warm_up is None else args.warm_up
    args.warm_up_rounds = 1
    args.workers, args.concurrency = 1, min(args.concurrency, 2)


def warm_up_tasks(args: argparse.Namespace) -> int:
    """Tasks in one warm-up round."""
    return args.warm_up if args.warm_up is not None else max(16, args.tasks // 2)


def _bound(args: argparse.Namespace, tasks: int) -> float:
    return args.timeout_s or 60.0 + 0.1 * tasks


def _entry(
    target: Target, stack: PipelineStack | CeleryStack, mode: str, result: LoadResult
) -> dict[str, Any]:
    """One run's entry; for the pipeline with the median time of each stage of a task."""
    summary = result.summary(target.terminal_ok)
    entry: dict[str, Any] = {
        "stack": target.name,
        "mode": mode,
        "config": stack.config,
        "summary": summary,
    }
    if isinstance(target, PipelineTarget):
        entry["stages_ms"] = stage_breakdown(result.records, target.bodies)
        entry["fallback_polls"] = target.fallback_polls
    return entry


def _warm_up(
    stack: PipelineStack | CeleryStack,
    target: Target,
    pairs: list[tuple[str, str]],
    clients: int,
    max_rounds: int,
) -> dict[str, Any]:
    """Rounds of ``pairs`` through the stack until the CPU per task of its JIT
    compiling processes settles (one round for a stack with none).

    A fresh broker spends most of its CPU on JIT compilation for its first few
    thousand tasks (9-15 ms per task at first, 3.5-4 ms when warm); a measurement
    of that is a measurement of the compiler, not of a service that has been up
    a while. Returns each round's CPU ms per task, per process."""
    watched = set(stack.jit_processes)
    rounds: list[dict[str, float]] = []
    while len(rounds) < max_rounds:
        before = cpu_seconds(stack.pids())
        result = asyncio.run(run_load(target, stack.base_url, pairs, clients, 120.0, set()))
        after = cpu_seconds(stack.pids())
        summary = result.summary(target.terminal_ok)
        if summary["succeeded"] != len(pairs):
            raise RuntimeError(f"{target.name} warm-up failed: {summary}")
        rounds.append(
            {
                name: round((after[name] - before[name]) * 1000 / len(pairs), 2)
                for name in before.keys() & after.keys()
            }
        )
        if not watched or settled_twice(rounds, watched):
            break
    _say(
        f"{target.name}: warm after {len(rounds)} round(s) of {len(pairs)} tasks "
        f"(CPU ms per task: {', '.join(str(round(sum(r.values()), 1)) for r in rounds)})"
    )
    return {"tasks_per_round": len(pairs), "watched": sorted(watched), "cpu_ms_per_task": rounds}


def _cpu(stack: PipelineStack | CeleryStack) -> dict[str, float]:
    """CPU seconds used so far by each process tree of the stack, and by this process
    (the load generator; its own time only, not its children's)."""
    return cpu_seconds(stack.pids()) | {"load generator": time.process_time()}


def _run_stack(
    stack: PipelineStack | CeleryStack,
    target_for: Callable[[float], Target],
    pairs: list[tuple[str, str]],
    args: argparse.Namespace,
    encoder: SentenceEncoder,
    unloaded: int,
) -> Iterator[dict[str, Any]]:
    """Burst, then (when ``unloaded``) one task at a time; yields one entry per mode."""
    name = target_for(0).name
    warm = make_pairs(warm_up_tasks(args), seed=1)
    warm_up = _warm_up(
        stack, target_for(0.01), warm, min(args.clients, len(warm)), args.warm_up_rounds
    )
    step = max(1, len(pairs) // max(1, args.sample))
    sample = set(range(0, len(pairs), step))
    burst_target, single_target = target_for(args.poll_ms / 1000), target_for(0.01)
    with RssSampler(stack.pids()) as rss:
        config = ", ".join(f"{k}={v}" for k, v in stack.config.items())
        _say(f"{name} ({config}): {len(pairs)} tasks from {args.clients} clients")
        bound = _bound(args, len(pairs))
        load_before, cpu_before, host_before = os.getloadavg()[0], _cpu(stack), host_cpu()
        burst = asyncio.run(
            run_load(burst_target, stack.base_url, pairs, args.clients, bound, sample)
        )
        load_after, cpu_after, host_after = os.getloadavg()[0], _cpu(stack), host_cpu()
        asyncio.run(read_histories(burst_target, stack.base_url, burst.records))
        single = None
        if unloaded:
            _say(f"{name}: {unloaded} tasks one at a time")
            single = asyncio.run(
                run_load(single_target, stack.base_url, pairs[:unloaded], 1, 120.0, set())
            )
            asyncio.run(read_histories(single_target, stack.base_url, single.records))
    entry = _entry(burst_target, stack, "burst", burst)
    outputs = {r.index: r.output for r in burst.records if r.index in sample and r.status}
    entry |= {"rss": rss.peaks(), "verify": verify_outputs(encoder, pairs, outputs)}
    entry["warm_up"] = warm_up
    entry["host_load_1m"] = {"before": round(load_before, 2), "after": round(load_after, 2)}
    entry["host_cpu"] = host_after.since(host_before)
    done = max(1, entry["summary"]["succeeded"])
    entry["cpu_ms_per_task"] = {
        name: round((cpu_after[name] - cpu_before[name]) * 1000 / done, 2)
        for name in cpu_before.keys() & cpu_after.keys()
    }
    summary = entry["summary"]
    _say(f"{name}: {summary['completed_per_s']} tasks/s, p99 {summary['latency_ms']['p99']} ms")
    yield entry
    if single is not None:
        yield _entry(single_target, stack, "unloaded", single)


def _pipeline_target(args: argparse.Namespace) -> Callable[[float], Target]:
    return lambda poll_s: PipelineTarget(poll_s=poll_s, wait_s=args.wait_s, keep_bodies=True)


def _seed_target(poll_s: float) -> Target:
    return SeedTarget(poll_s=poll_s)


def _pipeline_runs(
    args: argparse.Namespace, work: Path, encoder: SentenceEncoder, threads: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    runs: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    with kafka_broker(work) as (bootstrap, broker_pid):
        _say(f"pipeline: Kafka at {bootstrap}")

        def one(workers: int, partitions: int, tasks: int, unloaded: int) -> list[dict[str, Any]]:
            pairs = make_pairs(tasks)
            stack = PipelineStack(bootstrap, broker_pid, workers, partitions, threads, work)
            with stack:
                target = _pipeline_target(args)
                return list(_run_stack(stack, target, pairs, args, encoder, unloaded))

        runs += one(args.workers, args.partitions, args.tasks, args.unloaded)
        if args.sweep:
            small, large = _sweep_sizes(args)
            for workers in (1, 2):
                for partitions in (1, 12):
                    sweep += one(workers, partitions, small, 0)
            sweep += one(args.workers, args.partitions, large, 0)
    return runs, sweep


def _celery_runs(
    args: argparse.Namespace, work: Path, encoder: SentenceEncoder, threads: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    web_workers = min(os.cpu_count() or 1, MAX_DEFAULT_PROCESSES)
    runs: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    with CeleryStack(args.concurrency, web_workers, 8, threads, work) as stack:
        runs += _run_stack(
            stack, _seed_target, make_pairs(args.tasks), args, encoder, args.unloaded
        )
        if args.sweep:
            for tasks in _sweep_sizes(args):
                sweep += _run_stack(stack, _seed_target, make_pairs(tasks), args, encoder, 0)
    return runs, sweep


def _sweep_sizes(args: argparse.Namespace) -> tuple[int, int]:
    return (args.tasks, 2 * args.tasks) if args.quick else (1000, 10_000)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything; returns the results document."""
    started = datetime.now(UTC)
    batch, threads = worker_batch_and_threads()
    _say(f"model ceiling: batch {batch}, {threads} torch thread(s)")
    encoder = load_encoder(threads)
    ceiling_pairs = make_pairs(64 if args.quick else 1024, seed=2)
    rounds = 1 if args.quick else 3
    ceiling = measure_ceiling(encoder, ceiling_pairs, batch, rounds)
    _say(f"model ceiling: {ceiling['pairs_per_s']} pairs/s")
    runs: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="asyncarch-bench-") as tmp:
        for stack, measure in (("pipeline", _pipeline_runs), ("celery", _celery_runs)):
            if args.only not in (None, stack):
                continue
            try:
                more_runs, more_sweep = measure(args, Path(tmp), encoder, threads)
            except Exception as exc:  # one stack's failure still leaves a report of the other
                _say(f"{stack} failed: {exc}")
                errors.append({"stack": stack, "error": f"{type(exc).__name__}: {exc}"[-4000:]})
                continue
            runs += more_runs
            sweep += more_sweep
            if stack == "pipeline":
                # Again right after the pipeline's burst: this host's speed drifts by
                # 10-20% within minutes, and the first measurement is minutes older.
                after = measure_ceiling(encoder, ceiling_pairs, batch, rounds)
                ceiling = bracketed(ceiling, after)
                _say(f"model ceiling after the pipeline: {after['pairs_per_s']} pairs/s")
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_default_threads": torch.get_num_threads(),
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "ceiling": ceiling,
        "runs": runs,
        "sweep": sweep,
        "errors": errors,
    }
    results["ratios"] = report.ratios(results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when every task came back verified, 1 otherwise."""
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every stack and the broker are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        _quick(args)
    results = run(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    paths = report.write_all(results, args.out, stamp)
    print(report.markdown(results))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    clean = (
        not results["errors"]
        and all(
            all(r["summary"][count] == 0 for count in ("lost", "failed", "rejected", "not_sent"))
            for r in results["runs"] + results["sweep"]
        )
        and all(
            r["verify"]["mismatched"] == 0
            for r in results["runs"] + results["sweep"]
            if "verify" in r
        )
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
