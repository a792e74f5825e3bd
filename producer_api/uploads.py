"""Streams an uploaded document into the claim-check store, checking its real type."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Iterator
from pathlib import PurePath
from typing import BinaryIO

from asyncarch.blobstore import BlobRef, BlobStore
from producer_api.exceptions import PayloadTooLarge, UnsupportedDocument

__all__ = ["store_document"]

CHUNK = 1 << 20
PDF_MAGIC = b"%PDF-"
TYPES_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
}


async def store_document(
    file: BinaryIO, filename: str, store: BlobStore, max_bytes: int
) -> tuple[BlobRef, str]:
    """Store the document; returns its reference and its media type.

    The type comes from the content (PDF magic bytes, or valid UTF-8 text) and
    must agree with the file name's extension. Nothing is left in the store
    when the document is refused.
    """
    suffix = PurePath(filename or "").suffix.lower()
    if suffix not in TYPES_BY_SUFFIX:
        raise UnsupportedDocument(f"{filename!r}: only .txt, .md and .pdf documents are accepted")
    declared = TYPES_BY_SUFFIX[suffix]
    ref = await asyncio.to_thread(store.put, _checked_chunks(file, declared, max_bytes), suffix)
    return ref, declared


def _checked_chunks(file: BinaryIO, declared: str, max_bytes: int) -> Iterator[bytes]:
    text = codecs.getincrementaldecoder("utf-8")()
    size, first = 0, True
    while chunk := file.read(CHUNK):
        if first and chunk.startswith(PDF_MAGIC) != (declared == "application/pdf"):
            raise UnsupportedDocument(f"the content is not {declared}, as its extension says")
        first = False
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"documents are limited to {max_bytes} bytes")
        if declared != "application/pdf":
            _decode(text, chunk, final=False)
        yield chunk
    if first:
        raise UnsupportedDocument("the document is empty")
    if declared != "application/pdf":
        _decode(text, b"", final=True)


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool) -> None:
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument("text documents must be UTF-8") from exc
