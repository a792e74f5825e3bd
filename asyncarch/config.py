"""Settings shared by every service: how to reach Kafka, where documents are stored."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asyncarch.paths import cache_root

__all__ = [
    "PROCESSOR_GROUP_DEFAULT",
    "PROCESSOR_GROUP_VARIABLE",
    "WORKER_GROUP_DEFAULT",
    "WORKER_GROUP_VARIABLE",
    "BlobSettings",
    "DeliverySettings",
    "KafkaSettings",
]

# The two consumer groups that other components watch (the API's backpressure and
# /monitor). Each has one variable, the one its own service reads.
WORKER_GROUP_VARIABLE, WORKER_GROUP_DEFAULT = "WORKER_GROUP_ID", "asyncarch-workers"
PROCESSOR_GROUP_VARIABLE, PROCESSOR_GROUP_DEFAULT = "PROCESSOR_APP_ID", "asyncarch-processor"


class KafkaSettings(BaseSettings):
    """Connection to the Kafka cluster; env prefix ``KAFKA_``.

    Field names are librdkafka's dotted keys in snake_case:
    ``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` becomes ``security.protocol``.
    """

    model_config = SettingsConfigDict(
        env_prefix="KAFKA_", frozen=True, env_file=".env", extra="ignore"
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    client_id: str = "asyncarch"

    def librdkafka(self, **overrides: Any) -> dict[str, Any]:
        """The librdkafka configuration dict, with per-client overrides."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        config.update(overrides)
        return config

    def producer(self, **overrides: Any) -> dict[str, Any]:
        """An idempotent ``acks=all`` producer keyed like the Java client.

        ``murmur2_random`` is the Java (and aiokafka) partitioner, so a task's
        events land on the same partition number in every topic whichever
        client wrote them: the Faust table relies on that co-partitioning.
        """
        return self.librdkafka(
            **{
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 2,
                **overrides,
            }
        )


class BlobSettings(BaseSettings):
    """Where documents are stored; env prefix ``BLOB_``."""

    model_config = SettingsConfigDict(
        env_prefix="BLOB_", frozen=True, env_file=".env", extra="ignore"
    )

    url: str = Field(default_factory=lambda: (cache_root() / "blobs").as_uri())
    s3_endpoint_url: str | None = None


class DeliverySettings(BaseSettings):
    """Where results may be delivered besides webhooks (``deliver_to``); env prefix
    ``DELIVERY_``. The API refuses a destination these do not allow; the stream
    processor checks again before each attempt and holds the credentials."""

    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", frozen=True, env_file=".env", extra="ignore"
    )

    # Allowed s3:// destinations: "bucket" (any key) or "bucket/prefix/" (keys under it).
    s3_buckets: Annotated[tuple[str, ...], NoDecode] = ()
    # S3-compatible endpoint (MinIO, Ceph, moto); None: AWS. Credentials and region
    # come from boto3's standard sources (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...).
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # PEM file of the CAs that S3's certificate must chain to (a private CA in front of
    # MinIO); None or empty: boto3's default (its bundle, or AWS_CA_BUNDLE).
    s3_ca_bundle: str | None = None
    # Allowed ftp:// hosts: "host" (port 21) or "host:port".
    ftp_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    ftp_user: str = "anonymous"
    ftp_password: SecretStr = SecretStr("")
    # FTPS: TLS on the control and data connections (explicit, AUTH TLS).
    ftp_tls: bool = False
    # PEM file of the CAs that the FTPS server's certificate must chain to (only those);
    # None or empty: the system's CAs.
    ftp_ca_bundle: str | None = None

    @field_validator("s3_buckets", "ftp_hosts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
