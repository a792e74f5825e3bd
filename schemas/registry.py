"""The schema registry as the codec uses it: schema ids to write, writer schemas to read.

When ``SCHEMA_REGISTRY_URL`` names a Confluent-compatible registry (Confluent
Schema Registry, Apicurio Registry's ``/apis/ccompat/v7``, ...), every
producer registers the schema it writes under the subject ``<topic>-value``
(Confluent's TopicNameStrategy), sets that subject's compatibility to
``BACKWARD`` the first time, and writes the Confluent wire format. Ids and
writer schemas are cached for the life of the process, so only the first
event of a subject and the first event of an unseen writer schema cost a
round trip to the registry.
"""

from __future__ import annotations

import threading
from functools import cache
from http import HTTPStatus
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.exceptions import EventDecodeError, SchemaRegistryError

__all__ = [
    "SchemaRegistry",
    "SchemaRegistrySettings",
    "configured_registry",
    "is_unknown_schema",
    "value_subject",
]


class SchemaRegistrySettings(BaseSettings):
    """Where the schema registry is; env prefix ``SCHEMA_REGISTRY_``.

    No URL (the default): events use Avro single-object framing and no
    registry is asked.
    """

    model_config = SettingsConfigDict(
        env_prefix="SCHEMA_REGISTRY_", frozen=True, env_file=".env", extra="ignore"
    )

    url: str | None = None
    basic_auth_user_info: SecretStr | None = None
    compatibility: str = "BACKWARD"
    # One HTTP request's bound. The client's own retries sleep on the caller's
    # thread (an event loop, in the API and the processor), so there are none:
    # each caller retries in its own way (see SchemaRegistryError).
    timeout_s: float = Field(default=5.0, gt=0)

    def client_config(self) -> dict[str, Any]:
        """The configuration of confluent-kafka's ``SchemaRegistryClient``."""
        if not self.url:
            raise SchemaRegistryError("SCHEMA_REGISTRY_URL is not set")
        config: dict[str, Any] = {"url": self.url, "timeout": self.timeout_s, "max.retries": 0}
        if self.basic_auth_user_info:
            config["basic.auth.user.info"] = self.basic_auth_user_info.get_secret_value()
        return config


def is_unknown_schema(error: Exception) -> bool:
    """Whether the registry answered that a schema id does not exist: the event is at
    fault (a poison message). Anything else (no answer, a timeout, a 5xx, a refused
    login) says nothing about the event: the registry is unavailable for now."""
    return getattr(error, "http_status_code", None) == HTTPStatus.NOT_FOUND


def value_subject(topic: str) -> str:
    """The subject of a topic's values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


class SchemaRegistry:
    """Registers schemas and fetches writer schemas, caching both for the process."""

    def __init__(self, client: SchemaRegistryClient, compatibility: str = "BACKWARD") -> None:
        self.client = client
        self.compatibility = compatibility
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, settings: SchemaRegistrySettings) -> SchemaRegistry:
        """A registry client for these settings (no request is made yet)."""
        return cls(SchemaRegistryClient(settings.client_config()), settings.compatibility)

    def schema_id(self, subject: str, schema_text: str) -> int:
        """The id of a schema under a subject, registering it the first time."""
        key = (subject, schema_text)
        if (known := self._ids.get(key)) is not None:
            return known
        with self._lock:
            if key not in self._ids:
                self._ids[key] = self._register(subject, schema_text)
        return self._ids[key]

    def knows_id(self, subject: str, schema_text: str) -> bool:
        """Whether ``schema_id(subject, schema_text)`` is cached (asks nothing)."""
        return (subject, schema_text) in self._ids

    def writer_schema(self, schema_id: int) -> str:
        """The text of the schema registered under an id."""
        if (known := self._writers.get(schema_id)) is not None:
            return known
        try:
            schema = self.client.get_schema(schema_id)
        except Exception as exc:  # HTTP, auth and "not found" errors alike
            if is_unknown_schema(exc):
                raise EventDecodeError(f"no schema has id {schema_id} in the registry") from exc
            raise SchemaRegistryError(f"cannot fetch schema id {schema_id}: {exc}") from exc
        if (schema.schema_type or "AVRO") != "AVRO" or schema.schema_str is None:
            raise EventDecodeError(f"schema id {schema_id} is not an Avro schema")
        self._writers[schema_id] = schema.schema_str
        return schema.schema_str

    def is_compatible(self, subject: str, schema_text: str) -> bool:
        """Whether a schema may be registered under a subject by its compatibility rule."""
        try:
            return bool(self.client.test_compatibility(subject, Schema(schema_text, "AVRO")))
        except Exception as exc:
            raise SchemaRegistryError(f"{subject}: compatibility check failed: {exc}") from exc

    def _register(self, subject: str, schema_text: str) -> int:
        try:
            if not any(sub == subject for sub, _ in self._ids):
                self.client.set_compatibility(subject, self.compatibility)
            schema_id = self.client.register_schema(subject, Schema(schema_text, "AVRO"))
        except Exception as exc:
            raise SchemaRegistryError(f"{subject}: cannot register the schema: {exc}") from exc
        self._writers.setdefault(schema_id, schema_text)
        return int(schema_id)


@cache
def configured_registry() -> SchemaRegistry | None:
    """The registry this process's settings name, or None without ``SCHEMA_REGISTRY_URL``."""
    settings = SchemaRegistrySettings()
    return SchemaRegistry.connect(settings) if settings.url else None
