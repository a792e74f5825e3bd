"""Text extraction and chunking of uploaded documents (txt, md, pdf)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from inference_consumer.exceptions import InvalidTaskInputs

__all__ = ["Passage", "chunk_text", "extract_text"]

TEXT_TYPES = ("text/plain", "text/markdown")


@dataclass(frozen=True)
class Passage:
    """A slice of the extracted text, with its character offsets."""

    text: str
    start: int
    end: int


def extract_text(data: bytes, content_type: str) -> str:
    """The document's text; raises InvalidTaskInputs for unreadable documents."""
    if content_type in TEXT_TYPES:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidTaskInputs(f"document is not UTF-8 text: {exc}") from exc
    if content_type == "application/pdf":
        return _pdf_text(data)
    raise InvalidTaskInputs(f"unsupported document type {content_type!r}")


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InvalidTaskInputs(f"PDF cannot be read: {exc}") from exc


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
