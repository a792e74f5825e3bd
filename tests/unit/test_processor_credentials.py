"""The Faust app joins the cluster the way the librdkafka clients do."""

from __future__ import annotations

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import SecretStr

from asyncarch.config import KafkaSettings
from stream_processors.credentials import broker_credentials


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials(KafkaSettings(security_protocol="PLAINTEXT")) is None


def test_sasl_ssl_carries_user_password_mechanism_and_tls() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SecretStr("s3cret"),
    )
    credentials = broker_credentials(settings)
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.username, credentials.password) == ("svc", "s3cret")
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.ssl_context is not None


def test_sasl_plaintext_defaults_to_plain_without_tls() -> None:
    credentials = broker_credentials(
        KafkaSettings(security_protocol="sasl_plaintext", sasl_username="u")
    )
    assert isinstance(credentials, SASLCredentials)
    assert credentials.mechanism is SASLMechanism.PLAIN
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT


def test_ssl_only() -> None:
    credentials = broker_credentials(KafkaSettings(security_protocol="SSL"))
    assert isinstance(credentials, SSLCredentials)
    assert credentials.protocol is AuthProtocol.SSL


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        broker_credentials(KafkaSettings(security_protocol="KERBEROS_MAGIC"))
