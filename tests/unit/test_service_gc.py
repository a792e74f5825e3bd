"""The services' entry points move their startup objects out of the cyclic collector's
sight, and it still collects the cycles made afterwards."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, weakref
import producer_api.main  # builds the app, as the API's entry point does
from asyncarch.cli import GC_YOUNG_THRESHOLD, freeze_startup_objects
tracked_before = len(gc.get_objects())
freeze_startup_objects()
tracked_after = len(gc.get_objects())

class Node:
    pass

node = Node()
node.self = node  # a cycle made after startup
alive = weakref.ref(node)
del node
gc.collect()
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "tracked_before": tracked_before,
    "tracked_after": tracked_after,
    "young_threshold": gc.get_threshold()[0],
    "expected_threshold": GC_YOUNG_THRESHOLD,
    "cycle_collected": alive() is None,
}))
"""


def test_startup_objects_are_frozen_and_later_cycles_still_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["frozen"] > 10_000  # the app, its modules and their classes
    assert probe["tracked_after"] < probe["tracked_before"] / 10
    assert probe["young_threshold"] == probe["expected_threshold"]
    assert probe["cycle_collected"]
