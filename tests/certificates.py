"""A throwaway self-signed certificate for TLS tests (HTTPS, FTPS), made with the system's openssl.

(The ``cryptography`` package is not a dependency of the project, so it is not used.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

__all__ = ["SelfSigned", "self_signed"]


class SelfSigned(NamedTuple):
    """A certificate for localhost and 127.0.0.1, and its unencrypted key."""

    cert: Path
    key: Path


def self_signed(folder: Path) -> SelfSigned:
    """Write ``cert.pem`` and ``key.pem`` (P-256, one day) into ``folder``."""
    openssl = shutil.which("openssl")
    assert openssl, "the HTTPS tests need the openssl command (apt-get install openssl)"
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return SelfSigned(cert, key)
