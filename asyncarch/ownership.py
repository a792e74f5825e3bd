"""Who owns a data folder or a port: an flock held for as long as the owner lives.

The lock file also holds a JSON line about its holder (pid, ports), so a
second launcher can say exactly what is already running. The kernel drops an
flock when the last process holding it dies, so a crash never leaves a stale
claim behind, and a recycled pid can never pass for the owner.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from asyncarch.exceptions import AsyncarchError
from asyncarch.process import listener_pid

__all__ = ["AlreadyRunning", "OwnerLock", "busy_ports", "port_taken"]


class AlreadyRunning(AsyncarchError):
    """Something else already owns the data folder or a port this run needs."""


class OwnerLock:
    """An exclusive, non-blocking flock on ``path`` that records its holder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, **info: Any) -> None:
        """Take the lock and record ``info``; raise AlreadyRunning with the holder's info."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(_describe(self.holder() or {})) from None
        self._file = handle
        self.record(**info)

    def record(self, **info: Any) -> None:
        """Replace the recorded holder info (the lock must be held)."""
        assert self._file is not None, "record() needs the lock"
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), **info}) + "\n")
        self._file.flush()

    def fileno(self) -> int:
        """The locked descriptor, to hand to a child that should hold the lock too."""
        assert self._file is not None, "fileno() needs the lock"
        return self._file.fileno()

    def release(self) -> None:
        """Drop this process's hold (children given the descriptor keep theirs)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def holder(self) -> dict[str, Any] | None:
        """The holder's recorded info while someone holds the lock, else None."""
        try:
            handle = self.path.open()
        except FileNotFoundError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                with contextlib.suppress(ValueError):
                    return dict(json.loads(handle.read() or "{}"))
                return {}
            return None


def _describe(info: dict[str, Any]) -> str:
    what = info.get("what", "another asyncarch process")
    details = ", ".join(
        f"{key} {value}" for key, value in info.items() if key != "what" and value is not None
    )
    return f"{what} is already running ({details})" if details else f"{what} is already running"


def busy_ports(host: str, ports: Iterable[int]) -> list[int]:
    """The ports in ``ports`` that something already listens on (0 means unused)."""
    return [port for port in ports if port and not _can_bind(host, port)]


def port_taken(host: str, port: int, what: str) -> AlreadyRunning:
    """The error for a busy ``port``, naming its listener's pid when this user can see it."""
    pid = listener_pid(port)
    by = f" by pid {pid}" if pid is not None else ""
    return AlreadyRunning(f"port {port} on {host} ({what}) is already in use{by}")


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As servers bind: a port left in TIME_WAIT is free, one being listened on is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
