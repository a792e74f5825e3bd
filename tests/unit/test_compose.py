"""docker-compose.yml and Dockerfile, checked statically against the code they run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from asyncarch.cli import build_parser
from asyncarch.config import KafkaSettings
from inference_consumer.config import WorkerSettings
from producer_api.core.config import ApiSettings
from schemas.topics import TopicSettings
from stream_processors.config import ProcessorSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

DESIGN_SERVICES = {"kafka", "schema-registry", "kafka-ui", "api", "worker", "processor"}
OUR_VERBS = {"topics", "api", "worker", "processor"}
SETTINGS: dict[str, type[BaseSettings]] = {
    "KAFKA_": KafkaSettings,
    "TOPIC_": TopicSettings,
    "API_": ApiSettings,
    "WORKER_": WorkerSettings,
    "PROCESSOR_": ProcessorSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file, YAML anchors and merge keys resolved."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every service by name."""
    found = compose["services"]
    assert isinstance(found, dict) and found
    return found


@pytest.fixture(scope="module")
def ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services built from our Dockerfile."""
    built = {name: svc for name, svc in services.items() if "build" in svc}
    assert built, "no service is built from the Dockerfile"
    return built


# What an operator sets before `docker compose up` (compose interpolates ${NAME...}).
OPERATOR_ENV = {
    "ASYNCARCH_API_KEYS": "tenant-a:" + "0" * 64,
    "ASYNCARCH_WEBHOOK_SECRET": "a-real-secret-from-the-operator",
}


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from OPERATOR_ENV."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in OPERATOR_ENV:
            return OPERATOR_ENV[name]
        assert op != ":?", f"${{{name}}} must be set by the operator: {rest}"
        return rest if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, from either compose syntax, interpolated."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: interpolate("" if value is None else str(value)) for key, value in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    """A service's command as argv."""
    raw = service.get("command")
    assert raw is not None, "no command"
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as {service: condition}, from either compose syntax."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def kafka_internal_listeners(services: dict[str, dict[str, Any]]) -> set[str]:
    """host:port of every advertised listener whose host is the kafka service."""
    advertised = env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    endpoints = {urlsplit(item.strip()).netloc for item in advertised.split(",")}
    return {endpoint for endpoint in endpoints if endpoint.split(":")[0] == "kafka"}


def dockerfile_instruction(name: str) -> str:
    """The argument of the last top-level Dockerfile instruction with that name."""
    found = re.findall(rf"^{name}\s+(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    return found[-1].strip()


def test_every_service_of_the_design_exists(services: dict[str, dict[str, Any]]) -> None:
    """kafka, schema-registry, kafka-ui, api, worker and processor are all defined."""
    assert set(services) >= DESIGN_SERVICES, DESIGN_SERVICES - set(services)


def test_our_services_are_built_from_the_dockerfile(ours: dict[str, dict[str, Any]]) -> None:
    """The four verbs run as services of our image, built from the repository root."""
    assert set(ours) == OUR_VERBS
    for name, service in ours.items():
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE, name


def test_workers_are_replicated(services: dict[str, dict[str, Any]]) -> None:
    """More than one worker joins the consumer group."""
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_commands_are_verbs_the_cli_accepts(ours: dict[str, dict[str, Any]]) -> None:
    """Each command parses with the real CLI parser and runs the service's own verb."""
    parser = build_parser()
    for name, service in ours.items():
        argv = command(service)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse exits on an unknown verb
            pytest.fail(f"{name}: `asyncarch {' '.join(argv)}` is rejected ({exc})")
        assert args.verb == name, f"{name} runs `{args.verb}`"


def test_env_vars_are_real_settings_fields(ours: dict[str, dict[str, Any]]) -> None:
    """Every KAFKA_/TOPIC_/API_/WORKER_/PROCESSOR_ variable names a field that reads it."""
    checked = 0
    for name, service in ours.items():
        for key in env(service):
            prefix = next((p for p in SETTINGS if key.startswith(p)), None)
            if prefix is None:
                continue
            settings = SETTINGS[prefix]
            field = key[len(prefix) :].lower()
            assert field in settings.model_fields, f"{name}: {key} is not a {settings.__name__}"
            checked += 1
    assert checked, "no settings env var found: the check checked nothing"


def test_env_values_are_valid_for_their_settings(
    ours: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's environment builds every settings class without a validation error."""
    for service in ours.values():
        with monkeypatch.context() as patch:
            for key, value in env(service).items():
                patch.setenv(key, value)
            for settings in SETTINGS.values():
                settings()


def test_our_services_use_the_internal_listener(
    services: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]]
) -> None:
    """Every service of ours bootstraps from kafka:29092, which the broker advertises."""
    assert kafka_internal_listeners(services) == {"kafka:29092"}
    for name, service in ours.items():
        assert env(service).get("KAFKA_BOOTSTRAP_SERVERS") == "kafka:29092", name


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    """Broker and controller in one process, replication factors of one, with a healthcheck."""
    kafka = services["kafka"]
    settings = env(kafka)
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert set(settings["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = settings["KAFKA_NODE_ID"]
    controller = settings["KAFKA_CONTROLLER_LISTENER_NAMES"]
    controller_port = next(
        urlsplit(item).port
        for item in settings["KAFKA_LISTENERS"].split(",")
        if item.startswith(f"{controller}://")
    )
    assert settings["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:{controller_port}"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert settings[key] == "1", key
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_depends_on_targets_exist(services: dict[str, dict[str, Any]]) -> None:
    """No service waits for one that is not defined."""
    for name, service in services.items():
        missing = set(depends_on(service)) - set(services)
        assert not missing, f"{name} depends on undefined {missing}"


def test_services_wait_for_topics_and_topics_for_kafka(
    ours: dict[str, dict[str, Any]],
) -> None:
    """The one-shot topics job waits for a healthy broker; everything else waits for it."""
    assert depends_on(ours["topics"]) == {"kafka": "service_healthy"}
    for name, service in ours.items():
        if name != "topics":
            assert depends_on(service).get("topics") == "service_completed_successfully", name


def test_kafka_ui_points_at_schema_registry_and_internal_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    """Kafka UI reads the cluster on its internal listener and the registry on its port."""
    ui = env(services["kafka-ui"])
    assert ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] in kafka_internal_listeners(services)
    registry = env(services["schema-registry"])
    registry_port = urlsplit(registry["SCHEMA_REGISTRY_LISTENERS"]).port
    assert ui["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"] == f"http://schema-registry:{registry_port}"
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].endswith("kafka:29092")


def test_api_reaches_the_processor_and_is_health_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    """API_PROCESSOR_URL is the processor's web port; the healthcheck calls /healthz."""
    from producer_api.api.routes.health import router

    processor = env(services["processor"])
    default_port = ProcessorSettings.model_fields["web_port"].default
    port = int(processor.get("PROCESSOR_WEB_PORT", default_port))
    assert processor["PROCESSOR_WEB_HOST"] == "0.0.0.0"
    api = services["api"]
    assert env(api)["API_PROCESSOR_URL"] == f"http://processor:{port}"
    assert env(api)["API_HOST"] == "0.0.0.0"
    assert "8000:8000" in api["ports"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert "/healthz" in {getattr(route, "path", None) for route in router.routes}


def test_processor_data_dir_is_a_named_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """PROCESSOR_DATA_DIR is mounted from a volume declared at the top level."""
    processor = services["processor"]
    data_dir = env(processor)["PROCESSOR_DATA_DIR"]
    mounts = dict(reversed(volume.split(":")[:2]) for volume in processor["volumes"])
    assert data_dir in mounts
    assert mounts[data_dir] in (compose.get("volumes") or {})


def test_dockerfile_runs_asyncarch_offline_as_non_root() -> None:
    """ENTRYPOINT is the asyncarch command, with offline model loading and a non-root user."""
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["asyncarch"]
    assert dockerfile_instruction("FROM").startswith("python:3.11-slim")
    assert dockerfile_instruction("USER") not in {"root", "0"}
    text = DOCKERFILE.read_text()
    for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "OMP_NUM_THREADS=1"):
        assert var in text, var
