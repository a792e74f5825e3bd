"""How the clients verify the API's HTTPS certificate: system CAs, a CA bundle, or not at all."""

from __future__ import annotations

import os
import ssl

from asyncarch.client.errors import TlsSetupError

__all__ = ["CA_BUNDLE_ENV", "tls_verify"]

# The CLI's default for --ca-bundle (the library takes ``ca_bundle`` explicitly).
CA_BUNDLE_ENV = "ASYNCARCH_CA_BUNDLE"


def tls_verify(
    ca_bundle: str | os.PathLike[str] | None = None, insecure: bool = False
) -> ssl.SSLContext | bool:
    """httpx's ``verify``: the system CAs, only the CAs of ``ca_bundle``, or none.

    Args:
        ca_bundle: A PEM file of the CA certificates to trust instead of the system's
            (for a self-signed API, its certificate itself).
        insecure: Do not verify the certificate at all (encryption without identity).

    Raises:
        TlsSetupError: Both were given, or the bundle cannot be read as PEM certificates.
    """
    if ca_bundle is not None and insecure:
        raise TlsSetupError("a CA bundle and insecure exclude each other: choose one")
    if insecure:
        return False
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=os.fspath(ca_bundle))
    except ssl.SSLError as exc:  # before OSError, its base class
        raise TlsSetupError(f"CA bundle {ca_bundle}: no PEM certificate in it ({exc})") from exc
    except OSError as exc:
        raise TlsSetupError(f"CA bundle {ca_bundle}: {exc.strerror or exc}") from exc
