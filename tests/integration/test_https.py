"""The API over HTTPS (API_SSL_CERTFILE/KEYFILE), with a certificate the test makes.

No broker is needed: /healthz answers without one, and a task route answers a
problem body (Kafka or the processor unreachable), which is all the clients need
to show that the TLS handshake and verification worked.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from asyncarch import cli
from asyncarch.client import ApiUnreachable, AsyncarchClient, ClientError
from asyncarch.supervisor import ServiceGroup
from asyncarch.up import api_probe_verify
from producer_api.core.config import ApiSettings
from tests.certificates import SelfSigned, self_signed
from tests.helpers import eventually
from tests.stack import free_port

pytestmark = pytest.mark.integration

SIMILARITY = ["--item-a", "TV", "--item-b", "Samsung"]


class HttpsApi(NamedTuple):
    port: int
    pair: SelfSigned

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _api_env(**extra: str) -> dict[str, str]:
    """An API pointed at a broker and a processor that are not there."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "API_PROCESSOR_URL": f"http://127.0.0.1:{free_port()}",
        "API_PUBLISH_TIMEOUT_S": "1",
        "TOPIC_PREFIX": f"https-{uuid.uuid4().hex[:8]}",
        **extra,
    }


@pytest.fixture(scope="module")
def https_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsApi]:
    pair = self_signed(tmp_path_factory.mktemp("tls"))
    port = free_port()
    env = _api_env(
        API_PORT=str(port), API_SSL_CERTFILE=str(pair.cert), API_SSL_KEYFILE=str(pair.key)
    )
    services = ServiceGroup(env=env, log_dir=tmp_path_factory.mktemp("logs"))
    services.start("api")
    api = HttpsApi(port, pair)
    trust = ssl.create_default_context(cafile=str(pair.cert))

    def answered() -> httpx.Response:
        assert services.first_exited() is None, "the API exited during start-up"
        return httpx.get(f"{api.url}/healthz", timeout=1, verify=trust)

    try:
        eventually(answered, 60, "the API answering over HTTPS", ignoring=(httpx.HTTPError,))
        yield api
    finally:
        services.stop()


def test_healthz_answers_over_verified_https(https_api: HttpsApi) -> None:
    trust = ssl.create_default_context(cafile=str(https_api.pair.cert))
    assert httpx.get(f"{https_api.url}/healthz", verify=trust).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https_api.url}/healthz")  # the system CAs do not know it


def test_plain_http_to_the_https_port_fails(https_api: HttpsApi) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{https_api.port}/healthz", timeout=5)


def test_up_readiness_probe_verifies_against_the_configured_certificate(
    https_api: HttpsApi,
) -> None:
    settings = ApiSettings(
        port=https_api.port,
        ssl_certfile=str(https_api.pair.cert),
        ssl_keyfile=str(https_api.pair.key),
    )
    assert settings.base_url == https_api.url
    answer = httpx.get(f"{https_api.url}/healthz", verify=api_probe_verify(settings))
    assert answer.status_code == 200


def test_client_with_the_ca_bundle_or_insecure_gets_answers(https_api: HttpsApi) -> None:
    for options in ({"ca_bundle": https_api.pair.cert}, {"insecure": True}):
        client = AsyncarchClient(https_api.url, **options)  # type: ignore[arg-type]
        with client, pytest.raises(ClientError) as caught:
            client.status(str(uuid.uuid4()))  # the processor is down: a problem body
        assert not isinstance(caught.value, ApiUnreachable), caught.value
        assert caught.value.status_code is not None


def test_client_without_the_ca_bundle_says_how_to_trust_it(https_api: HttpsApi) -> None:
    with AsyncarchClient(https_api.url) as client, pytest.raises(ApiUnreachable) as caught:
        client.status(str(uuid.uuid4()))
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert "--ca-bundle" in str(caught.value)


def test_cli_submit_trusts_the_ca_bundle_from_flag_or_environment(
    https_api: HttpsApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    submit = ["submit", "--url", https_api.url, *SIMILARITY]
    assert cli.main([*submit, "--ca-bundle", str(https_api.pair.cert)]) == 2
    assert "Kafka unavailable" in capsys.readouterr().err  # an HTTP answer: TLS worked
    monkeypatch.setenv("ASYNCARCH_CA_BUNDLE", str(https_api.pair.cert))
    assert cli.main(submit) == 2
    assert "Kafka unavailable" in capsys.readouterr().err
    monkeypatch.delenv("ASYNCARCH_CA_BUNDLE")
    assert cli.main(submit) == 2
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    assert cli.main([*submit, "--insecure"]) == 2
    assert "Kafka unavailable" in capsys.readouterr().err
    assert cli.main([*submit, "--ca-bundle", "/nonexistent/ca.pem"]) == 2
    assert capsys.readouterr().err == (
        "asyncarch submit: CA bundle /nonexistent/ca.pem: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        (
            [],
            {"API_SSL_CERTFILE": "cert"},
            "asyncarch api: API_SSL_CERTFILE is set but API_SSL_KEYFILE is not: HTTPS needs both",
        ),
        (
            ["--ssl-certfile", "cert", "--ssl-keyfile", "/nonexistent/key.pem"],
            {},
            "asyncarch api: API_SSL_KEYFILE=/nonexistent/key.pem: No such file or directory",
        ),
    ],
    ids=["only-the-certificate", "missing-key-file"],
)
def test_api_with_unusable_https_settings_exits_with_one_line(
    tmp_path: Path, flags: list[str], env: dict[str, str], expected: str
) -> None:
    pair = self_signed(tmp_path)
    env = {k: str(pair.cert) if v == "cert" else v for k, v in env.items()}
    flags = [str(pair.cert) if f == "cert" else f for f in flags]
    base = {k: v for k, v in _api_env().items() if not k.startswith("API_SSL_")}
    done = subprocess.run(
        [sys.executable, "-m", "asyncarch.cli", "api", *flags],
        env={**base, "API_PORT": str(free_port()), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == expected
