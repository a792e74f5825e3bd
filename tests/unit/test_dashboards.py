"""Prometheus scrape config and Grafana dashboard, checked against the code and compose."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("asyncarch", "schemas", "producer_api", "inference_consumer", "stream_processors")
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "asyncarch.json"
# The series prometheus_client exports for a metric of each type.
SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
}
# What the dashboard must show (issue 12): one metric family each at least.
REQUIRED = {
    "throughput": "asyncarch_worker_tasks_total",
    "latency": "asyncarch_processor_task_latency_seconds_bucket",
    "stage latency": "asyncarch_worker_stage_seconds_bucket",
    "batch sizes": "asyncarch_worker_batch_size_bucket",
    "lag": "asyncarch_worker_consumer_lag",
    "retries": "asyncarch_worker_transaction_retries_total",
    "restarts": "asyncarch_supervisor_restarts_total",
    "submissions": "asyncarch_api_tasks_submitted_total",
    # Deliveries of results (issue 11): webhooks, and sinks by scheme and outcome.
    "webhook deliveries": "asyncarch_processor_webhook_attempts_total",
    "sink deliveries": "asyncarch_processor_sink_attempts_total",
}


def metrics_in_code() -> dict[str, str]:
    """Every prometheus_client metric the source defines: name -> type."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                kind = getattr(node.func, "id", getattr(node.func, "attr", None))
                first = node.args[0]
                if kind in SUFFIXES and isinstance(first, ast.Constant):
                    found[str(first.value)] = str(kind)
    return found


def exported_series() -> set[str]:
    """Every series name those metrics export (prometheus_client strips a given _total)."""
    series = set()
    for name, kind in metrics_in_code().items():
        base = name.removesuffix("_total") if kind == "Counter" else name
        series |= {base + suffix for suffix in SUFFIXES[kind]}
    return series


def panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of every panel, rows included."""
    exprs = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            exprs += [target["expr"] for target in inner.get("targets", [])]
    return exprs


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml's services."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert isinstance(services, dict)
    return services


@pytest.fixture(scope="module")
def scrape_jobs() -> dict[str, dict[str, Any]]:
    """prometheus.yml's scrape configs by job name."""
    config = yaml.safe_load(PROMETHEUS.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_the_code_defines_the_metrics_it_is_checked_against() -> None:
    """The source scan finds the metrics, so the checks below can fail."""
    found = metrics_in_code()
    assert found["asyncarch_worker_stage_seconds"] == "Histogram"
    assert found["asyncarch_supervisor_restarts"] == "Counter"
    assert len(found) >= 15


def test_every_queried_metric_exists_in_the_code(dashboard: dict[str, Any]) -> None:
    """Each asyncarch_* series a panel queries is one the services export."""
    exported = exported_series()
    exprs = panel_exprs(dashboard)
    assert len(exprs) >= 12
    queried = {name for expr in exprs for name in re.findall(r"\basyncarch_\w+", expr)}
    unknown = queried - exported
    assert not unknown, f"the dashboard queries series no service exports: {sorted(unknown)}"


def test_the_dashboard_shows_what_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    """Throughput, latency histograms, lag, batch sizes, retries, dead letters and restarts."""
    text = "\n".join(panel_exprs(dashboard))
    for what, series in REQUIRED.items():
        assert series in text, f"no panel shows {what} ({series})"
    assert 'outcome="dead_letter"' in text, "no panel shows dead letters"
    assert "histogram_quantile(" in text
    assert "sum by (scheme, outcome) (rate(asyncarch_processor_sink_attempts_total" in text


def test_the_dashboard_is_importable(dashboard: dict[str, Any]) -> None:
    """A uid, a title, non-overlapping panels, and every query on the selectable data source."""
    assert dashboard["uid"] and dashboard["title"]
    variables = {item["name"]: item for item in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    cells: set[tuple[int, int]] = set()
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    assert len(ids) == len(set(ids))


def test_grafana_provisions_prometheus_and_the_dashboard(compose: dict[str, Any]) -> None:
    """The data source points at the compose Prometheus; the provider loads the mounted folder."""
    mounts = dict(reversed(item.split(":")[:2]) for item in compose["grafana"]["volumes"])
    provisioning = mounts["/etc/grafana/provisioning"]
    dashboards_dir = mounts["/var/lib/grafana/dashboards"]
    assert (ROOT / provisioning).resolve() == (GRAFANA / "provisioning").resolve()
    assert (ROOT / dashboards_dir / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    prometheus_port = compose["prometheus"]["ports"][0].split(":")[-1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    assert source["uid"] == dashboard_datasource_default()
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/asyncarch.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def dashboard_datasource_default() -> str:
    """The data source the dashboard selects by default."""
    data = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in data["templating"]["list"] if v["name"] == "datasource"]
    return str(variable["current"]["value"])


def test_prometheus_config_is_mounted(compose: dict[str, Any]) -> None:
    """Compose's Prometheus reads deploy/prometheus/prometheus.yml."""
    mounts = dict(reversed(item.split(":")[:2]) for item in compose["prometheus"]["volumes"])
    assert (ROOT / mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS.resolve()


def test_prometheus_scrapes_the_api(
    compose: dict[str, Any], scrape_jobs: dict[str, dict[str, Any]]
) -> None:
    """The API job scrapes /metrics on the API's port, a route the API serves."""
    from producer_api.api.routes.health import router

    job = scrape_jobs["asyncarch-api"]
    port = compose["api"]["environment"]["API_PORT"]
    assert job["static_configs"][0]["targets"] == [f"api:{port}"]
    assert job["metrics_path"] in {getattr(route, "path", None) for route in router.routes}


def test_prometheus_scrapes_every_worker_replica(
    compose: dict[str, Any], scrape_jobs: dict[str, dict[str, Any]]
) -> None:
    """DNS discovery of the worker service on WORKER_METRICS_PORT finds every replica."""
    (discovery,) = scrape_jobs["asyncarch-worker"]["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["type"] == "A"
    assert discovery["port"] == int(compose["worker"]["environment"]["WORKER_METRICS_PORT"])


def test_prometheus_scrapes_every_processor_replica(
    compose: dict[str, Any], scrape_jobs: dict[str, dict[str, Any]]
) -> None:
    """Each processor's own address and port, on the /metrics/ view the app registers."""
    views = (ROOT / "stream_processors" / "views.py").read_text()
    job = scrape_jobs["asyncarch-processor"]
    assert f'@app.page("{job["metrics_path"]}")' in views
    expected = {
        f"{svc['environment']['PROCESSOR_WEB_HOST']}:{svc['environment']['PROCESSOR_WEB_PORT']}"
        for svc in compose.values()
        if svc.get("command") == "processor"
    }
    assert expected and set(job["static_configs"][0]["targets"]) == expected
