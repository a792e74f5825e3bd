"""Logs: JSON lines for machines, one human line a record for people, no per-request lines."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from asyncarch.logs import (
    JsonLineFormatter,
    LogFormatError,
    configure_logging,
    log_format,
    render_line,
)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_http_client_request_lines_are_dropped_but_warnings_kept(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    configure_logging("producer_api")
    logging.getLogger("httpx").info('HTTP Request: GET http://processor/tasks/x/ "200 OK"')
    logging.getLogger("httpx").warning("connection pool is full")
    logging.getLogger("producer_api.submission").info("task accepted", extra={"task_id": "t1"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("httpx", "connection pool is full"),
        ("producer_api.submission", "task accepted"),
    ]
    assert lines[1]["service"] == "producer_api" and lines[1]["task_id"] == "t1"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC, so a rendered line's clock is known."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def json_line(**fields: object) -> str:
    return json.dumps(
        {
            "ts": "2024-05-01T12:01:02.345Z",
            "level": "INFO",
            "service": "inference_consumer",
            "logger": "inference_consumer.worker",
            "msg": "batch committed",
            **fields,
        }
    )


def test_a_json_line_becomes_one_human_line_task_id_first(utc: None) -> None:
    line = json_line(size=3, infer_ms=12.5, task_id="0f3c", partitions=[0, 1])
    assert render_line(line) == (
        "12:01:02 INFO  batch committed  task_id=0f3c size=3 infer_ms=12.5 partitions=[0, 1]"
    )


def test_uvicorns_color_message_is_dropped(utc: None) -> None:
    line = json_line(msg="Uvicorn running on http://127.0.0.1:8000", color_message="\x1b[1m…")
    assert render_line(line) == "12:01:02 INFO  Uvicorn running on http://127.0.0.1:8000"
    record = logging.makeLogRecord({"msg": "started", "color_message": "\x1b[1mstarted"})
    assert "color_message" not in json.loads(JsonLineFormatter("producer_api").format(record))


def test_long_and_spaced_values_stay_short_and_readable(utc: None) -> None:
    rendered = render_line(json_line(error="broker down", body="x" * 500, empty=""))
    assert rendered.endswith(f'error="broker down" body={"x" * 59}… empty=""')


def test_a_warning_names_its_logger_and_an_error_keeps_its_traceback(utc: None) -> None:
    warning = json_line(level="WARNING", logger="aiokafka.conn", msg="Unable to connect")
    assert render_line(warning) == "12:01:02 WARNING Unable to connect  logger=aiokafka.conn"
    error = json_line(level="ERROR", msg="boom", exc="Traceback (most recent call last):\n  x")
    assert render_line(error).splitlines()[1:] == ["Traceback (most recent call last):", "  x"]


@pytest.mark.parametrize(
    "line",
    [
        "%4|1714564862.345|FAIL|rdkafka#producer-1| localhost:9092/bootstrap: Connection refused",
        "Traceback (most recent call last):",
        '{"not": "a log record"}',
        "{half a json object",
        "",
    ],
)
def test_anything_but_a_json_log_line_passes_through_unchanged(line: str) -> None:
    assert render_line(line) == line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("variable", "stream", "expected"),
    [
        (None, io.StringIO(), "json"),
        (None, Terminal(), "text"),
        ("json", Terminal(), "json"),
        ("text", io.StringIO(), "text"),
        (" TEXT ", io.StringIO(), "text"),
    ],
)
def test_log_format_follows_the_terminal_unless_log_format_says(
    variable: str | None, stream: io.StringIO, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if variable is None:
        monkeypatch.delenv("LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("LOG_FORMAT", variable)
    assert log_format(stream) == expected


def test_an_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(LogFormatError, match="json, text"):
        log_format(io.StringIO())


def test_log_format_text_makes_a_service_write_human_lines(
    restored_logging: None,
    utc: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "text")
    configure_logging("producer_api")
    logging.getLogger("producer_api.submission").info("task accepted", extra={"task_id": "t1"})
    line = capsys.readouterr().err.strip()
    assert re.fullmatch(r"\d\d:\d\d:\d\d producer_api INFO  task accepted  task_id=t1", line)
