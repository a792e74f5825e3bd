"""Result sinks over TLS: FTPS through the real pipeline, and S3 over HTTPS, each
trusting a CA bundle that the test makes (a self-signed certificate is its own CA).

Two FTPS servers on 127.0.0.1 require ``AUTH TLS`` before the login and ``PROT P``
before any data connection (pyftpdlib refuses ``PASV`` otherwise), so a delivery
proves a protected data channel. One presents the certificate that
``DELIVERY_FTP_CA_BUNDLE`` names; the other a certificate of its own, which no
setting trusts. The pipeline's retry window is short, so the untrusted delivery
gives up within the test: it is retried like no connection, then ``failed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncarch.config import DeliverySettings, KafkaSettings
from stream_processors.delivery.sinks import send_to_sink
from stream_processors.delivery.targets import parse_networks
from tests.certificates import SelfSigned, self_signed
from tests.sink_servers import FTP_PASSWORD, FTP_USER, S3_CREDENTIALS, FtpServer, S3Server
from tests.stack import Pipeline, launch_pipeline, wait_for_task

pytestmark = pytest.mark.integration

RETRY_FOR_S = 6
RESULTS = "results"
SIMILARITY = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}
LOOPBACK = parse_networks(["127.0.0.1/32"])


def certificate(factory: pytest.TempPathFactory, name: str) -> SelfSigned:
    return self_signed(factory.mktemp(name))


def ftps_server(factory: pytest.TempPathFactory, name: str, tls: SelfSigned) -> FtpServer:
    root = factory.mktemp(f"{name}-home")
    (root / "out").mkdir()
    server = FtpServer(root, tls=tls)
    server.start()
    return server


@pytest.fixture(scope="module")
def trusted_cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    return certificate(tmp_path_factory, "trusted-cert")


@pytest.fixture(scope="module")
def ftps(tmp_path_factory: pytest.TempPathFactory, trusted_cert: SelfSigned) -> Iterator[FtpServer]:
    """An FTPS server whose certificate is in DELIVERY_FTP_CA_BUNDLE."""
    server = ftps_server(tmp_path_factory, "ftps", trusted_cert)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def untrusted_ftps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    """An FTPS server with a self-signed certificate nobody trusts."""
    server = ftps_server(tmp_path_factory, "untrusted", certificate(tmp_path_factory, "other"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pipeline(
    kafka: KafkaSettings,
    tmp_path_factory: pytest.TempPathFactory,
    trusted_cert: SelfSigned,
    ftps: FtpServer,
    untrusted_ftps: FtpServer,
) -> Iterator[Pipeline]:
    """The pipeline delivering to both FTPS servers, with a short retry window."""
    launched = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("sinks-tls"),
        PROCESSOR_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        PROCESSOR_WEBHOOK_RETRY_FOR_S=str(RETRY_FOR_S),
        PROCESSOR_WEBHOOK_BACKOFF_INITIAL_S="0.2",
        PROCESSOR_WEBHOOK_BACKOFF_MAX_S="1.0",
        PROCESSOR_WEBHOOK_TIMEOUT_S="5",
        DELIVERY_FTP_HOSTS=f"127.0.0.1:{ftps.port},127.0.0.1:{untrusted_ftps.port}",
        DELIVERY_FTP_USER=FTP_USER,
        DELIVERY_FTP_PASSWORD=FTP_PASSWORD,
        DELIVERY_FTP_TLS="true",
        DELIVERY_FTP_CA_BUNDLE=str(trusted_cert.cert),
    )
    yield launched
    launched.services.stop()


def deliver(pipeline: Pipeline, server: FtpServer, statuses: set[str]) -> dict:
    """Submit a task delivered to ``server``; its state once the sink is in ``statuses``."""
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks",
            json={**SIMILARITY, "deliver_to": f"ftp://127.0.0.1:{server.port}/out/"},
        )
        assert response.status_code == 202, response.text
        return wait_for_task(
            client,
            response.json()["task_id"],
            lambda body: bool(body.get("sink")) and body["sink"]["status"] in statuses,
        )


def sink_entries(body: dict) -> list[dict]:
    return [entry for entry in body["history"] if entry["state"] == "SINK"]


def test_a_result_is_stored_on_the_ftps_server(pipeline: Pipeline, ftps: FtpServer) -> None:
    body = deliver(pipeline, ftps, {"delivered", "failed", "refused"})
    (entry,) = sink_entries(body)
    assert (entry["outcome"], entry["attempt"]) == ("delivered", 1), entry
    document = json.loads((ftps.root / "out" / f"{body['task_id']}.json").read_text())
    assert (document["task_id"], document["status"]) == (body["task_id"], "SUCCESS")
    assert document["id"] == body["sink"]["delivery_id"]
    assert not list(ftps.root.glob("out/*.part"))


def test_an_untrusted_ftps_certificate_is_retried_then_fails(
    pipeline: Pipeline, untrusted_ftps: FtpServer, trusted_cert: SelfSigned
) -> None:
    body = deliver(pipeline, untrusted_ftps, {"delivered", "failed", "refused"})
    assert body["sink"]["status"] == "failed"
    *retried, last = sink_entries(body)
    assert retried, "an untrusted certificate is retried within the window"
    reason = (
        "TLS: the certificate of 127.0.0.1 is not trusted "
        f"(self-signed certificate; trusting the CAs of {trusted_cert.cert})"
    )
    for entry in retried:
        assert entry["outcome"] == "retrying"
        assert entry["error"] == {"type": "SSLCertVerificationError", "message": reason}
    assert (last["outcome"], last["error"]["type"]) == ("failed", "SSLCertVerificationError")
    assert last["error"]["message"].startswith(f"{reason}; gave up after {len(retried) + 1}")
    assert body["status"] == "SUCCESS"  # the task itself succeeded
    assert not list(untrusted_ftps.root.glob("out/*"))


@pytest.fixture(scope="module")
def https_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tls=certificate(tmp_path_factory, "s3-cert"))
    server.start()
    server.client().create_bucket(Bucket=RESULTS)
    yield server
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)


def s3_settings(server: S3Server, ca_bundle: Path | None) -> DeliverySettings:
    return DeliverySettings(
        s3_buckets=(RESULTS,),
        s3_endpoint_url=server.endpoint_url,
        s3_ca_bundle=str(ca_bundle) if ca_bundle else None,
    )


@pytest.mark.usefixtures("aws_credentials")
async def test_s3_over_https_trusts_its_ca_bundle(https_s3: S3Server) -> None:
    assert https_s3.tls is not None
    settings = s3_settings(https_s3, https_s3.tls.cert)
    result = await send_to_sink(f"s3://{RESULTS}/tls/", "t", b"{}", settings, LOOPBACK, 5.0)
    assert (result.outcome, result.status_code) == ("delivered", 200), result
    assert https_s3.client().get_object(Bucket=RESULTS, Key="tls/t.json")["Body"].read() == b"{}"


@pytest.mark.usefixtures("aws_credentials")
async def test_s3_over_https_without_the_ca_bundle_is_not_trusted(https_s3: S3Server) -> None:
    settings = s3_settings(https_s3, None)
    result = await send_to_sink(f"s3://{RESULTS}/tls/", "u", b"{}", settings, LOOPBACK, 5.0)
    assert result.outcome == "retrying"
    assert result.error is not None and result.error["type"] == "SSLError"
    assert "CERTIFICATE_VERIFY_FAILED" in result.error["message"]
