"""Text extraction and chunking of uploaded documents (txt, md, pdf)."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from typing import Any

from inference_consumer.exceptions import InvalidTaskInputs

__all__ = ["Passage", "chunk_text", "extract_text"]

TEXT_TYPES = ("text/plain", "text/markdown")
# Far more than the passages a search keeps (MAX_PASSAGES of ~500 characters):
# the rest of a longer text is never read.
MAX_TEXT_CHARS = 2_000_000
# A small PDF can hold millions of drawing operators; a batch of them must still
# finish well within the consumer's max.poll.interval.ms.
PDF_DEADLINE_S = 10.0


@dataclass(frozen=True)
class Passage:
    """A slice of the extracted text, with its character offsets."""

    text: str
    start: int
    end: int


def extract_text(data: bytes, content_type: str) -> str:
    """The document's text; raises InvalidTaskInputs for unreadable documents.

    At most ``MAX_TEXT_CHARS`` characters are returned; a PDF whose text takes
    longer than ``PDF_DEADLINE_S`` to extract is unreadable.
    """
    if content_type in TEXT_TYPES:
        try:
            return data.decode("utf-8")[:MAX_TEXT_CHARS]
        except UnicodeDecodeError as exc:
            raise InvalidTaskInputs(f"document is not UTF-8 text: {exc}") from exc
    if content_type == "application/pdf":
        return _pdf_text(data)
    raise InvalidTaskInputs(f"unsupported document type {content_type!r}")


class _EnoughText(Exception):
    """Raised from pypdf's visitor to stop extracting: the text is long enough."""


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    budget = _ExtractionBudget(time.monotonic() + PDF_DEADLINE_S)
    pages: list[str] = []
    try:
        for page in PdfReader(io.BytesIO(data)).pages:
            budget.check()
            budget.page = []
            pages.append(
                page.extract_text(visitor_operand_before=budget.visit, visitor_text=budget.count)
                or ""
            )
    except _EnoughText:
        pages.append("".join(budget.page))  # the page cut short, as far as it was read
    except InvalidTaskInputs:
        raise
    except Exception as exc:  # pypdf raises many kinds of error on a hostile file
        raise InvalidTaskInputs(f"PDF cannot be read: {type(exc).__name__}: {exc}") from exc
    return "\n\n".join(pages)[:MAX_TEXT_CHARS]


class _ExtractionBudget:
    """Watches pypdf's extraction through its visitors: a deadline and a text size."""

    def __init__(self, deadline: float) -> None:
        self.deadline, self.size = deadline, 0
        self.page: list[str] = []

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise InvalidTaskInputs(f"PDF text extraction took over {PDF_DEADLINE_S:g} s")
        if self.size > MAX_TEXT_CHARS:
            raise _EnoughText

    def visit(self, *_: Any) -> None:
        self.check()

    def count(self, text: str, *_: Any) -> None:
        self.page.append(text)
        self.size += len(text)


def chunk_text(text: str, size: int = 600, overlap: int = 100) -> list[Passage]:
    """Overlapping passages of about ``size`` characters, cut at whitespace.

    Offsets index into ``text``, so a client can highlight each passage.
    """
    passages: list[Passage] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        passage = text[start:end].strip()
        if passage:
            passages.append(Passage(re.sub(r"\s+", " ", passage), start, end))
        if end >= len(text):
            break
        resume = max(end - overlap, start + 1)
        space = text.find(" ", resume, end)  # start the overlap on a word boundary
        start = _skip_space(text, space if space != -1 else resume)
    return passages


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index
