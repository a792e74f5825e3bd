"""Task states: the ``TaskState`` enum of ``task_state.avsc``, as Python names.

The Avro enum is the source of truth. ``TaskState`` spells the same symbols as a
``Literal`` so that type checkers and the API's OpenAPI schema see them; the
module refuses to import if the two ever differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

from schemas.exceptions import SchemaError

__all__ = [
    "ALL_STATES",
    "CANCELLED",
    "FAILED",
    "PENDING",
    "RETRYING",
    "RUNNING",
    "SUCCESS",
    "TERMINAL_STATES",
    "TaskState",
]

TaskState = Literal["PENDING", "RUNNING", "RETRYING", "SUCCESS", "FAILED", "CANCELLED"]


def _enum_symbols() -> tuple[str, ...]:
    schema = json.loads((Path(__file__).with_name("task_state.avsc")).read_text())
    state = next(field for field in schema["fields"] if field["name"] == "state")
    return tuple(state["type"]["symbols"])


ALL_STATES: tuple[str, ...] = _enum_symbols()
if get_args(TaskState) != ALL_STATES:
    raise SchemaError(f"TaskState {get_args(TaskState)} differs from task_state.avsc {ALL_STATES}")

PENDING, RUNNING, RETRYING = "PENDING", "RUNNING", "RETRYING"
SUCCESS, FAILED, CANCELLED = "SUCCESS", "FAILED", "CANCELLED"
TERMINAL_STATES = frozenset({SUCCESS, FAILED, CANCELLED})
