"""The Faust app's broker credentials, from the same ``KAFKA_*`` settings as every client.

librdkafka (the API and the workers) takes ``security.protocol`` and
``sasl.*`` keys; Faust's aiokafka driver takes a credentials object instead.
Without it the processor could not join a SASL or TLS cluster that the other
services reach.
"""

from __future__ import annotations

import ssl

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from asyncarch.config import KafkaSettings

__all__ = ["broker_credentials"]


def broker_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Credentials for ``faust.App(broker_credentials=...)``; None for PLAINTEXT.

    TLS verifies the brokers against the system's CA store.
    """
    protocol = kafka.security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(ssl.create_default_context())
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL {kafka.security_protocol!r} is not supported")
    return SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        mechanism=kafka.sasl_mechanism or "PLAIN",
        ssl_context=ssl.create_default_context() if protocol == "SASL_SSL" else None,
    )
