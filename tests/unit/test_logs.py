"""Structured logs: JSON lines with the service name, no per-request lines of HTTP clients."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from asyncarch.logs import configure_logging


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
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
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
