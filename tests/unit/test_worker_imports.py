"""The worker's entry point keeps scikit-learn out of the worker process."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from asyncarch.cli import skip_unused_model_imports
skip_unused_model_imports()
from inference_consumer.config import default_model_dir
from inference_consumer.model import SentenceEncoder
encoder = SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2", device="cpu", threads=1)
assert tuple(encoder.encode(["a phone", "a tv"]).shape) == (2, 384)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn" and sys.modules[m])
print(loaded)
"""


def test_the_model_loads_and_runs_without_scikit_learn() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
