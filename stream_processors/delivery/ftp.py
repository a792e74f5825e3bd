"""One delivery of a result document to an FTP server, through ftplib (FTPS when configured).

Blocking: ``delivery/sinks.py`` runs it in a thread, after checking the
server's address. The control connection goes to that checked address, not to
the name, and passive data connections go to the same address whatever the
server's PASV answer says (ftplib's default), so neither DNS nor the server
can point an upload elsewhere. With ``DELIVERY_FTP_TLS`` both connections use
TLS (explicit ``AUTH TLS``, ``PROT P``), verified against the host's name.

The file is uploaded as ``<name>.part`` and then renamed, so a reader never
sees half a document; a retry overwrites the same name.
"""

from __future__ import annotations

import ftplib
import io
import ssl

from asyncarch.config import DeliverySettings
from asyncarch.sink_targets import SinkTarget
from stream_processors.delivery.deliveries import (
    DELIVERED,
    FAILED,
    RETRYING,
    AttemptResult,
)
from stream_processors.delivery.targets import IPAddress

__all__ = ["store_result"]


def store_result(
    settings: DeliverySettings,
    target: SinkTarget,
    address: IPAddress,
    task_id: str,
    body: bytes,
    timeout_s: float,
) -> AttemptResult:
    """Store (or overwrite) ``<path><task_id>.json``; never raises for the server's answers."""
    ftp = _session(settings, timeout_s)
    try:
        ftp.connect(str(address), target.port or 21)
        ftp.host = target.host  # the name TLS verifies, for this and the data connections
        ftp.login(settings.ftp_user, settings.ftp_password.get_secret_value())
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
        _upload(ftp, target.key(task_id), body)
        ftp.quit()
    except ftplib.error_perm as exc:  # 5xx: denied, no such folder, bad login
        return AttemptResult(FAILED, error={"type": "FTPError", "message": _reply(exc)})
    except (ftplib.Error, OSError, EOFError) as exc:  # 4xx, no connection, timeouts, TLS
        message = _reply(exc) if isinstance(exc, ftplib.Error) else str(exc) or type(exc).__name__
        return AttemptResult(RETRYING, error={"type": type(exc).__name__, "message": message})
    finally:
        ftp.close()
    return AttemptResult(DELIVERED)


def _session(settings: DeliverySettings, timeout_s: float) -> ftplib.FTP:
    if settings.ftp_tls:
        return ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=timeout_s)
    return ftplib.FTP(timeout=timeout_s)


def _upload(ftp: ftplib.FTP, name: str, body: bytes) -> None:
    partial = f"{name}.part"
    ftp.storbinary(f"STOR {partial}", io.BytesIO(body))
    try:
        ftp.rename(partial, name)
    except ftplib.error_perm:  # some servers do not rename onto an existing file
        ftp.delete(name)
        ftp.rename(partial, name)


def _reply(exc: Exception) -> str:
    return f"FTP {exc}".strip()
