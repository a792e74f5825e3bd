"""Builders and readers shared by test modules, so that no test module imports another.

Fixtures stay in the ``conftest.py`` files; plain functions that several test
modules call live here.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import fastavro
import httpx
from confluent_kafka import Consumer
from fpdf import FPDF

from asyncarch.config import KafkaSettings
from asyncarch.supervisor import ServiceGroup
from schemas.codec import SCHEMA_DIR
from schemas.headers import header_value

__all__ = [
    "NotYet",
    "eventually",
    "make_pdf",
    "make_raw_pdf",
    "read_all",
    "replay_task_states",
    "submit_similarity_tasks",
    "wait_healthy",
]

T = TypeVar("T")


@dataclass(frozen=True)
class NotYet:
    """A falsy answer for ``eventually`` that still shows what was seen, should time run out."""

    seen: object

    def __bool__(self) -> bool:
        return False


def eventually(
    condition: Callable[[], T],
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``condition`` every ``interval_s`` until it returns something truthy; that value.

    An exception of a type in ``ignoring`` counts as "not yet"; any other one
    propagates at once (an assertion inside ``condition`` fails fast).

    Raises:
        AssertionError: after ``timeout_s``, naming ``what`` and the last value or
            exception seen.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            last: object = condition()
        except ignoring as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}; last seen: {_shown(last)}")
        time.sleep(interval_s)


def _shown(value: object, limit: int = 3000) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"...{text[-limit:]}"


def read_all(kafka: KafkaSettings, topic: str, expected: int, timeout_s: float = 30.0) -> list:
    """Every committed message of a topic from the start, with a fresh group."""
    consumer = Consumer(
        kafka.librdkafka(
            **{
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    messages: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            messages += [m for m in consumer.consume(100, timeout=0.5) if not m.error()]
    finally:
        consumer.close()
    return messages


def wait_healthy(port: int, services: ServiceGroup, timeout_s: float = 180.0) -> dict:
    """Poll a Faust worker's /health/ until it answers 200; its body."""

    def healthy() -> httpx.Response | None:
        assert services.first_exited() is None, f"{services.first_exited()} exited"
        response = httpx.get(f"http://127.0.0.1:{port}/health/", timeout=2)
        return response if response.status_code == 200 else None

    what = f"Faust worker on port {port} healthy"
    return eventually(healthy, timeout_s, what, 0.1, (httpx.HTTPError,)).json()


def submit_similarity_tasks(client: httpx.Client, count: int, tag: str = "") -> list[str]:
    """Post ``count`` similarity tasks; their ids."""
    task_ids = []
    for i in range(count):
        response = client.post(
            "/v1/tasks",
            json={"kind": "similarity", "inputs": {"item_a": f"{tag} TV {i}", "item_b": "Samsung"}},
        )
        assert response.status_code == 202, response.text
        task_ids.append(response.json()["task_id"])
    return task_ids


def replay_task_states(
    kafka: KafkaSettings, topic: str, until: Any, timeout_s: float = 30.0
) -> dict[str, dict[str, Any] | None]:
    """Read ``topic`` from offset 0 with a plain consumer and the .avsc alone; the
    latest record per key (None for a tombstone), once ``until(latest)`` holds."""
    schema = fastavro.parse_schema(json.loads((SCHEMA_DIR / "task_state.avsc").read_text()))
    consumer = Consumer(
        kafka.librdkafka(
            **{
                "group.id": f"replay-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    latest: dict[str, dict[str, Any] | None] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while not until(latest) and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                assert not message.error(), message.error()
                value = message.value()
                record = _avro_body(value, schema) if value is not None else None
                latest[message.key().decode()] = record
                assert header_value(message.headers(), "event-type") == "TaskStateChanged"
    finally:
        consumer.close()
    return latest


def _avro_body(value: bytes, schema: Any) -> dict[str, Any]:
    """Decode a single-object Avro message by skipping its 10-byte header."""
    assert value[:2] == b"\xc3\x01"
    record: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
    for key in ("submitted_at", "updated_at"):
        if record[key] is not None:
            record[key] = int(record[key].timestamp() * 1000)
    return record


def make_pdf(lines: list[str]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def make_raw_pdf(content: bytes, declared_length: int | None = None) -> bytes:
    """A one-page PDF whose page content stream is ``content``, FlateDecode-compressed.

    ``declared_length`` overrides the stream's ``/Length``, to build a PDF that lies.
    """
    stream = zlib.compress(content, 9)
    length = len(stream) if declared_length is None else declared_length
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (length, stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
