"""``python -m bench.run --quick``: both stacks run, every task comes back, files are written.

Counts only: numbers on a shared test machine say nothing, so no timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncarch.config import KafkaSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_quick_bench_writes_results_and_loses_nothing(kafka: KafkaSettings, tmp_path: Path) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=840)
    except subprocess.TimeoutExpired:
        bench.terminate()  # the bench stops its stacks on SIGTERM
        stdout, stderr = bench.communicate(timeout=60)
    assert bench.returncode == 0, f"{stdout[-3000:]}\n{stderr[-5000:]}"

    files = {p.suffix: p for p in tmp_path.iterdir()}
    assert set(files) == {".json", ".md", ".png"}
    assert files[".png"].read_bytes().startswith(b"\x89PNG")
    assert "## Ratios" in files[".md"].read_text()
    results = json.loads(files[".json"].read_text())

    ceiling = results["ceiling"]  # measured before the pipeline and right after its burst
    before, after = ceiling["before_pipeline_pairs_per_s"], ceiling["after_pipeline_pairs_per_s"]
    assert before > 0 and after > 0 and ceiling["pairs_per_s"] == round((before + after) / 2, 1)
    modes = {(run["stack"], run["mode"]) for run in results["runs"]}
    assert modes == {(s, m) for s in ("pipeline", "celery") for m in ("burst", "unloaded")}
    for run in results["runs"]:
        s = run["summary"]
        assert s["tasks"] == (40 if run["mode"] == "burst" else 5), run
        assert s["accepted"] + s["rejected"] + s["not_sent"] == s["tasks"], run
        assert s["succeeded"] + s["failed"] + s["lost"] == s["accepted"], run
        assert (s["lost"], s["failed"], s["rejected"], s["not_sent"]) == (0, 0, 0, 0), run
    for run in (r for r in results["runs"] if r["mode"] == "burst"):
        assert run["verify"]["checked"] > 0
        assert run["verify"]["mismatched"] == 0, run["verify"]
        assert all(peak["peak_rss_mib"] > 0 for peak in run["rss"].values()), run["rss"]
        warm = run["warm_up"]  # --quick: one round of 8 tasks, measured per process
        assert warm["tasks_per_round"] == 8 and len(warm["cpu_ms_per_task"]) == 1, warm
        assert sum(warm["cpu_ms_per_task"][0].values()) > 0, warm
        host = run["host_cpu"]  # the whole host's cores over the burst
        assert host["cores"] == os.cpu_count() and host["busy_cores"] > 0, host
        assert (
            abs(host["busy_cores"] + host["idle_cores"] + host["stolen_cores"] - host["cores"])
            < 0.1
        ), host
    pipeline_burst = next(
        r for r in results["runs"] if (r["stack"], r["mode"]) == ("pipeline", "burst")
    )
    # The histories are read after the burst's CPU: every stage still has its figures.
    assert set(pipeline_burst["stages_ms"]) == {
        "api_202",
        "pending_to_running",
        "running_to_success",
        "success_to_seen",
    }, pipeline_burst["stages_ms"]
    assert set(results["ratios"]) == {
        "pipeline_over_ceiling_tasks_per_s",
        "pipeline_over_celery_tasks_per_s",
        "p99_pipeline_over_celery_burst",
        "unloaded_p50_pipeline_over_celery",
    }
