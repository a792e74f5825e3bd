"""Hostile PDFs fail their own task with InvalidTaskInputs, in bounded time and size."""

from __future__ import annotations

import time

import pytest

from inference_consumer import documents
from inference_consumer.documents import extract_text
from inference_consumer.exceptions import InvalidTaskInputs
from tests.helpers import make_raw_pdf

TEXT = b"BT /F1 12 Tf 72 700 Td (%s) Tj ET"


def test_a_flate_bomb_is_unreadable_not_a_crash() -> None:
    bomb = make_raw_pdf(b" " * 200_000_000)  # ~200 kB that inflate to 200 MB
    assert len(bomb) < 256 * 1024
    with pytest.raises(InvalidTaskInputs, match="PDF cannot be read"):
        extract_text(bomb, "application/pdf")


def test_a_stream_that_lies_about_its_length_is_unreadable() -> None:
    with pytest.raises(InvalidTaskInputs, match="PDF cannot be read"):
        extract_text(make_raw_pdf(TEXT % b"hi", declared_length=10**12), "application/pdf")


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n" + bytes(range(256)) * 64, b"%PDF-", b"%PDF-1.4\n1 0 obj << /Kids [" * 500],
)
def test_pdf_magic_followed_by_garbage_is_unreadable(data: bytes) -> None:
    with pytest.raises(InvalidTaskInputs, match="PDF cannot be read"):
        extract_text(data, "application/pdf")


def test_millions_of_operators_stop_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "PDF_DEADLINE_S", 0.5)
    slow = make_raw_pdf(b"BT " + b"0 0 Td " * 100_000 + b"ET")  # no text, much work
    started = time.monotonic()
    with pytest.raises(InvalidTaskInputs, match=r"took over 0\.5 s"):
        extract_text(slow, "application/pdf")
    assert time.monotonic() - started < 15


def test_the_extracted_text_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "MAX_TEXT_CHARS", 1000)
    text = extract_text(
        make_raw_pdf(b"BT /F1 12 Tf " + b"(word ) Tj " * 5000 + b"ET"), "application/pdf"
    )
    assert 0 < len(text) <= 1000
    assert text.startswith("word")
    assert len(extract_text(b"a" * 5000, "text/plain")) == 1000
