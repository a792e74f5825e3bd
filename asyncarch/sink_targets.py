"""Result sinks named by a task's ``deliver_to``: what the URL means, and whether the
server's settings allow it.

Pure logic, shared by the API (which refuses a destination at submit) and the
stream processor (which checks again before every attempt: the settings may
have changed since). Credentials never come from the URL; they are the
server's (``DeliverySettings``).

``s3://bucket/prefix`` writes the object ``<prefix><task_id>.json``;
``ftp://host[:port]/path/`` stores the file ``path/<task_id>.json``, relative
to the login directory (RFC 1738). A prefix that ends without ``/`` is a name
prefix: ``s3://bucket/run-`` writes ``run-<task_id>.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from asyncarch.config import DeliverySettings
from asyncarch.exceptions import SinkUrlError

__all__ = ["FTP_PORT", "SCHEMES", "SinkTarget", "destination_refusal", "parse_sink_url"]

SCHEMES = ("s3", "ftp")
FTP_PORT = 21
MAX_URL_CHARS = 1024
# S3's bucket naming rules (no upper case, no underscores, 3-63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class SinkTarget:
    """A parsed ``deliver_to``: the bucket (s3) or host (ftp), and the key prefix."""

    scheme: str
    host: str
    port: int | None
    prefix: str

    def key(self, task_id: str) -> str:
        """The object key (s3) or file path (ftp) of a task's result document."""
        return f"{self.prefix}{task_id}.json"

    @property
    def directory(self) -> str:
        """The folder part of the prefix (``a/b/`` of ``a/b/run-``), "" at the root."""
        return self.prefix.rpartition("/")[0]


def parse_sink_url(url: str) -> SinkTarget:
    """Parse a ``deliver_to`` URL.

    Raises:
        SinkUrlError: Not ``s3://bucket[/prefix]`` or ``ftp://host[:port][/path]``, or it
            carries credentials, a query or a fragment, or a ``.``/``..`` path segment.
    """
    if len(url) > MAX_URL_CHARS or any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise SinkUrlError(f"deliver_to must be at most {MAX_URL_CHARS} printable characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SinkUrlError(f"invalid deliver_to URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise SinkUrlError("deliver_to must be s3://bucket/prefix or ftp://host/path")
    if "@" in parts.netloc:
        raise SinkUrlError("deliver_to carries no credentials: the server's settings hold them")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise SinkUrlError("deliver_to has no query or fragment")
    prefix = _prefix(parts.path)
    if scheme == "s3":
        if port is not None or not _BUCKET.match(parts.netloc):
            raise SinkUrlError(f"{parts.netloc!r} is not an S3 bucket name")
        return SinkTarget("s3", parts.netloc, None, prefix)
    return SinkTarget("ftp", parts.hostname, port or FTP_PORT, prefix)


def destination_refusal(target: SinkTarget, settings: DeliverySettings) -> str | None:
    """Why the settings do not allow ``target``, or None when they do."""
    if target.scheme == "s3":
        if not settings.s3_buckets:
            return "delivery to S3 is not enabled on this server (DELIVERY_S3_BUCKETS)"
        where = f"{target.host}/{target.prefix}"
        if any(where.startswith(_as_prefix(entry)) for entry in settings.s3_buckets):
            return None
        return f"s3://{where} is not under any of DELIVERY_S3_BUCKETS"
    if not settings.ftp_hosts:
        return "delivery to FTP is not enabled on this server (DELIVERY_FTP_HOSTS)"
    if (target.host, target.port) in {_host_port(entry) for entry in settings.ftp_hosts}:
        return None
    return f"FTP host {target.host}:{target.port} is not in DELIVERY_FTP_HOSTS"


def _prefix(path: str) -> str:
    prefix = unquote(path).lstrip("/")
    if any(ord(c) < 0x20 or c == "\x7f" for c in prefix):
        raise SinkUrlError("deliver_to's path has no control characters")
    segments = prefix.split("/")
    if any(segment in (".", "..") for segment in segments) or "\\" in prefix:
        raise SinkUrlError("deliver_to's path has no '.', '..' or '\\' segments")
    if "" in segments[:-1]:
        raise SinkUrlError("deliver_to's path has no empty segments ('//')")
    return prefix


def _as_prefix(entry: str) -> str:
    """``bucket`` allows the whole bucket: it is the prefix ``bucket/``."""
    return entry if "/" in entry else f"{entry}/"


def _host_port(entry: str) -> tuple[str, int]:
    parts = urlsplit(f"//{entry}")
    return (parts.hostname or "", parts.port or FTP_PORT)
