"""Real result sinks on loopback for tests: an S3-compatible HTTP server (moto's server
mode) and an FTP server (pyftpdlib), each in a thread of the test process, each able
to go down and come back on the same port. Given a certificate, S3 speaks HTTPS and
FTP requires explicit FTPS (``AUTH TLS`` before the login, ``PROT P`` before any
data connection; pyftpdlib's TLS handler needs pyOpenSSL).

moto keeps its buckets in the process, so they outlive a restart of the server.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from tests.certificates import SelfSigned
from tests.stack import free_port

__all__ = ["FTP_PASSWORD", "FTP_USER", "S3_CREDENTIALS", "FtpServer", "S3Server"]

# Anything goes for moto; boto3 only needs credentials to sign with.
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
FTP_USER, FTP_PASSWORD = "asyncarch", "sink-password"

# pyftpdlib logs its banner on every poll of the loop below, and each session.
logging.getLogger("pyftpdlib").setLevel(logging.WARNING)


def _quiet_handler() -> Any:
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log(self, type: str, message: str, *args: Any) -> None:
            pass  # one line a request on stderr drowns the test's output

    return Quiet


class S3Server:
    """moto's S3 over HTTP (HTTPS with ``tls``) on 127.0.0.1."""

    def __init__(self, tls: SelfSigned | None = None) -> None:
        self.port = free_port()
        self.tls = tls
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1",
            self.port,
            app,
            threaded=True,
            request_handler=_quiet_handler(),
            ssl_context=(str(self.tls.cert), str(self.tls.key)) if self.tls else None,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until ``start``."""
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(10)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
            verify=str(self.tls.cert) if self.tls else None,
        )


class FtpServer:
    """pyftpdlib on 127.0.0.1, one user whose home is ``root``; FTPS only with ``tls``."""

    def __init__(self, root: Path, tls: SelfSigned | None = None) -> None:
        self.root = root
        self.tls = tls
        self.port = free_port()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        # A loop of its own: the default one is shared by every server of the process,
        # and closing one server's would close the others' sockets.
        server = FTPServer(("127.0.0.1", self.port), self._handler(), ioloop=IOLoop())
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(server,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until ``start``."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _handler(self) -> type:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler

        authorizer = DummyAuthorizer()
        authorizer.add_user(FTP_USER, FTP_PASSWORD, str(self.root), perm="elradfmw")
        if self.tls is None:
            return type("SinkFTPHandler", (FTPHandler,), {"authorizer": authorizer})
        # A class of its own each start: pyftpdlib keeps the built SSL context on the class.
        tls = {
            "certfile": str(self.tls.cert),
            "keyfile": str(self.tls.key),
            "tls_control_required": True,
            "tls_data_required": True,
            "ssl_context": None,
        }
        return type("SinkFTPSHandler", (TLS_FTPHandler,), {"authorizer": authorizer, **tls})

    def _serve(self, server: Any) -> None:
        # pyftpdlib's loop is not thread-safe: it is polled and closed in its own thread.
        try:
            while not self._stop.is_set():
                server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        finally:
            server.close_all()
