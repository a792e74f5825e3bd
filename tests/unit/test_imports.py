"""Every module of the five packages imports on its own, so no import cycle hides.

A cycle shows only when the modules of a cycle are imported in one order, so
each module is imported first, in a process where no project module has been
imported yet. Starting a new interpreter per module would cost the torch
import (tens of seconds) each time; instead one helper process imports the
third-party libraries once and forks a child per module: in the child the
project's modules are as fresh as in a new interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "asyncarch", "producer_api", "inference_consumer", "stream_processors")

# Imports the third-party libraries, then each module given on the command line
# in a forked child (two at a time); prints "FAIL <module>" and the error for
# each one that does not import.
IMPORT_EACH = """
import importlib, os, sys, traceback
for lib in ("torch", "transformers", "faust", "fastapi", "confluent_kafka", "fastavro",
            "pydantic_settings", "httpx", "aiohttp", "prometheus_client", "uvicorn"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
assert not any(name.split(".")[0] in sys.argv[1].split(",") for name in sys.modules)
running, failed = {}, []
def reap():
    pid, status = os.wait()
    if status:
        failed.append(running[pid])
    del running[pid]
for module in sys.argv[2:]:
    if len(running) >= 2:
        reap()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            print("FAIL", module, traceback.format_exc(limit=-3), sep="\\n", flush=True)
            os._exit(1)
        os._exit(0)
    running[pid] = module
while running:
    reap()
sys.exit(1 if failed else 0)
"""


def project_modules() -> list[str]:
    """Dotted names of every module in the five packages, found on disk."""
    modules = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_the_module_list_covers_every_package() -> None:
    modules = project_modules()
    assert set(PACKAGES) <= set(modules)
    assert "stream_processors.tables" in modules
    assert "producer_api.core.config" in modules


def test_every_module_imports_alone_in_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, ",".join(PACKAGES), *project_modules()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    failures = [line.split("\n", 1)[0] for line in result.stdout.split("FAIL\n")[1:]]
    assert result.returncode == 0, f"modules that do not import alone: {failures}\n{result}"
