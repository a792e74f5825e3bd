"""The worker's entry point keeps scikit-learn, and Triton without a GPU, out of the
worker process."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from asyncarch.cli import skip_unused_model_imports
skip_unused_model_imports()
from inference_consumer.config import default_model_dir
from inference_consumer.model import SentenceEncoder
encoder = SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2", device="cpu", threads=1)
assert tuple(encoder.encode(["a phone", "a tv"]).shape) == (2, 384)
import torch
loaded = sorted({m.split(".")[0] for m in sys.modules if sys.modules[m]} & {"sklearn", "triton"})
print(json.dumps({"cuda": torch.cuda.is_available(), "loaded": loaded}))
"""


def test_the_model_loads_and_runs_without_scikit_learn_or_triton_on_the_cpu() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert "sklearn" not in probe["loaded"]
    # With a GPU, Triton may serve torch; without one it must stay out.
    assert probe["cuda"] or "triton" not in probe["loaded"], probe
