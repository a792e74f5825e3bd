"""The run's results as JSON, a Markdown table and a PNG plot, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["markdown", "ratios", "write_all"]


def _burst(results: dict[str, Any], stack: str) -> dict[str, Any] | None:
    return next((r for r in results["runs"] if r["stack"] == stack and r["mode"] == "burst"), None)


def _unloaded(results: dict[str, Any], stack: str) -> dict[str, Any] | None:
    runs = results["runs"]
    return next((r for r in runs if r["stack"] == stack and r["mode"] == "unloaded"), None)


def _div(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """Pipeline over ceiling and over Celery, from the main (non-sweep) runs."""
    pipe, celery = _burst(results, "pipeline"), _burst(results, "celery")
    pipe_u, celery_u = _unloaded(results, "pipeline"), _unloaded(results, "celery")
    ps, cs = (pipe or {}).get("summary", {}), (celery or {}).get("summary", {})
    return {
        "pipeline_over_ceiling_tasks_per_s": _div(
            ps.get("completed_per_s"), results["ceiling"]["pairs_per_s"]
        ),
        "pipeline_over_celery_tasks_per_s": _div(
            ps.get("completed_per_s"), cs.get("completed_per_s")
        ),
        "p99_pipeline_over_celery_burst": _div(
            ps.get("latency_ms", {}).get("p99"), cs.get("latency_ms", {}).get("p99")
        ),
        "unloaded_p50_pipeline_over_celery": _div(
            (pipe_u or {}).get("summary", {}).get("latency_ms", {}).get("p50"),
            (celery_u or {}).get("summary", {}).get("latency_ms", {}).get("p50"),
        ),
    }


def _config_text(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items())


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _run_rows(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| stack | mode | config | tasks | clients | submits/s | completed/s | p50 ms | p95 ms "
        "| p99 ms | lost | failed | rejected | HTTP req/task | peak RSS MiB | verified |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        s, lat = run["summary"], run["summary"]["latency_ms"]
        rss = sum(p["peak_rss_mib"] for p in run.get("rss", {}).values())
        check = run.get("verify")
        verified = f"{check['checked'] - check['mismatched']}/{check['checked']}" if check else "-"
        cells = [
            run["stack"], run["mode"], _config_text(run["config"]), s["tasks"], s["clients"],
            s["submits_per_s"], s["completed_per_s"], lat["p50"], lat["p95"], lat["p99"],
            s["lost"], s["failed"], s["rejected"], s["http_requests_per_task"],
            round(rss, 1) if rss else None, verified,
        ]  # fmt: skip
        rows.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return rows


def _rss_rows(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| stack | process | peak RSS MiB | processes in tree | CPU ms per task (burst) |",
        "|---|---|---:|---:|---:|",
    ]
    seen = set()
    for run in runs:
        if run["stack"] in seen or not run.get("rss"):
            continue
        seen.add(run["stack"])
        cpu = run.get("cpu_ms_per_task", {})
        for name in [*run["rss"], *(n for n in cpu if n not in run["rss"])]:
            peak = run["rss"].get(name, {})
            cells = [run["stack"], name, peak.get("peak_rss_mib"), peak.get("processes")]
            rows.append("| " + " | ".join(_fmt(c) for c in [*cells, cpu.get(name)]) + " |")
    return rows


STAGES = ("api_202", "pending_to_running", "running_to_success", "success_to_seen")


def _p50_p95(stage: dict[str, float] | None) -> str | None:
    return f"{_fmt(stage['p50'])} / {_fmt(stage['p95'])}" if stage else None


def _stage_rows(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| mode | config | tasks | " + " | ".join(STAGES) + " |",
        "|---|---|---:|" + "---:|" * len(STAGES),
    ]
    for run in (r for r in runs if r.get("stages_ms")):
        cells = [run["mode"], _config_text(run["config"]), run["summary"]["tasks"]]
        cells += [_p50_p95(run["stages_ms"].get(stage)) for stage in STAGES]
        rows.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return rows


def _load_note(results: dict[str, Any]) -> str:
    """How busy the host was: on a shared machine that decides more than the stacks do."""
    loads = {
        f"{r['stack']} {r['host_load_1m']['before']:g}→{r['host_load_1m']['after']:g}"
        for r in results["runs"]
        if "host_load_1m" in r
    }
    peak = max(
        (max(r["host_load_1m"].values()) for r in results["runs"] if "host_load_1m" in r),
        default=0.0,
    )
    note = f"Host load (1-min average) before→after each burst: {', '.join(sorted(loads))}."
    busy = [
        f"{r['stack']} {r['host_cpu']['busy_cores']:g} busy, "
        f"{r['host_cpu']['idle_cores']:g} idle, {r['host_cpu']['stolen_cores']:g} stolen"
        for r in results["runs"]
        if "host_cpu" in r
    ]
    if busy:
        cores = results["host"]["cpus"]
        note += f" Cores during each burst, of {cores}: {'; '.join(busy)}."
    if peak > (results["host"]["cpus"] or 1):
        note += " **Above the CPU count: other work shared this machine; the numbers are noisy.**"
    return note


def _warm_up_note(results: dict[str, Any]) -> str:
    """How each stack was warmed before its burst was measured."""
    parts = []
    for run in results["runs"]:
        warm = run.get("warm_up")
        if run["mode"] != "burst" or not warm:
            continue
        rounds = warm["cpu_ms_per_task"]
        part = f"{run['stack']} {len(rounds)} round(s) of {warm['tasks_per_round']} tasks"
        for name in warm.get("watched", []):
            costs = ", ".join(f"{r[name]:g}" for r in rounds if name in r)
            part += f" ({name} CPU ms per task: {costs})"
        parts.append(part)
    if not parts:
        return ""
    return (
        "Before its burst, each stack ran rounds of tasks at full concurrency, unmeasured, "
        "until the CPU per task of its JIT-compiling processes (the broker's JVM) stayed "
        "within 10% for two rounds (a fresh broker's compiler takes most of its CPU for its "
        "first few thousand tasks; the Celery stack has none, so one round): "
        + "; ".join(parts)
        + "."
    )


def _bracket_note(ceiling: dict[str, Any]) -> str:
    if "after_pipeline_pairs_per_s" not in ceiling:
        return ""
    return (
        f"(the mean of {ceiling['before_pipeline_pairs_per_s']:g} before the pipeline ran and "
        f"{ceiling['after_pipeline_pairs_per_s']:g} right after its burst) "
    )


def markdown(results: dict[str, Any]) -> str:
    """The whole run as Markdown; the ratios come last."""
    ceiling = results["ceiling"]
    lines = [
        f"# asyncarch bench — {results['started_at']}",
        "",
        f"Host: {results['host']['cpus']} CPUs, torch {results['host']['torch']}, "
        f"Python {results['host']['python']}. Latency: submit sent → result read back. "
        + _warm_up_note(results),
        "",
        f"**Model ceiling** (SentenceEncoder direct, batch {ceiling['batch']}, "
        f"{ceiling['torch_threads']} torch thread(s)): **{ceiling['pairs_per_s']:g} pairs/s** "
        + _bracket_note(ceiling)
        + f"(one task alone: {ceiling['single_task_ms_p50']:g} ms). This is one process; N "
        "workers on N free cores can reach up to N times it.",
        "",
        "## Runs",
        "",
        *_run_rows(results["runs"]),
        "",
        _load_note(results),
    ]
    if results.get("sweep"):
        lines += ["", "## Sweep", "", *_run_rows(results["sweep"])]
    lines += [
        "",
        "## Memory (sampled peak) and CPU per task, main runs",
        "",
        *_rss_rows(results["runs"]),
    ]
    lines += ["", "## Where a pipeline task spends its time (ms, p50 / p95)", ""]
    lines += _stage_rows(results["runs"] + results.get("sweep", []))
    for run in results["runs"] + results.get("sweep", []):
        if run["summary"]["errors"]:
            errors = "; ".join(run["summary"]["errors"])
            lines += ["", f"Client errors, {run['stack']} {run['summary']['tasks']}: {errors}"]
    for failure in results.get("errors", []):
        lines += ["", f"**{failure['stack']} failed:**", "", "```", failure["error"], "```"]
    lines += ["", "## Ratios", ""]
    lines += [f"- {name}: **{_fmt(value)}**" for name, value in results["ratios"].items()]
    return "\n".join(lines) + "\n"


COLOURS = {
    ("pipeline", "burst"): "tab:blue",
    ("pipeline", "unloaded"): "lightsteelblue",
    ("celery", "burst"): "tab:orange",
    ("celery", "unloaded"): "navajowhite",
}


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput beside the ceiling, and latency percentiles, burst and unloaded."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    runs = results["runs"] + results.get("sweep", [])
    bursts = [r for r in runs if r["mode"] == "burst"]
    labels = ["model ceiling"] + [f"{r['stack']}\n{_short(r)}" for r in bursts]
    values = [results["ceiling"]["pairs_per_s"]] + [r["summary"]["completed_per_s"] for r in bursts]
    colours = ["grey"] + ["tab:blue" if r["stack"] == "pipeline" else "tab:orange" for r in bursts]
    left.bar(range(len(values)), values, color=colours)
    left.set_xticks(range(len(values)), labels, fontsize=7, rotation=30, ha="right")
    left.set_ylabel("similarity tasks/s")
    left.set_title("Completed tasks/s (burst) vs the model ceiling")
    main = list(results["runs"])
    width = 0.8 / max(1, len(main))
    for i, run in enumerate(main):
        lat = run["summary"]["latency_ms"]
        ys = [lat[p] or 0 for p in ("p50", "p95", "p99")]
        xs = [x + i * width for x in range(3)]
        colour = COLOURS.get((run["stack"], run["mode"]), "grey")
        right.bar(xs, ys, width, label=f"{run['stack']} {run['mode']}", color=colour)
    right.set_xticks([x + width * (len(main) - 1) / 2 for x in range(3)], ["p50", "p95", "p99"])
    right.set_yscale("log")
    right.set_ylabel("submit → result, ms (log)")
    right.set_title("Latency")
    right.legend(fontsize=8, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(run: dict[str, Any]) -> str:
    config = run["config"]
    if run["stack"] == "pipeline":
        return f"w={config['workers']} p={config['partitions']} n={run['summary']['tasks']}"
    return f"c={config['celery_concurrency']} n={run['summary']['tasks']}"


def write_all(results: dict[str, Any], out_dir: Path, stamp: str) -> dict[str, Path]:
    """Write ``<stamp>.json``, ``.md`` and ``.png`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{stamp}.{ext}" for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["md"].write_text(markdown(results))
    plot(results, paths["png"])
    return paths
