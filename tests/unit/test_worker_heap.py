"""The worker hands the memory a batch freed back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference_consumer.config import WorkerSettings

# Fills ~200 MiB of the C heap with chunks under glibc's mmap threshold, frees all
# but the last (which pins the heap's top, so glibc cannot shrink it by itself), and
# reports the RSS before and after the trimmer.
PROBE = """
import ctypes, json
from inference_consumer.heap import heap_trimmer
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss_mib():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
chunks = [libc.malloc(100 * 1024) for _ in range(2000)]
for chunk in chunks:
    ctypes.memset(chunk, 1, 100 * 1024)
for chunk in chunks[:-1]:
    libc.free(chunk)
freed = rss_mib()
trim = heap_trimmer()
assert trim is not None and trim() is None
trimmed = rss_mib()
assert trim() is None  # nothing left to release: still None
print(json.dumps({"freed": freed, "trimmed": trimmed}))
"""


def test_the_trimmer_returns_the_heaps_free_pages_to_the_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rss = json.loads(done.stdout)
    assert rss["freed"] - rss["trimmed"] > 150, rss


def test_workers_trim_by_default_and_the_setting_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert WorkerSettings().trim_heap is True
    monkeypatch.setenv("WORKER_TRIM_HEAP", "false")
    assert WorkerSettings().trim_heap is False
