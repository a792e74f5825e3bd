"""Fixtures of the resilience tests: an own killable pipeline, sizes, the report.

Sizes: ``CHAOS_TASKS`` is the number of tasks over all fault tests (quick form
by default, 10,000 under ``make chaos``); ``CHAOS_BROKER_DOWN_S`` how long the
broker stays dead. Every fault test adds a row to the table that is printed at
the end of the session and written to ``tests/resilience/results/latest.md``
(``quick.md`` for the quick form).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.resilience.faults import ChaosSize, FaultRow
from tests.resilience.pipeline import ChaosPipeline

QUICK_TASKS = 250
LOADED_FAULTS = 5  # fault tests that run under load and share CHAOS_TASKS
RESULTS = Path(__file__).parent / "results"
# Service logs of every chaos pipeline are kept here after it stops (pytest's
# own temporary directories are rotated away by later runs).
KEPT_LOGS = Path(tempfile.gettempdir()) / "asyncarch-chaos-logs"


_rows: list[FaultRow] = []


@pytest.fixture(scope="session")
def chaos_size() -> ChaosSize:
    total = int(os.environ.get("CHAOS_TASKS", QUICK_TASKS))
    full = total > QUICK_TASKS
    per_fault = max(30, total // LOADED_FAULTS)
    return ChaosSize(
        tasks_per_fault=per_fault,
        rate_per_s=float(os.environ.get("CHAOS_RATE", 25 if full else 5)),
        broker_down_s=float(os.environ.get("CHAOS_BROKER_DOWN_S", 60 if full else 10)),
        full=full,
    )


@pytest.fixture(scope="session")
def encoder() -> Any:
    """The model, loaded in the test process, to recompute a sample of results."""
    from inference_consumer.config import WorkerSettings
    from inference_consumer.model import SentenceEncoder

    settings = WorkerSettings()
    return SentenceEncoder(settings.resolved_model_dir(), settings.model_name, "cpu", threads=1)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosPipeline]:
    """A pipeline on its own broker, shared by a module's fault tests."""
    pipeline = ChaosPipeline(tmp_path_factory.mktemp("chaos"))
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.stop()
        shutil.copytree(pipeline.log_dir, KEPT_LOGS / pipeline.topics.prefix, dirs_exist_ok=True)


@pytest.fixture
def healthy(chaos: ChaosPipeline) -> ChaosPipeline:
    """The module's pipeline with every process running and the API ready."""
    chaos.heal()
    chaos.wait_ready()
    chaos.wait_processing()
    deadline = time.monotonic() + 60
    while not chaos.processor_ready() and time.monotonic() < deadline:
        time.sleep(0.3)
    return chaos


@pytest.fixture
def record_fault() -> Any:
    """Adds a row to the session's chaos table."""
    return lambda row: _rows.append(row)


def _table() -> str:
    header = (
        "| fault | submitted | accepted | completed | lost | duplicated "
        "| time to recover | notes |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = [
        f"| {r.fault} | {r.submitted} | {r.accepted} | {r.completed} | {r.lost} | "
        f"{r.duplicated} | {'-' if r.recover_s is None else f'{r.recover_s:.1f} s'} | {r.notes} |"
        for r in _rows
    ]
    return header + "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the chaos table and keep it in ``tests/resilience/results/latest.md``."""
    if not _rows:
        return
    table = _table()
    terminalreporter.section("chaos: faults under load")
    terminalreporter.write(table)
    terminalreporter.write(f"service logs: {KEPT_LOGS}/<topic prefix>\n")
    full = int(os.environ.get("CHAOS_TASKS", QUICK_TASKS)) > QUICK_TASKS
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.mkdir(exist_ok=True)
    # The full run's table is kept in git; the quick form's (make test) is not.
    (RESULTS / ("latest.md" if full else "quick.md")).write_text(
        f"# {'make chaos' if full else 'quick form'}: {stamp}\n\n{table}"
    )
