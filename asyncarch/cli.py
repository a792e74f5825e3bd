"""The ``asyncarch`` command: one verb per service, plus the local broker and ``up``."""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncarch.config import KafkaSettings
from schemas.states import ALL_STATES

if TYPE_CHECKING:
    from asyncarch.client import AsyncarchClient

__all__ = ["main"]


def _kafka(args: argparse.Namespace) -> int:
    from asyncarch.exceptions import AsyncarchError
    from asyncarch.local_kafka import LocalKafka, cache_root

    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        print(
            f"KAFKA_BOOTSTRAP_SERVERS is set: using {os.environ['KAFKA_BOOTSTRAP_SERVERS']}, "
            "nothing to provision"
        )
        return 0
    state_dir = (
        Path(tempfile.mkdtemp(prefix="asyncarch-kafka-"))
        if args.ephemeral
        else cache_root() / "kafka-node"
    )
    broker = LocalKafka(
        state_dir=state_dir, port=args.port, controller_port=args.controller_port, heap=args.heap
    )
    try:
        if args.action == "up":
            pid = broker.start(detach=True)
            print(f"Kafka running: {broker.bootstrap_servers} (pid {pid}, data {broker.state_dir})")
        elif args.action == "down":
            print("Kafka stopped" if broker.stop() else "Kafka was not running")
    except AsyncarchError as exc:
        print(f"asyncarch kafka {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.action != "status":
        return 0
    running = broker.running_pid()
    print(f"Kafka running (pid {running})" if running else "Kafka not running")
    return 0 if running else 3


def _topics(_: argparse.Namespace) -> int:
    from asyncarch.kafka_admin import ensure_topics, wait_for_broker
    from schemas.topics import TopicSettings

    kafka = KafkaSettings()
    wait_for_broker(kafka, 30)
    created = ensure_topics(kafka, TopicSettings())
    print("created: " + (", ".join(created) or "nothing (all exist)"))
    return 0


# Allocations between two young collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Move what the imports built (modules, classes, the app) out of the cyclic
    garbage collector's sight, and collect the young generation less often.

    Measured under a burst with the default thresholds, the API ran a full
    collection every ~2,000 tasks, each ~100 ms with the event loop stopped,
    scanning objects that live as long as the process; the processor ran a
    young collection every ~45 tasks. Reference counting frees nearly all of
    a request's garbage; the collector is only for cycles, and those still
    get collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def _api(args: argparse.Namespace) -> int:
    from producer_api.main import main as api_main

    freeze_startup_objects()
    flags = {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile}
    api_main(**{k: v for k, v in flags.items() if v is not None})
    return 0


def skip_unused_model_imports() -> None:
    """Packages the worker never uses, marked missing before the model is imported
    (a None entry makes importlib report a package missing). Call it first.

    - scikit-learn: the model package depends on sentence-transformers, which
      installs it; transformers then imports it (and the SciPy modules it needs)
      with its model classes, for assisted generation only: ~1.2 s of every
      (re)start and ~70 MiB of RSS per worker.
    - Triton, without a GPU: transformers' model classes import torch._dynamo,
      which imports Triton when installed (the PyPI torch depends on it). It
      compiles GPU kernels; on the CPU it is ~65 MiB of RSS per worker for nothing.
    """
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
    import torch

    if not torch.cuda.is_available():
        sys.modules.setdefault("triton", None)  # type: ignore[arg-type]


def _worker(_: argparse.Namespace) -> int:
    skip_unused_model_imports()
    from inference_consumer.worker import main as worker_main

    freeze_startup_objects()
    worker_main()
    return 0


def _processor(_: argparse.Namespace) -> int:
    from stream_processors.main import main as processor_main

    freeze_startup_objects()
    processor_main()
    return 0


def _tail(args: argparse.Namespace) -> int:
    from asyncarch.tail import TailOptions, run_tail

    options = TailOptions(
        states=frozenset(args.state or ()),
        from_beginning=args.from_beginning,
        group_id=args.group,
        as_json=args.json,
    )
    return run_tail(options)


def _up(args: argparse.Namespace) -> int:
    from asyncarch.up import ApiTls, SupervisorSettings, run_up

    flags = {
        "workers": args.workers,
        "metrics_port": args.metrics_port,
        "kafka_port": args.kafka_port,
        "kafka_controller_port": args.kafka_controller_port,
    }
    settings = SupervisorSettings(**{k: v for k, v in flags.items() if v is not None})
    return run_up(settings, ApiTls(args.ssl_certfile, args.ssl_keyfile))


def _submit(args: argparse.Namespace) -> int:
    if args.file is not None:
        if not args.query or not args.file.is_file():
            print("asyncarch submit: --file needs an existing file and --query", file=sys.stderr)
            return 2
        return _submit_with(
            args, lambda client: client.submit_document(args.file, args.query, top_k=args.top_k)
        )
    inputs = _task_inputs(args)
    if inputs is None:
        print(
            "asyncarch submit: similarity needs --item-a and --item-b, embed needs --text",
            file=sys.stderr,
        )
        return 2
    return _submit_with(args, lambda client: client.submit(args.kind, inputs))


def _submit_with(args: argparse.Namespace, submit: Callable[[Any], Any]) -> int:
    """Submit through the client; print the id, or with --wait follow it to the result."""
    from asyncarch.client import ClientError, TaskTimeout, TlsSetupError

    try:
        with _client(args) as client:
            task = submit(client)
            if not args.wait:
                print(task.task_id)
                return 0
            return _wait_and_print(client, task.task_id, args.timeout)
    except ClientError as exc:
        print(f"asyncarch submit: {exc}", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error.get('field')}: {error.get('message')}", file=sys.stderr)
        return 2
    except (TlsSetupError, TaskTimeout) as exc:
        print(f"asyncarch submit: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, TlsSetupError) else 3


def _client(args: argparse.Namespace) -> AsyncarchClient:
    """The client for --url (default: this machine's API) with its HTTPS trust."""
    from asyncarch.client import CA_BUNDLE_ENV, AsyncarchClient
    from producer_api.core.config import ApiSettings

    # An explicit --ca-bundle or --insecure beats the environment's bundle.
    explicit = args.ca_bundle is not None or args.insecure
    ca_bundle = args.ca_bundle if explicit else os.environ.get(CA_BUNDLE_ENV) or None
    url = args.url or ApiSettings().base_url
    return AsyncarchClient(url, ca_bundle=ca_bundle, insecure=args.insecure)


def _task_inputs(args: argparse.Namespace) -> dict[str, Any] | None:
    """The task's inputs from the flags, or None when they do not fit the kind."""
    pair = (args.item_a, args.item_b)
    if args.kind == "embed":
        return {"texts": args.text} if args.text and pair == (None, None) else None
    if None in pair or args.text:
        return None
    return {"item_a": args.item_a, "item_b": args.item_b}


def _wait_and_print(client: AsyncarchClient, task_id: str, timeout_s: float) -> int:
    """Follow the task (transitions to stderr), then print its result JSON to stdout."""
    started = time.monotonic()
    print(f"submitted {task_id}", file=sys.stderr)

    def progress(body: dict[str, Any]) -> None:
        attempt = f" (attempt {body['attempt']})" if body.get("attempt", 0) > 1 else ""
        done = f" {body['progress']:.0%}" if body.get("progress") is not None else ""
        line = f"{time.monotonic() - started:6.2f}s {body['status']}{attempt}{done}"
        print(line, file=sys.stderr, flush=True)

    final = client.wait(task_id, timeout_s=timeout_s, on_status=progress)
    print(json.dumps(client.result(task_id)))
    return 0 if final["status"] == "SUCCESS" else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``asyncarch <verb>``."""
    parser = argparse.ArgumentParser(prog="asyncarch", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    kafka = verbs.add_parser("kafka", help="a local Apache Kafka broker (KRaft) from Maven Central")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.add_argument("--ephemeral", action="store_true", help="data in a temporary folder")
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--controller-port", type=int, default=9093)
    kafka.add_argument("--heap", default="512m", help="JVM heap, e.g. 512m or 1g")
    kafka.set_defaults(run=_kafka)
    for name, run, text in [
        ("topics", _topics, "create the pipeline's topics (idempotent)"),
        ("worker", _worker, "an inference worker (consumer group member)"),
        ("processor", _processor, "the Faust stream processor (task-state table)"),
    ]:
        verbs.add_parser(name, help=text).set_defaults(run=run)
    _add_api_parser(verbs)
    _add_up_parser(verbs)
    _add_submit_parser(verbs)
    _add_tail_parser(verbs)
    _add_bench_parser(verbs)
    return parser


def _add_api_parser(verbs: Any) -> None:
    api = verbs.add_parser(
        "api",
        help="the producer API (FastAPI)",
        description="Serves HTTPS when given a certificate and its key (flags override "
        "API_SSL_CERTFILE and API_SSL_KEYFILE); exits 1 at once if they cannot be used.",
    )
    api.add_argument("--ssl-certfile", help="PEM certificate (chain) to serve HTTPS with")
    api.add_argument("--ssl-keyfile", help="its unencrypted PEM private key")
    api.set_defaults(run=_api)


def _add_up_parser(verbs: Any) -> None:
    up = verbs.add_parser(
        "up",
        help="Kafka and every service, supervised (restarts with backoff); Ctrl-C stops all",
        description="Restarts a crashed service with exponential backoff; Ctrl-C, SIGTERM or "
        "SIGHUP stop everything, and nothing outlives it. Flags override SUPERVISOR_* settings. "
        "Exits 1 if another run owns the cache folder or a port it needs.",
    )
    up.add_argument("--workers", type=int, help="inference worker slots (default 1)")
    up.add_argument("--metrics-port", type=int, help="serve the supervisor's /metrics here")
    up.add_argument("--kafka-port", type=int, help="the local broker's port (default 9092)")
    up.add_argument("--kafka-controller-port", type=int, help="its controller port (9093)")
    up.add_argument(
        "--ssl-certfile", help="serve the API over HTTPS with this PEM certificate (chain)"
    )
    up.add_argument("--ssl-keyfile", help="its unencrypted PEM private key")
    up.set_defaults(run=_up)


def _add_tail_parser(verbs: Any) -> None:
    tail = verbs.add_parser(
        "tail",
        help="print task-state changes as they arrive (an example downstream subscriber)",
        description="Reads the public compacted task-state topic with a consumer group of its "
        "own (read_committed) and prints one line per change; EXPIRED marks a tombstone. "
        "Ctrl-C stops it.",
    )
    tail.add_argument(
        "--state",
        action="append",
        choices=[*ALL_STATES, "EXPIRED"],
        help="only changes into this state (repeatable; default: all)",
    )
    tail.add_argument(
        "--from-beginning",
        action="store_true",
        help="replay the topic from offset 0 (every task's latest state), then follow it",
    )
    tail.add_argument(
        "--group", help="a durable consumer group that resumes where it stopped (default: fresh)"
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(run=_tail)


def _add_bench_parser(verbs: Any) -> None:
    # prefix_chars="+": every option after ``bench`` is the bench's own (bench/run.py).
    bench = verbs.add_parser(
        "bench",
        prefix_chars="+",
        add_help=False,
        help="pipeline vs model ceiling vs the seed's Flask+Celery+Redis (source checkout; "
        "asyncarch bench -h)",
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_bench)


def _bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[1]
    if not (root / "bench" / "run.py").is_file():
        print("asyncarch bench: needs a source checkout", file=sys.stderr)
        return 2
    sys.path.insert(0, str(root))
    from bench.run import main as bench_main

    return bench_main(args.bench_args)


def _add_submit_parser(verbs: Any) -> None:
    submit = verbs.add_parser(
        "submit",
        help="submit a task over HTTP and print its id",
        description="Exit status: 0 SUCCESS (or submitted), 1 FAILED or CANCELLED, "
        "2 refused by the API or unreachable, 3 --timeout passed.",
    )
    submit.add_argument("--kind", choices=["similarity", "embed"], default="similarity")
    submit.add_argument("--item-a", help="first text of a similarity task")
    submit.add_argument("--item-b", help="second text of a similarity task")
    submit.add_argument("--text", action="append", help="a text to embed (repeatable)")
    submit.add_argument("--file", type=Path, help="a .txt, .md or .pdf document to search")
    submit.add_argument("--query", help="what to search the --file document for")
    submit.add_argument("--top-k", type=int, default=5, help="passages to return (--file)")
    submit.add_argument(
        "--wait", action="store_true", help="follow the task, then print its result JSON"
    )
    submit.add_argument("--url", help="the API's base URL (default: ApiSettings().base_url)")
    submit.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits")
    submit.add_argument(
        "--ca-bundle",
        type=Path,
        help="PEM file of the CAs to trust for an https:// API, e.g. a self-signed API's "
        "certificate (default: $ASYNCARCH_CA_BUNDLE, else the system's CAs)",
    )
    submit.add_argument(
        "--insecure", action="store_true", help="do not verify the API's HTTPS certificate"
    )
    submit.set_defaults(run=_submit)


def main(argv: list[str] | None = None) -> int:
    """Run a verb; returns its exit status. ``kill -USR1 <pid>`` prints every thread's
    stack to stderr, in every verb."""
    # The process's own stderr: a caller may have swapped sys.stderr for an object
    # without a file descriptor (pytest's capture does).
    faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
