"""Hostile input against the real pipeline: no 5xx, no hang, no file outside the blob store.

Slow-loris uploads, invalid UTF-8, deeply nested JSON, path traversal in file
names, compression bombs and fake PDFs.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from asyncarch.config import KafkaSettings
from tests.helpers import make_raw_pdf
from tests.stack import UPLOAD_LIMIT, Pipeline, launch_pipeline, wait_for_state

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 3
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(txt|md|pdf)$")


@pytest.fixture(scope="module")
def pipeline(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The usual pipeline, with a short body read deadline so a slow-loris test is quick."""
    result = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("hostile"),
        API_BODY_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    )
    yield result
    result.services.stop()


def multipart(filename: bytes, content: bytes, query: bytes = b"q") -> tuple[bytes, str]:
    """A document-search form built by hand, so the file name goes out byte for byte."""
    boundary = uuid.uuid4().hex
    body = (
        b"--%s\r\n"
        b'Content-Disposition: form-data; name="query"\r\n\r\n%s\r\n'
        b"--%s\r\n"
        b'Content-Disposition: form-data; name="file"; filename="%s"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n%s\r\n"
        b"--%s--\r\n"
    ) % (boundary.encode(), query, boundary.encode(), filename, content, boundary.encode())
    return body, f"multipart/form-data; boundary={boundary}"


def post_form(client: httpx.Client, filename: bytes, content: bytes, **kw: bytes) -> httpx.Response:
    body, content_type = multipart(filename, content, **kw)
    return client.post("/v1/tasks", content=body, headers={"content-type": content_type})


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == response.status_code


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# (a) slow-loris ---------------------------------------------------------------------


def open_slow_upload(pipeline: Pipeline, declared: int) -> socket.socket:
    """A connection that announced a ``declared``-byte upload and sent its headers only."""
    url = urlparse(pipeline.base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.sendall(
        b"POST /v1/tasks HTTP/1.1\r\nHost: %s\r\n"
        b"Content-Type: multipart/form-data; boundary=slow\r\n"
        b"Content-Length: %d\r\n\r\n--slow\r\n" % (url.netloc.encode(), declared)
    )
    return sock


def trickle_until_answered(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Send a byte every 0.2 s until the server answers; its answer and when it came."""
    started = time.monotonic()
    sock.setblocking(False)
    answer = b""
    while time.monotonic() - started < limit_s:
        with contextlib.suppress(BlockingIOError):
            chunk = sock.recv(65536)
            if not chunk:  # closed by the server
                break
            answer += chunk
        with contextlib.suppress(OSError):  # the server may have closed its side
            sock.send(b"x")
        time.sleep(0.2)  # the pace of the attack, not a wait for a condition
    return answer, time.monotonic() - started


def test_a_slow_loris_upload_is_cut_off_and_blocks_no_one(pipeline: Pipeline) -> None:
    slow = [open_slow_upload(pipeline, 100_000) for _ in range(10)]
    try:
        with pipeline.client() as client:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            response = post_form(client, b"quick.txt", b"answered while others trickle")
            assert response.status_code == 202, response.text
            assert time.monotonic() - started < 5
        answer, elapsed = trickle_until_answered(slow[0], limit_s=25)
    finally:
        for sock in slow:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"application/problem+json" in answer and b"connection: close" in answer.lower()
    assert elapsed < READ_TIMEOUT_S + 5


# (b) invalid UTF-8 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "similarity", "inputs": {"item_a": "\xff\xfe", "item_b": "x"}}',
        b'{"kind": "sim\xc3ilarity", "inputs": {}}',
        b"\xef\xbb\xbf\xff" + b"{}",
        b'{"kind": "embed", "inputs": {"texts": ["\\ud800"]}}',  # a lone surrogate, escaped
    ],
)
def test_invalid_utf8_json_is_a_4xx_problem(pipeline: Pipeline, body: bytes) -> None:
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks", content=body, headers={"content-type": "application/json"}
        )
    if response.status_code == 202:  # a JSON escape is valid JSON: accepted as text
        return
    assert_problem(response, 400, 422)


@pytest.mark.parametrize(
    ("filename", "content", "query"),
    [
        (b"notes.txt", b"valid start \xc3\x28 then invalid", b"q"),
        (b"notes.txt", b"fine text", b"\xff\xfe query"),
        (b"n\xffotes.txt", b"fine text", b"q"),
    ],
)
def test_invalid_utf8_in_an_upload_is_a_4xx_problem_or_stored_safely(
    pipeline: Pipeline, filename: bytes, content: bytes, query: bytes
) -> None:
    with pipeline.client() as client:
        response = post_form(client, filename, content, query=query)
    if response.status_code != 202:
        assert_problem(response, 400, 415, 422)
    assert b"\xc3\x28" not in content or response.status_code == 415


def test_invalid_utf8_in_a_seed_form_is_not_a_5xx(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        response = client.post(
            "/activedocuments/nexans/uploader/",
            content=b"item_a=%ff%fe&item_b=\xff",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code < 500, response.text


# (c) deeply nested JSON -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b'{"kind": "embed", "inputs": {"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    ],
)
def test_deeply_nested_json_is_refused_quickly(pipeline: Pipeline, body: bytes) -> None:
    started = time.monotonic()
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks", content=body, headers={"content-type": "application/json"}
        )
    assert_problem(response, 400, 422)
    assert time.monotonic() - started < 5


# (d) path traversal in file names ---------------------------------------------------

TRAVERSALS = [
    b"../../etc/passwd.txt",
    b"../../../../../../tmp/escaped-%s.txt",
    b"/tmp/absolute-%s.txt",
    b"..\\..\\windows-%s.txt",
    b"C:\\temp\\drive-%s.txt",
    b"nul-%s\x00.txt",
    b"nul-%s.txt\x00.exe",
    b"%%2e%%2e%%2fencoded-%s.txt",
    b"./././hidden-%s.txt",
]


@pytest.mark.parametrize("pattern", TRAVERSALS)
def test_a_file_name_never_places_a_file_outside_the_blob_store(
    pipeline: Pipeline, pattern: bytes
) -> None:
    marker = uuid.uuid4().hex[:8]
    filename = pattern.replace(b"%s", marker.encode()) if b"%s" in pattern else pattern
    blobs = Path(urlparse(pipeline.blob_url).path)
    outside = blobs.parent
    before = files_under(outside)
    with pipeline.client() as client:
        response = post_form(client, filename, b"harmless text " + marker.encode())
    assert response.status_code < 500, response.text
    if response.status_code != 202:
        assert_problem(response, 400, 415, 422)
    new = files_under(outside) - before
    stored = {p for p in new if p.parent == blobs}
    assert all(STORED_NAME.match(p.name) for p in stored), stored
    # Besides the blob store, only the services' own state may change.
    strays = {p for p in new - stored if not p.name.endswith(".log")}
    assert not {p for p in strays if "processor-data" not in p.parts}, strays
    assert not any(marker in str(p) for p in new - stored)
    for root in (Path("/tmp"), Path("/etc"), Path.cwd(), outside.parent):
        assert not [p for p in root.glob(f"*{marker}*")], root
    assert not Path("/etc/passwd.txt").exists()


# (e) compression bombs and archives -------------------------------------------------


def test_a_gzip_bomb_is_opaque_bytes_bounded_by_the_limit(pipeline: Pipeline) -> None:
    bomb = gzip.compress(b'{"kind": "embed", "inputs": {"texts": ["' + b"a" * 50_000_000)
    assert len(bomb) < UPLOAD_LIMIT
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks",
            content=bomb,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert_problem(response, 400, 415, 422)
        upload = post_form(client, b"bomb.txt", gzip.compress(b"a" * 50_000_000))
        assert_problem(upload, 415)
        big = post_form(client, b"big.txt", gzip.compress(bytes(range(256)) * 2_000, 0))
        assert_problem(big, 413, 415)


def zip_bomb() -> bytes:
    """A real (deflated) zip, as a .docx is: 10 MB of zeros in about 10 kB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        entry = zipfile.ZipInfo("word/document.xml", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(entry, b"\x00" * 10_000_000, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


ZIP = zip_bomb()


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        (b"report.docx", ZIP),
        (b"archive.zip", ZIP),
        (b"archive.txt", ZIP),
        (b"archive.pdf", ZIP),
        (b"report.docx.txt", ZIP),
        (b"notes.pdf.zip", b"%PDF-1.4 not really"),
    ],
)
def test_archives_are_refused_by_type(pipeline: Pipeline, filename: bytes, content: bytes) -> None:
    with pipeline.client() as client:
        assert_problem(post_form(client, filename, content), 415)


# (f) fake PDFs -----------------------------------------------------------------------


def fake_pdfs() -> dict[str, bytes]:
    return {
        "magic then garbage": b"%PDF-1.7\n" + bytes(range(256)) * 64,
        "only the magic": b"%PDF-",
        "a stream that lies about its length": make_raw_pdf(b"(hi) Tj", declared_length=10**12),
        "a flate bomb": make_raw_pdf(b" " * 200_000_000),  # ~200 kB inflating to 200 MB
    }


def test_fake_pdfs_fail_their_own_task_clearly(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_ids = {}
        for name, content in fake_pdfs().items():
            assert len(content) < UPLOAD_LIMIT, name
            response = post_form(client, b"fake.pdf", content)
            assert response.status_code in (202, 415), (name, response.text)
            if response.status_code == 202:
                task_ids[name] = response.json()["task_id"]
        innocent = client.post(
            "/v1/tasks",
            json={"kind": "similarity", "inputs": {"item_a": "cable", "item_b": "wire"}},
        ).json()["task_id"]
        for name, task_id in task_ids.items():
            state = wait_for_state(client, task_id, {"SUCCESS", "FAILED"}, timeout_s=120)
            assert state["status"] == "FAILED", (name, state)
            assert state["error"]["type"] == "InvalidTaskInputs", (name, state)
            assert re.search("PDF|no text", state["error"]["message"]), (name, state)
        assert wait_for_state(client, innocent, {"SUCCESS", "FAILED"})["status"] == "SUCCESS"
