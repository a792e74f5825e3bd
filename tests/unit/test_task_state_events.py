"""The public TaskStateChanged event: built from table states, small, and round-trips."""

from __future__ import annotations

import io
import json

import fastavro

from asyncarch.tail import describe_change
from schemas.codec import SCHEMA_DIR, codec_for
from stream_processors.public_state import (
    encode_state_changed,
    state_changed_record,
    summarize_result,
)
from stream_processors.state_machine import TaskEvent, apply

VECTOR = [0.01 * i for i in range(384)]
REQUEST = TaskEvent(
    "t1",
    "PENDING",
    1_000,
    attempt=0,
    request={"kind": "similarity", "submitted_at": 1_000, "callback_url": None},
)
SUCCESS = TaskEvent(
    "t1",
    "SUCCESS",
    2_500,
    attempt=1,
    result={
        "output": {"similarity": 0.61, "embedding_a": VECTOR, "embedding_b": VECTOR},
        "model": {"name": "all-MiniLM-L6-v2", "revision": "abc", "device": "cpu"},
        "worker": "w1",
        "duration_ms": 12.5,
    },
)


def _millis(value) -> int:  # type: ignore[no-untyped-def]
    return int(value.timestamp() * 1000)


def _final_state() -> dict:
    state = apply(None, REQUEST)
    state = apply(state, SUCCESS)
    assert state is not None
    return state


def test_round_trip_of_a_success() -> None:
    data = encode_state_changed(_final_state())
    decoded = codec_for("TaskStateChanged").decode(data)
    assert decoded["task_id"] == "t1"
    assert decoded["kind"] == "similarity"
    assert decoded["state"] == "SUCCESS"
    assert decoded["attempt"] == 1
    assert _millis(decoded["submitted_at"]) == 1_000
    assert _millis(decoded["updated_at"]) == 2_500
    assert decoded["error"] is None
    assert decoded["result"]["similarity"] == 0.61
    assert decoded["result"]["model"] == "all-MiniLM-L6-v2"
    assert decoded["result"]["duration_ms"] == 12.5


def test_embeddings_stay_out_so_the_event_is_small() -> None:
    data = encode_state_changed(_final_state())
    assert len(data) < 200
    assert "embedding_a" not in json.dumps(state_changed_record(_final_state()))


def test_round_trip_of_a_failure_before_the_request_was_seen() -> None:
    failed = TaskEvent("t2", "FAILED", 3_000, attempt=2, error={"type": "Boom", "message": "no"})
    state = apply(None, failed)
    assert state is not None
    decoded = codec_for("TaskStateChanged").decode(encode_state_changed(state))
    assert decoded["kind"] is None and decoded["submitted_at"] is None
    assert decoded["state"] == "FAILED"
    assert decoded["error"] == {"type": "Boom", "message": "no"}
    assert decoded["result"] is None


def test_a_plain_avro_reader_with_the_avsc_alone_decodes_it() -> None:
    schema = fastavro.parse_schema(json.loads((SCHEMA_DIR / "task_state.avsc").read_text()))
    data = encode_state_changed(_final_state())
    assert data[:2] == b"\xc3\x01"
    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema)
    assert record["state"] == "SUCCESS"


def test_summaries_of_each_kind() -> None:
    embed = summarize_result(
        {"output": {"vectors": [VECTOR, VECTOR], "dimensions": 384}, "model": {"name": "m"}}
    )
    assert embed is not None
    assert (embed["vector_count"], embed["dimensions"], embed["similarity"]) == (2, 384, None)
    passages = [{"text": "long text", "score": 0.9, "start": 0, "end": 9}]
    search = summarize_result({"output": {"passages": passages}, "model": {"name": "m"}})
    assert search is not None
    assert (search["passage_count"], search["top_score"]) == (1, 0.9)
    assert summarize_result(None) is None


def test_tail_lines() -> None:
    decoded = codec_for("TaskStateChanged").decode(encode_state_changed(_final_state()))
    line = describe_change("t1", decoded)
    assert " t1 SUCCESS " in line
    assert "similarity=0.6100" in line and "kind=similarity" in line
    assert line.startswith("1970-01-01T00:00:02.500Z")
    as_json = json.loads(describe_change("t1", decoded, as_json=True))
    assert as_json["updated_at"] == 2_500 and as_json["state"] == "SUCCESS"
    assert describe_change("t1", None).endswith(" t1 EXPIRED")
