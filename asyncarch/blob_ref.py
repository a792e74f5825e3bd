"""What an event says about a stored document, and the check of its bytes.

A leaf of the blob store: both store kinds (``blobstore``, ``s3_blobstore``)
import it, so neither imports the other back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asyncarch.exceptions import AsyncarchError

__all__ = ["BlobError", "BlobRef", "verify_blob"]


class BlobError(AsyncarchError):
    """A blob cannot be stored or read, or its bytes are not what the event says."""


@dataclass(frozen=True)
class BlobRef:
    """Where a stored document lives and what its bytes must be."""

    uri: str
    size: int
    sha256: str


def verify_blob(ref: BlobRef, data: bytes) -> bytes:
    """The data, if it matches the reference's size and SHA-256; else BlobError."""
    if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise BlobError(f"{ref.uri} does not match its recorded size and sha256")
    return data
