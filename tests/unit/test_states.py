"""Task states and the TaskStatus record come from the schemas, in one place."""

from __future__ import annotations

import json
from typing import get_args

from schemas.codec import SCHEMA_DIR, codec_for
from schemas.records import task_status_record
from schemas.states import ALL_STATES, TERMINAL_STATES, TaskState


def test_every_task_state_enum_in_the_schemas_matches_the_python_names() -> None:
    for name in ("task_state.avsc", "task_status.avsc"):
        fields = json.loads((SCHEMA_DIR / name).read_text())["fields"]
        enum = next(f["type"] for f in fields if f["name"] == "state")
        assert tuple(enum["symbols"]) == ALL_STATES == get_args(TaskState), name
    assert set(ALL_STATES) > TERMINAL_STATES == {"SUCCESS", "FAILED", "CANCELLED"}


def test_a_task_status_record_round_trips_through_its_codec() -> None:
    record = task_status_record("t-1", "CANCELLED", 1_700_000_000_000, attempt=0)
    codec = codec_for("TaskStatus")
    decoded = codec.decode(codec.encode(record))
    assert decoded.pop("occurred_at").timestamp() == 1_700_000_000  # timestamp-millis
    assert decoded == {key: value for key, value in record.items() if key != "occurred_at"}
