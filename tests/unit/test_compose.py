"""docker-compose.yml and Dockerfile, checked statically against the code they run.

No Docker engine runs here: the file is validated against the Compose
Specification's JSON schema (vendored by check-jsonschema) and its structure is
checked against the settings classes and the rules of a compose file that runs
as written (pinned images, healthchecks, persistent Kafka data, no required
operator input).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from asyncarch.blobstore import BlobSettings
from asyncarch.cli import build_parser
from asyncarch.config import KafkaSettings
from inference_consumer.config import WorkerSettings
from producer_api.core.config import ApiSettings
from schemas.registry import SchemaRegistrySettings
from schemas.topics import TopicSettings
from stream_processors.config import ProcessorSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_SPEC = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"

DESIGN_SERVICES = {"kafka", "schema-registry", "kafka-ui", "api", "worker", "topics"}
PROCESSORS = {"processor-1", "processor-2"}
SETTINGS: dict[str, type[BaseSettings]] = {
    "KAFKA_": KafkaSettings,
    "TOPIC_": TopicSettings,
    "API_": ApiSettings,
    "WORKER_": WorkerSettings,
    "PROCESSOR_": ProcessorSettings,
    "BLOB_": BlobSettings,
    "SCHEMA_REGISTRY_": SchemaRegistrySettings,
}
KAFKA_CLIENT_SECURITY = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
)
UNPINNED_TAGS = {"", "latest", "main", "master", "edge", "nightly"}


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


def interpolate(value: str, operator_env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from ``operator_env``."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in operator_env:
            return operator_env[name]
        assert op != ":?", f"${{{name}}} must be set by the operator: {rest}"
        return rest if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def raw_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as written, from either compose syntax."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def env(service: dict[str, Any], operator_env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment after interpolation (no .env file by default)."""
    given = operator_env or {}
    return {key: interpolate(value, given) for key, value in raw_env(service).items()}


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


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Short-syntax volumes as {container path: source}."""
    found = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        found[target] = source
    return found


def kafka_internal_listeners(services: dict[str, dict[str, Any]]) -> set[str]:
    """host:port of every advertised listener whose host is the kafka service."""
    advertised = env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    endpoints = {urlsplit(item.strip()).netloc for item in advertised.split(",")}
    return {endpoint for endpoint in endpoints if endpoint.split(":")[0] == "kafka"}


def healthcheck_text(service: dict[str, Any]) -> str:
    """The healthcheck's command as one string."""
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def dockerfile_instruction(name: str) -> str:
    """The argument of the last top-level Dockerfile instruction with that name."""
    found = re.findall(rf"^{name}\s+(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    return found[-1].strip()


def build_settings(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Build every settings class from exactly this environment (ours cleared first)."""
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(tuple(SETTINGS)):
                patch.delenv(key)
        for key, value in environment.items():
            patch.setenv(key, value)
        for settings in SETTINGS.values():
            settings()


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    """The file validates against the Compose Specification schema, as `docker compose config`."""
    # Read from the installed distribution without importing it (its CLI needs a newer click).
    vendored = metadata.distribution("check-jsonschema").locate_file(COMPOSE_SPEC)
    schema = json.loads(Path(str(vendored)).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_service_of_the_design_exists(services: dict[str, dict[str, Any]]) -> None:
    """kafka, schema-registry, kafka-ui, api, workers and two processors are all defined."""
    assert set(services) >= DESIGN_SERVICES | PROCESSORS, DESIGN_SERVICES - set(services)
    assert {"prometheus", "grafana"} <= set(services)


def test_our_services_are_built_from_the_dockerfile(ours: dict[str, dict[str, Any]]) -> None:
    """Every service of ours is built from the repository root's Dockerfile."""
    assert set(ours) == {"topics", "api", "worker"} | PROCESSORS
    for name, service in ours.items():
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE, name


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    """Every image names a fixed tag: no `latest`, no tag-less image."""
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        assert tag not in UNPINNED_TAGS, f"{name}: {image} is not pinned"


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
        assert args.verb == re.sub(r"-\d+$", "", name), f"{name} runs `{args.verb}`"


def test_env_vars_are_real_settings_fields(ours: dict[str, dict[str, Any]]) -> None:
    """Every variable of ours (KAFKA_, TOPIC_, API_, WORKER_, PROCESSOR_, BLOB_) names a field."""
    checked = 0
    for name, service in ours.items():
        for key in raw_env(service):
            prefix = next((p for p in SETTINGS if key.startswith(p)), None)
            assert prefix is not None, f"{name}: {key} is read by no settings class"
            settings = SETTINGS[prefix]
            field = key[len(prefix) :].lower()
            assert field in settings.model_fields, f"{name}: {key} is not a {settings.__name__}"
            checked += 1
    assert checked > 20, "too few settings env vars found: the check checked nothing"


def test_up_needs_no_operator_input(
    ours: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no .env and nothing exported, every service's settings validate (auth off)."""
    for name, service in ours.items():
        environment = env(service)  # asserts that no ${NAME:?} is left to the operator
        build_settings(environment, monkeypatch)
        assert environment.get("API_AUTH_ENABLED", "false") == "false", name
    for name in PROCESSORS:
        assert env(ours[name])["PROCESSOR_ENVIRONMENT"] == "local", name
    for service in ours.values():
        env_files = service["env_file"]
        assert env_files == [{"path": ".env", "required": False}]
    assert (ROOT / ".env.example").is_file()


def test_operator_settings_pass_through(
    ours: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production .env (SASL, real webhook secret) yields valid settings in every service."""
    operator = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1.example:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "asyncarch",
        "KAFKA_SASL_PASSWORD": "s3cret",
        "PROCESSOR_ENVIRONMENT": "production",
    }
    for name, service in ours.items():
        environment = env(service, operator)
        for key in KAFKA_CLIENT_SECURITY:
            assert environment[key] == operator[key], f"{name}: {key} does not reach the service"
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            config = KafkaSettings().librdkafka()
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert config["sasl.password"] == "s3cret"
        if name in PROCESSORS:
            # production refuses the dev secret: it must come from .env (env_file)
            with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
                build_settings(environment, monkeypatch)
            build_settings({**environment, "PROCESSOR_WEBHOOK_SECRET": "x" * 32}, monkeypatch)


def test_every_long_running_service_is_health_checked(services: dict[str, dict[str, Any]]) -> None:
    """Kafka, the registry, Kafka UI, API, processors, workers, Prometheus and Grafana."""
    for name, service in services.items():
        if service.get("restart") == "no":  # the one-shot topics job completes instead
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_depends_on_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    """No service waits for a bare start: healthy, or completed for the one-shot job."""
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on undefined {target}"
            if services[target].get("restart") == "no":
                assert condition == "service_completed_successfully", (name, target)
            else:
                assert condition == "service_healthy", (name, target)
                assert "healthcheck" in services[target], target


def test_services_wait_for_topics_and_topics_for_kafka(
    ours: dict[str, dict[str, Any]],
) -> None:
    """The one-shot topics job waits for a healthy broker; everything else waits for it."""
    assert depends_on(ours["topics"]) == {"kafka": "service_healthy"}
    for name, service in ours.items():
        if name != "topics":
            assert depends_on(service).get("topics") == "service_completed_successfully", name


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
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in healthcheck_text(kafka)


def test_kafka_data_survives_down(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """KAFKA_LOG_DIRS is on a named volume, and the cluster id is fixed so it is reused."""
    kafka = services["kafka"]
    settings = env(kafka)
    log_dir = settings["KAFKA_LOG_DIRS"]
    assert not log_dir.startswith("/tmp"), log_dir
    source = mounts(kafka).get(log_dir)
    assert source in (compose.get("volumes") or {}), f"{log_dir} is not on a named volume"
    # A Kafka cluster id: 16 bytes, base64url without padding.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", settings["CLUSTER_ID"])


def test_kafka_ui_reads_values_through_the_registry_and_keys_as_text(
    services: dict[str, dict[str, Any]],
) -> None:
    """Kafka UI: internal listener, the registry's URL, String keys, registry-decoded values."""
    ui = env(services["kafka-ui"])
    assert ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] in kafka_internal_listeners(services)
    registry = env(services["schema-registry"])
    registry_port = urlsplit(registry["SCHEMA_REGISTRY_LISTENERS"]).port
    assert ui["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"] == f"http://schema-registry:{registry_port}"
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].endswith("kafka:29092")
    assert ui["KAFKA_CLUSTERS_0_DEFAULTKEYSERDE"] == "String"
    assert ui["KAFKA_CLUSTERS_0_DEFAULTVALUESERDE"] == "SchemaRegistry"
    assert f"localhost:{registry_port}" in healthcheck_text(services["schema-registry"])


def test_every_producer_writes_through_the_compose_registry(
    services: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]]
) -> None:
    """Each service of ours names the registry Kafka UI reads, and waits until it is healthy."""
    registry = services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"]
    for name, service in ours.items():
        assert env(service).get("SCHEMA_REGISTRY_URL") == registry, name
        if name != "topics":
            assert depends_on(service).get("schema-registry") == "service_healthy", name


def test_processor_replicas_advertise_distinct_reachable_urls(
    services: dict[str, dict[str, Any]],
) -> None:
    """Each processor advertises its own hostname (not 0.0.0.0), binds it and checks it."""
    hosts = set()
    for name in PROCESSORS:
        processor = services[name]
        settings = env(processor)
        host = settings["PROCESSOR_WEB_HOST"]
        assert host == processor["hostname"] == name
        assert host not in {"0.0.0.0", "127.0.0.1", "localhost", "::"}
        hosts.add(host)
        default_port = ProcessorSettings.model_fields["web_port"].default
        port = settings.get("PROCESSOR_WEB_PORT", default_port)
        check = healthcheck_text(processor)
        assert "socket.gethostname()" in check and f":{port}/health/" in check
        assert "processor" in processor["networks"]["default"]["aliases"]
    assert len(hosts) == len(PROCESSORS)


def test_processor_data_dirs_are_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """Each replica's PROCESSOR_DATA_DIR is its own volume declared at the top level."""
    sources = set()
    for name in PROCESSORS:
        processor = services[name]
        data_dir = env(processor)["PROCESSOR_DATA_DIR"]
        source = mounts(processor)[data_dir]
        assert source in (compose.get("volumes") or {}), name
        sources.add(source)
    assert len(sources) == len(PROCESSORS)


def test_api_reaches_the_processors_and_is_health_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    """API_PROCESSOR_URL is the processors' alias and web port; the healthcheck calls /healthz."""
    from producer_api.api.routes.health import router

    ports = {int(env(services[name])["PROCESSOR_WEB_PORT"]) for name in PROCESSORS}
    assert len(ports) == 1
    api = services["api"]
    settings = env(api)
    assert settings["API_PROCESSOR_URL"] == f"http://processor:{ports.pop()}"
    assert settings["API_HOST"] == "0.0.0.0"
    assert f"{settings['API_PORT']}:{settings['API_PORT']}" in api["ports"]
    assert "/healthz" in healthcheck_text(api)
    assert "/healthz" in {getattr(route, "path", None) for route in router.routes}


def test_worker_metrics_are_exposed_and_health_checked(services: dict[str, dict[str, Any]]) -> None:
    """Workers serve /metrics on all interfaces of the container; the healthcheck reads it."""
    worker = env(services["worker"])
    port = int(worker["WORKER_METRICS_PORT"])
    assert port > 0
    assert worker["WORKER_METRICS_HOST"] == "0.0.0.0"
    assert f":{port}/metrics" in healthcheck_text(services["worker"])


def test_documents_volume_is_shared_by_api_and_workers(services: dict[str, dict[str, Any]]) -> None:
    """BLOB_URL's folder is the same volume in the API and the workers."""
    for name in ("api", "worker"):
        path = urlsplit(env(services[name])["BLOB_URL"]).path
        assert mounts(services[name]).get(path) == "documents", name


def test_dockerfile_runs_asyncarch_offline_as_non_root() -> None:
    """ENTRYPOINT is the asyncarch command, with offline model loading and a non-root user."""
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["asyncarch"]
    assert dockerfile_instruction("FROM").startswith("python:3.11-slim")
    assert dockerfile_instruction("USER") not in {"root", "0"}
    text = DOCKERFILE.read_text()
    for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "OMP_NUM_THREADS=1"):
        assert var in text, var


def test_the_api_can_serve_https_with_a_mounted_certificate(
    services: dict[str, dict[str, Any]],
) -> None:
    """deploy/tls is mounted read-only where deploy/tls/README.md points API_SSL_* at, and
    the healthcheck follows API_SSL_CERTFILE (HTTPS when set), so TLS stays healthy."""
    api = services["api"]
    mount = "./deploy/tls:/etc/asyncarch/tls:ro"
    assert mount in api["volumes"]
    readme = (ROOT / "deploy" / "tls" / "README.md").read_text()
    assert "API_SSL_CERTFILE=/etc/asyncarch/tls/cert.pem" in readme
    assert "API_SSL_KEYFILE=/etc/asyncarch/tls/key.pem" in readme
    probe = api["healthcheck"]["test"][-1]
    compile(probe, "healthcheck", "exec")
    assert "API_SSL_CERTFILE" in probe and "https" in probe and "/healthz" in probe
    assert "deploy/tls/*.pem" in (ROOT / ".gitignore").read_text().splitlines()
