"""One delivery of a result document to an FTP server, through ftplib (FTPS when configured).

Blocking: ``delivery/sinks.py`` runs it in a thread, after checking the
server's address. The control connection goes to that checked address, not to
the name, and passive data connections go to the same address whatever the
server's PASV answer says (ftplib's default), so neither DNS nor the server
can point an upload elsewhere. With ``DELIVERY_FTP_TLS`` both connections use
TLS (explicit ``AUTH TLS``, ``PROT P``), verified against the host's name and
the system's CAs, or only those of ``DELIVERY_FTP_CA_BUNDLE``. An untrusted
certificate is retried like no connection (the server's certificate may be
renewed meanwhile), until the retry window ends.

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
from stream_processors.delivery.trust import trusted_context

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
    except ssl.SSLCertVerificationError as exc:  # an OSError: caught before the next clause
        error = {"type": type(exc).__name__, "message": _untrusted(settings, target, exc)}
        return AttemptResult(RETRYING, error=error)
    except (ftplib.Error, OSError, EOFError) as exc:  # 4xx, no connection, timeouts, TLS
        message = _reply(exc) if isinstance(exc, ftplib.Error) else str(exc) or type(exc).__name__
        return AttemptResult(RETRYING, error={"type": type(exc).__name__, "message": message})
    finally:
        ftp.close()
    return AttemptResult(DELIVERED)


def _session(settings: DeliverySettings, timeout_s: float) -> ftplib.FTP:
    if settings.ftp_tls:
        context = trusted_context(settings.ftp_ca_bundle, "DELIVERY_FTP_CA_BUNDLE")
        return ftplib.FTP_TLS(context=context, timeout=timeout_s)
    return ftplib.FTP(timeout=timeout_s)


def _upload(ftp: ftplib.FTP, name: str, body: bytes) -> None:
    partial = f"{name}.part"
    ftp.storbinary(f"STOR {partial}", io.BytesIO(body))
    try:
        ftp.rename(partial, name)
    except ftplib.error_perm:  # some servers do not rename onto an existing file
        ftp.delete(name)
        ftp.rename(partial, name)


def _untrusted(
    settings: DeliverySettings, target: SinkTarget, exc: ssl.SSLCertVerificationError
) -> str:
    trusted = f"the CAs of {settings.ftp_ca_bundle}" if settings.ftp_ca_bundle else "system CAs"
    reason = exc.verify_message or str(exc)
    return f"TLS: the certificate of {target.host} is not trusted ({reason}; trusting {trusted})"


def _reply(exc: Exception) -> str:
    return f"FTP {exc}".strip()
