"""Result sinks through the real pipeline: deliver_to an S3-compatible server (moto's
server mode) and an FTP server (pyftpdlib), both on 127.0.0.1, and the document store
on that S3 server.

Both servers run in this process; the stream processor reaches them over TCP like
any remote sink, allowed by ``PROCESSOR_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asyncarch.blobstore import BlobError, BlobRef, BlobSettings, open_store
from asyncarch.config import DeliverySettings, KafkaSettings
from stream_processors.delivery.sinks import send_to_sink
from tests.sink_servers import FTP_PASSWORD, FTP_USER, S3_CREDENTIALS, FtpServer, S3Server
from tests.stack import Pipeline, launch_pipeline, wait_for_state, wait_for_task

pytestmark = pytest.mark.integration

RESULTS, DOCUMENTS = "results", "documents"
SIMILARITY = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    for bucket in (RESULTS, DOCUMENTS):
        server.client().create_bucket(Bucket=bucket)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    root = tmp_path_factory.mktemp("ftp-home")
    (root / "out").mkdir()
    server = FtpServer(root)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sinks(
    kafka: KafkaSettings,
    tmp_path_factory: pytest.TempPathFactory,
    s3: S3Server,
    ftp: FtpServer,
) -> Iterator[Pipeline]:
    """The pipeline with both sinks allowed, documents stored on S3, and short retries."""
    pipeline = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("sinks"),
        **S3_CREDENTIALS,
        PROCESSOR_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        PROCESSOR_WEBHOOK_RETRY_FOR_S="120",
        PROCESSOR_WEBHOOK_BACKOFF_INITIAL_S="0.2",
        PROCESSOR_WEBHOOK_BACKOFF_MAX_S="1.0",
        PROCESSOR_WEBHOOK_TIMEOUT_S="5",
        DELIVERY_S3_BUCKETS=f"{RESULTS}/out/",
        DELIVERY_S3_ENDPOINT_URL=s3.endpoint_url,
        # 10.0.0.1 is allowed as a destination but not as an address: the SSRF guard says no.
        DELIVERY_FTP_HOSTS=f"127.0.0.1:{ftp.port},10.0.0.1",
        DELIVERY_FTP_USER=FTP_USER,
        DELIVERY_FTP_PASSWORD=FTP_PASSWORD,
        BLOB_URL=f"s3://{DOCUMENTS}/uploads",
        BLOB_S3_ENDPOINT_URL=s3.endpoint_url,
    )
    yield pipeline
    pipeline.services.stop()


def submit(client: httpx.Client, deliver_to: str) -> str:
    response = client.post("/v1/tasks", json={**SIMILARITY, "deliver_to": deliver_to})
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def wait_for_sink(client: httpx.Client, task_id: str, statuses: set[str]) -> dict:
    """Poll a task until its sink delivery is in one of ``statuses``."""
    return wait_for_task(
        client,
        task_id,
        lambda body: bool(body.get("sink")) and body["sink"]["status"] in statuses,
    )


def wait_for_sink_attempt(client: httpx.Client, task_id: str, outcome: str) -> dict:
    """Poll a task until its history shows a sink attempt with ``outcome``."""
    return wait_for_task(
        client, task_id, lambda body: any(e["outcome"] == outcome for e in sink_entries(body))
    )


def sink_entries(body: dict) -> list[dict]:
    return [entry for entry in body["history"] if entry["state"] == "SINK"]


def assert_result_document(document: dict[str, Any], body: dict) -> None:
    """The sink got the webhook's JSON body for this task."""
    assert (document["task_id"], document["status"], document["type"]) == (
        body["task_id"],
        "SUCCESS",
        "task.succeeded",
    )
    assert 0 < document["output"]["similarity"] < 1
    assert document["finished_at"] == body["updated_at"]
    assert document["id"] == body["sink"]["delivery_id"]


def s3_document(s3: S3Server, key: str) -> dict[str, Any]:
    answer = s3.client().get_object(Bucket=RESULTS, Key=key)
    assert answer["ContentType"] == "application/json"
    return dict(json.loads(answer["Body"].read()))


def test_a_result_is_written_to_the_s3_bucket(sinks: Pipeline, s3: S3Server) -> None:
    with sinks.client() as client:
        task_id = submit(client, f"s3://{RESULTS}/out/")
        body = wait_for_sink(client, task_id, {"delivered"})
    assert_result_document(s3_document(s3, f"out/{task_id}.json"), body)
    (entry,) = sink_entries(body)
    assert (entry["outcome"], entry["status_code"], entry["attempt"]) == ("delivered", 200, 1)
    assert body["sink"] == {**body["sink"], "attempts": 1, "next_attempt_at": None}
    assert "webhook" not in body or body["webhook"] is None


def test_a_result_is_stored_on_the_ftp_server(sinks: Pipeline, ftp: FtpServer) -> None:
    with sinks.client() as client:
        task_id = submit(client, f"ftp://127.0.0.1:{ftp.port}/out/run-")
        body = wait_for_sink(client, task_id, {"delivered"})
    written = ftp.root / "out" / f"run-{task_id}.json"
    assert_result_document(json.loads(written.read_text()), body)
    assert not list(ftp.root.glob("out/*.part"))
    (entry,) = sink_entries(body)
    assert (entry["outcome"], entry["attempt"]) == ("delivered", 1)


def test_s3_down_is_retried_until_it_is_back(sinks: Pipeline, s3: S3Server) -> None:
    s3.stop()
    try:
        with sinks.client() as client:
            task_id = submit(client, f"s3://{RESULTS}/out/")
            failed = wait_for_sink_attempt(client, task_id, "retrying")
    finally:
        s3.start()
    with sinks.client() as client:
        body = wait_for_sink(client, task_id, {"delivered"})
    assert failed["sink"]["status"] == "pending"
    entries = sink_entries(body)
    assert entries[0]["outcome"] == "retrying"
    assert entries[0]["error"]["type"] == "EndpointConnectionError"
    assert entries[-1]["outcome"] == "delivered"
    assert [e["attempt"] for e in entries] == list(range(1, len(entries) + 1))
    assert_result_document(s3_document(s3, f"out/{task_id}.json"), body)


def test_ftp_down_is_retried_until_it_is_back(sinks: Pipeline, ftp: FtpServer) -> None:
    ftp.stop()
    try:
        with sinks.client() as client:
            task_id = submit(client, f"ftp://127.0.0.1:{ftp.port}/out/")
            wait_for_sink_attempt(client, task_id, "retrying")
    finally:
        ftp.start()
    with sinks.client() as client:
        body = wait_for_sink(client, task_id, {"delivered"})
    entries = sink_entries(body)
    assert (entries[0]["outcome"], entries[0]["error"]["type"]) == (
        "retrying",
        "ConnectionRefusedError",
    )
    assert entries[-1]["outcome"] == "delivered"
    assert_result_document(json.loads((ftp.root / "out" / f"{task_id}.json").read_text()), body)


def test_a_sink_host_on_a_private_address_is_refused_before_any_connection(
    sinks: Pipeline,
) -> None:
    with sinks.client() as client:
        task_id = submit(client, "ftp://10.0.0.1/out/")
        body = wait_for_sink(client, task_id, {"refused"})
    (entry,) = sink_entries(body)
    assert entry["error"] == {
        "type": "SinkRefused",
        "message": "FTP host 10.0.0.1 refused: 10.0.0.1 is a private address",
    }
    assert body["status"] == "SUCCESS"


async def test_the_s3_endpoint_goes_through_the_ssrf_guard(s3: S3Server) -> None:
    settings = DeliverySettings(s3_buckets=(RESULTS,), s3_endpoint_url=s3.endpoint_url)
    result = await send_to_sink(f"s3://{RESULTS}/", "t", b"{}", settings, (), 5.0)
    assert (result.outcome, result.error) == (
        "refused",
        {
            "type": "SinkRefused",
            "message": "S3 endpoint 127.0.0.1 refused: 127.0.0.1 is a loopback address",
        },
    )
    assert "t.json" not in _keys(s3, RESULTS)


@pytest.mark.parametrize(
    ("deliver_to", "type_"),
    [
        ("s3://other-bucket/out/", "destination_not_allowed"),
        (f"s3://{RESULTS}/elsewhere/", "destination_not_allowed"),
        ("ftp://127.0.0.1:1/out/", "destination_not_allowed"),
        ("ftp://user:secret@127.0.0.1/out/", "value_error"),
        ("http://127.0.0.1/out/", "value_error"),
        (f"s3://{RESULTS}/out/../x/", "value_error"),
    ],
)
def test_a_destination_the_server_does_not_allow_is_refused_at_submit(
    sinks: Pipeline, deliver_to: str, type_: str
) -> None:
    with sinks.client() as client:
        response = client.post("/v1/tasks", json={**SIMILARITY, "deliver_to": deliver_to})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert (error["field"], error["type"]) == ("deliver_to", type_)


def test_a_document_upload_is_refused_with_its_destination_and_not_kept(
    sinks: Pipeline, s3: S3Server
) -> None:
    before = _keys(s3, DOCUMENTS)
    with sinks.client() as client:
        response = client.post(
            "/v1/tasks",
            data={"query": "cables", "deliver_to": "s3://other-bucket/"},
            files={"file": ("notes.md", b"# Notes\n\nSubmarine cables.", "text/markdown")},
        )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "deliver_to"
    assert _keys(s3, DOCUMENTS) == before


def test_documents_go_by_claim_check_through_the_s3_store(sinks: Pipeline, s3: S3Server) -> None:
    text = "# Notes\n\nThe cafeteria opens at noon.\n\nSubmarine cables carry the internet."
    with sinks.client() as client:
        response = client.post(
            "/v1/tasks",
            data={"query": "undersea internet", "deliver_to": f"s3://{RESULTS}/out/docs-"},
            files={"file": ("notes.md", text.encode(), "text/markdown")},
        )
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
        body = wait_for_sink(client, task_id, {"delivered"})
    uploads = [key for key in _keys(s3, DOCUMENTS) if key.startswith("uploads/")]
    assert uploads, "the API stored no document in the bucket"
    document = s3_document(s3, f"out/docs-{task_id}.json")
    assert document["task_id"] == body["task_id"]
    assert "Submarine" in document["output"]["passages"][0]["text"]


def test_the_s3_blob_store_round_trip(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    store = open_store(
        BlobSettings(url=f"s3://{DOCUMENTS}/round-trip", s3_endpoint_url=s3.endpoint_url)
    )
    ref = store.put([b"claim ", b"check"], suffix=".txt")
    assert ref.uri.startswith(f"s3://{DOCUMENTS}/round-trip/") and ref.uri.endswith(".txt")
    assert store.read(ref) == b"claim check"
    with pytest.raises(BlobError, match="does not match"):
        store.read(BlobRef(ref.uri, ref.size, "0" * 64))
    store.delete(ref.uri)
    assert ref.uri.removeprefix(f"s3://{DOCUMENTS}/") not in _keys(s3, DOCUMENTS)


def _keys(s3: S3Server, bucket: str) -> set[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listed.get("Contents", [])}
