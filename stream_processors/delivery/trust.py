"""Which certificate authorities a sink's TLS connection trusts.

A sink's CA bundle (``DELIVERY_FTP_CA_BUNDLE``, ``DELIVERY_S3_CA_BUNDLE``) is a PEM
file of the only CAs a server's certificate may chain to, e.g. a company's
private CA; unset, the system's CAs. Each bundle is read once per process and
its context shared by every attempt (an ``ssl.SSLContext`` is thread-safe).
"""

from __future__ import annotations

import ssl
from functools import cache

from stream_processors.exceptions import SinkTrustUnavailable

__all__ = ["trusted_context"]


@cache
def trusted_context(ca_bundle: str | None, variable: str) -> ssl.SSLContext:
    """A client context that verifies certificate and host name against ``ca_bundle``.

    Raises:
        SinkTrustUnavailable: The file is missing, unreadable or holds no certificate.
    """
    try:
        return ssl.create_default_context(cafile=ca_bundle or None)
    except OSError as exc:  # ssl.SSLError too: a file without a PEM certificate
        raise SinkTrustUnavailable(f"{variable}={ca_bundle} cannot be loaded: {exc}") from exc
