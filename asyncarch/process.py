"""Child processes that never outlive their parent, and how they ended.

A child started ``tied`` gets ``PR_SET_PDEATHSIG=SIGKILL`` (Linux): the kernel
kills it the moment the thread that started it dies, however that happens,
SIGKILL included. It also gets a process group of its own, so a Ctrl-C in the
terminal (SIGINT to the foreground group) reaches only the parent, which then
stops its children in order. A ``detached`` child gets a session of its own
and outlives its parent on purpose (the durable ``asyncarch kafka up`` broker).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

__all__ = ["alive", "describe_exit", "listener_pid", "listens_on", "spawn", "terminate"]

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that ties the child's life to ``parent_pid``'s thread."""
    if _LIBC is None:
        return None
    prctl = _LIBC.prctl  # resolved before fork: the child only calls it

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took hold
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout: IO[Any] | int | None = None,
    tied: bool = True,
    pass_fds: Iterable[int] = (),
) -> subprocess.Popen[str]:
    """Start ``argv``; ``tied`` children die with the calling thread, others are daemons.

    Call it from a thread that lives as long as the child should (the main
    thread): Linux sends the death signal when the *thread* that forked exits.
    """
    group: dict[str, Any] = (
        {"process_group": 0, "preexec_fn": _die_with(os.getpid())}
        if tied
        else {"start_new_session": True}
    )
    return subprocess.Popen(
        list(argv),
        env=env,
        text=True,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        pass_fds=tuple(pass_fds),
        **group,
    )


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``signal SIGKILL``, from a Popen return code."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


def terminate(processes: Iterable[subprocess.Popen[str]], timeout_s: float) -> None:
    """SIGTERM every live process, then SIGKILL those still alive after ``timeout_s``."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 or IPv6), from /proc/net."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows, None)
                for row in rows:
                    fields = row.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            continue
    return inodes


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds the socket listening on ``port``.

    Where /proc is not there to ask (not Linux), says True.
    """
    if not os.path.isdir("/proc/net"):
        return True
    return _holds(pid, _listening_inodes(port))


def listener_pid(port: int) -> int | None:
    """A process (that this user may inspect) listening on ``port``, if any."""
    inodes = _listening_inodes(port) if os.path.isdir("/proc/net") else set()
    if inodes:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _holds(int(entry), inodes):
                return int(entry)
    return None


def _holds(pid: int, inodes: set[str]) -> bool:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            continue
    return False
