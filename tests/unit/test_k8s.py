"""deploy/k8s: every object validated offline against the Kubernetes schemas.

kubernetes-validate ships the OpenAPI schemas of each Kubernetes release, so
this runs with no cluster and no network. The KEDA ScaledObject is a custom
resource those schemas do not know: its structure is checked here instead.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from asyncarch.blobstore import BlobSettings
from asyncarch.config import KafkaSettings
from inference_consumer.config import WorkerSettings
from producer_api.core.config import ApiSettings
from schemas.topics import TopicSettings
from stream_processors.config import ProcessorSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "asyncarch"
SETTINGS: dict[str, type[BaseSettings]] = {
    "KAFKA_": KafkaSettings,
    "TOPIC_": TopicSettings,
    "API_": ApiSettings,
    "WORKER_": WorkerSettings,
    "PROCESSOR_": ProcessorSettings,
    "BLOB_": BlobSettings,
}
# Variables the manifests define for Kubernetes' $(NAME) expansion, read by no service.
EXPANSION_ONLY = {"POD_NAME"}


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    """deploy/k8s/kustomization.yaml."""
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def objects(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object of every resource file the kustomization lists."""
    found = []
    for resource in kustomization["resources"]:
        found += [doc for doc in yaml.safe_load_all((K8S / resource).read_text()) if doc]
    assert found
    return found


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    """The workload's single container."""
    (found,) = workload["spec"]["template"]["spec"]["containers"]
    return found


def env_values(workload: dict[str, Any]) -> dict[str, Any]:
    """The container's env entries by name (value, or valueFrom)."""
    return {
        item["name"]: item.get("value", item.get("valueFrom"))
        for item in container(workload).get("env", [])
    }


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deployments, StatefulSets and Jobs."""
    return [o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}]


def test_every_file_is_in_the_kustomization(kustomization: dict[str, Any]) -> None:
    """No manifest is left out of `kubectl apply -k`, and none listed is missing."""
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == NAMESPACE


def test_objects_validate_against_the_kubernetes_schemas(objects: list[dict[str, Any]]) -> None:
    """Strict validation (unknown fields rejected) against the newest bundled release."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import kubernetes_validate

    version = kubernetes_validate.latest_version()
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
        checked += 1
    assert checked >= 8


def test_everything_is_in_the_namespace(objects: list[dict[str, Any]]) -> None:
    """One Namespace object, and every namespaced object in it."""
    assert one(objects, "Namespace", NAMESPACE)
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


def test_images_are_pinned_by_the_kustomization(
    objects: list[dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    """Every container's image gets a fixed tag from `images:`."""
    tags = {image["name"]: image.get("newTag", "") for image in kustomization["images"]}
    for workload in workloads(objects):
        image = container(workload)["image"]
        tag = image.split(":", 1)[1] if ":" in image else tags.get(image, "")
        assert tag and tag != "latest", f"{workload['metadata']['name']}: {image}"


def test_commands_and_env_match_the_code(objects: list[dict[str, Any]]) -> None:
    """Each container runs its own verb; every env var and ConfigMap key is a settings field."""
    config = one(objects, "ConfigMap", "asyncarch-config")["data"]
    names = set(config)
    verbs = {
        "api": "api",
        "processor": "processor",
        "worker": "worker",
        "asyncarch-topics": "topics",
    }
    for workload in workloads(objects):
        assert container(workload)["args"] == [verbs[workload["metadata"]["name"]]]
        names |= set(env_values(workload)) - EXPANSION_ONLY
    for name in names:
        prefix = next((p for p in SETTINGS if name.startswith(p)), None)
        assert prefix, f"{name} is read by no settings class"
        field = name[len(prefix) :].lower()
        assert field in SETTINGS[prefix].model_fields, f"{name} is not a field"


def test_api_deployment_and_service(objects: list[dict[str, Any]]) -> None:
    """The API listens on all interfaces, is probed on /healthz and /readyz, has a Service."""
    api = one(objects, "Deployment", "api")
    env = env_values(api)
    assert env["API_HOST"] == "0.0.0.0"
    port = int(env["API_PORT"])
    assert container(api)["ports"][0]["containerPort"] == port
    assert container(api)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container(api)["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = one(objects, "Service", "api")
    assert (
        service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    )
    processor_service = one(objects, "Service", "processor")
    processor_port = processor_service["spec"]["ports"][0]["port"]
    assert env["API_PROCESSOR_URL"] == f"http://processor:{processor_port}"


def test_processors_advertise_stable_addresses(objects: list[dict[str, Any]]) -> None:
    """A StatefulSet behind a headless Service: each pod's canonical URL is its own DNS name."""
    processor = one(objects, "StatefulSet", "processor")
    headless = one(objects, "Service", processor["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    env = env_values(processor)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    expected = f"$(POD_NAME).{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    assert env["PROCESSOR_WEB_HOST"] == expected
    names = [item["name"] for item in container(processor)["env"]]
    assert names.index("POD_NAME") < names.index("PROCESSOR_WEB_HOST")  # $(...) needs order
    assert env["PROCESSOR_ENVIRONMENT"] != "local"
    assert env["PROCESSOR_WEBHOOK_SECRET"]["secretKeyRef"]["key"] == "PROCESSOR_WEBHOOK_SECRET"
    assert container(processor)["readinessProbe"]["httpGet"]["path"] == "/health/"
    assert processor["spec"]["replicas"] >= 2


def test_workers_take_static_ids_from_the_pod_ordinal(objects: list[dict[str, Any]]) -> None:
    """worker-N is always transactional id and group.instance.id worker-N."""
    worker = one(objects, "StatefulSet", "worker")
    env = env_values(worker)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["WORKER_WORKER_ID"] == "$(POD_NAME)"
    assert env["WORKER_GROUP_INSTANCE_ID"] == "$(POD_NAME)"
    names = [item["name"] for item in container(worker)["env"]]
    assert names.index("POD_NAME") < names.index("WORKER_WORKER_ID")
    assert env["WORKER_GROUP_ID"] == WorkerSettings.model_fields["group_id"].default
    assert int(env["WORKER_METRICS_PORT"]) > 0 and env["WORKER_METRICS_HOST"] == "0.0.0.0"
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == env["WORKER_METRICS_PORT"]


def test_keda_scales_workers_on_the_requests_lag(objects: list[dict[str, Any]]) -> None:
    """A kafka trigger on the workers' group and the requests topic, capped at its partitions."""
    scaled = one(objects, "ScaledObject", "worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "StatefulSet")
    assert one(objects, "StatefulSet", target["name"])
    config = one(objects, "ConfigMap", "asyncarch-config")["data"]
    topics = TopicSettings(
        prefix=config["TOPIC_PREFIX"], partitions=int(config["TOPIC_PARTITIONS"])
    )
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == topics.partitions
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["topic"] == topics.requests
    assert (
        metadata["consumerGroup"]
        == env_values(one(objects, "StatefulSet", "worker"))["WORKER_GROUP_ID"]
    )
    assert metadata["consumerGroup"] == ApiSettings.model_fields["worker_group_id"].default
    assert metadata["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert int(metadata["lagThreshold"]) > 0
    # KEDA reads every metadata value as a string.
    assert all(isinstance(value, str) for value in metadata.values())
    assert re.fullmatch(r"true|false", metadata["allowIdleConsumers"])


def test_secrets_are_referenced_not_committed(objects: list[dict[str, Any]]) -> None:
    """No Secret object in the repository; the ConfigMap holds no secret-looking key."""
    assert not [o for o in objects if o["kind"] == "Secret"]
    config = one(objects, "ConfigMap", "asyncarch-config")["data"]
    assert not [key for key in config if re.search(r"PASSWORD|SECRET|KEYS", key)]
