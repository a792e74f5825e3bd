"""Claim-check storage for uploaded documents.

Documents never travel inside Kafka events (the default message limit is
about 1 MB): the API stores the bytes here and the request event carries the
blob's URI, size and SHA-256; the worker reads them back and checks both.
The default store is a local folder; ``s3://bucket/prefix`` selects an
S3-compatible store through boto3 (installed separately).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from asyncarch.blob_ref import BlobError, BlobRef, verify_blob
from asyncarch.config import BlobSettings

__all__ = [
    "BlobError",
    "BlobRef",
    "BlobSettings",
    "BlobStore",
    "LocalBlobStore",
    "open_store",
    "verify_blob",
]


class BlobStore(Protocol):
    """Put a document's bytes, read them back by URI, delete them."""

    def put(self, chunks: Iterable[bytes], suffix: str = "") -> BlobRef: ...

    def read(self, ref: BlobRef) -> bytes: ...

    def delete(self, uri: str) -> None: ...


class LocalBlobStore:
    """Documents as files under one root folder (``file://`` URIs)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def put(self, chunks: Iterable[bytes], suffix: str = "") -> BlobRef:
        """Write the chunks to a new file atomically; returns its reference."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            final = self.root / f"{uuid.uuid4().hex}{suffix}"
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return BlobRef(final.as_uri(), size, digest.hexdigest())

    def read(self, ref: BlobRef) -> bytes:
        """The blob's bytes, after checking they match its size and SHA-256."""
        try:
            data = self._path(ref.uri).read_bytes()
        except OSError as exc:
            raise BlobError(f"cannot read {ref.uri}: {exc.strerror}") from exc
        return verify_blob(ref, data)

    def delete(self, uri: str) -> None:
        """Remove a blob; a missing one is fine."""
        self._path(uri).unlink(missing_ok=True)

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        path = Path(unquote(parsed.path)).resolve()
        if parsed.scheme != "file" or not path.is_relative_to(self.root):
            raise BlobError(f"{uri} is outside the document store")
        return path


def open_store(settings: BlobSettings | None = None) -> BlobStore:
    """The store named by ``BLOB_URL``."""
    settings = settings or BlobSettings()
    parsed = urlparse(settings.url)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from asyncarch.s3_blobstore import S3BlobStore

        return S3BlobStore(parsed.netloc, parsed.path.lstrip("/"), settings.s3_endpoint_url)
    raise BlobError(f"unsupported BLOB_URL scheme {parsed.scheme!r}: use file:// or s3://")
