"""HTTPS for the API: the certificate and key uvicorn serves with, checked before it starts."""

from __future__ import annotations

import ssl
from typing import TypedDict

from asyncarch.exceptions import AsyncarchError
from producer_api.core.config import ApiSettings

__all__ = ["TlsConfigError", "UvicornTls", "tls_options"]

CERT, KEY = "API_SSL_CERTFILE", "API_SSL_KEYFILE"


class TlsConfigError(AsyncarchError):
    """The HTTPS settings cannot work: one file of the pair, or a file that does not load."""


class UvicornTls(TypedDict, total=False):
    """The keyword arguments of ``uvicorn.run`` that turn HTTPS on."""

    ssl_certfile: str
    ssl_keyfile: str


def tls_options(settings: ApiSettings) -> UvicornTls:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile``; empty when HTTPS is off.

    Raises:
        TlsConfigError: Only one of the two is set, a file cannot be read, or the
            pair does not load as a certificate chain and its (unencrypted) key.
    """
    cert, key = settings.ssl_certfile or None, settings.ssl_keyfile or None
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        given, missing = (KEY, CERT) if cert is None else (CERT, KEY)
        raise TlsConfigError(f"{given} is set but {missing} is not: HTTPS needs both")
    _check_readable(CERT, cert)
    _check_readable(KEY, key)
    try:
        # An empty password: an encrypted key fails here instead of prompting.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, "")
    except ssl.SSLError as exc:
        why = f" ({exc.reason})" if exc.reason else ""
        raise TlsConfigError(
            f"{CERT}={cert} and {KEY}={key} do not load as a PEM certificate and its "
            f"unencrypted private key{why}"
        ) from exc
    return UvicornTls(ssl_certfile=cert, ssl_keyfile=key)


def _check_readable(variable: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(f"{variable}={path}: {exc.strerror or exc}") from exc
