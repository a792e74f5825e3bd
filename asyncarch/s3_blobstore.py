"""Documents in an S3-compatible bucket (needs ``pip install boto3``)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from urllib.parse import urlparse

from asyncarch.blob_ref import BlobError, BlobRef, verify_blob

__all__ = ["S3BlobStore"]


class S3BlobStore:
    """``s3://bucket/prefix/<uuid>`` objects, through boto3."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise BlobError("BLOB_URL is s3:// but boto3 is not installed") from exc
        self.bucket, self.prefix = bucket, prefix.rstrip("/")
        self._s3 = boto3.client("s3", endpoint_url=endpoint_url)

    def put(self, chunks: Iterable[bytes], suffix: str = "") -> BlobRef:
        """Upload the document; returns its reference."""
        data = b"".join(chunks)
        key = f"{self.prefix}/{uuid.uuid4().hex}{suffix}".lstrip("/")
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return BlobRef(f"s3://{self.bucket}/{key}", len(data), hashlib.sha256(data).hexdigest())

    def read(self, ref: BlobRef) -> bytes:
        """The object's bytes, checked against the reference."""
        parsed = urlparse(ref.uri)
        if parsed.netloc != self.bucket:
            raise BlobError(f"{ref.uri} is outside the document store")
        body = self._s3.get_object(Bucket=self.bucket, Key=parsed.path.lstrip("/"))["Body"]
        return verify_blob(ref, body.read())

    def delete(self, uri: str) -> None:
        """Remove the object."""
        self._s3.delete_object(Bucket=self.bucket, Key=urlparse(uri).path.lstrip("/"))
