"""Logs for machines and for people: one line a record, the service name on every one.

``LOG_FORMAT=json`` (the default when stderr is not a terminal) writes each
record as a JSON object; ``LOG_FORMAT=text`` (the default on a terminal) as one
short human line: time, level, message, then ``task_id=…`` and the record's other
``extra=`` fields as ``key=value``. ``asyncarch up`` runs its services with
``LOG_FORMAT=json`` and turns each JSON line it relays into a human line with
``render_line`` when its own stdout is a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

from asyncarch.exceptions import AsyncarchError

__all__ = [
    "LOG_FORMATS",
    "JsonLineFormatter",
    "LogFormatError",
    "TextLineFormatter",
    "configure_logging",
    "human_line",
    "log_format",
    "render_line",
]

LOG_FORMATS = ("json", "text")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# uvicorn repeats each of its messages with ANSI colour codes in ``color_message``.
_NOISE = {"color_message"}
_FIXED = {"ts", "level", "service", "logger", "msg", "exc"}
_VALUE_WIDTH = 60  # longest extra value a human line shows
_LEVEL_COLOURS = {"WARNING": 33, "ERROR": 31, "CRITICAL": 31}
# Libraries that log every HTTP request at INFO: with pollers and webhooks that
# is a line per request. Their warnings and errors still come through.
PER_REQUEST_LOGGERS = ("httpx", "httpcore")


class LogFormatError(AsyncarchError, ValueError):
    """``LOG_FORMAT`` names no format."""


def log_format(stream: IO[str] | None) -> str:
    """``LOG_FORMAT`` (``json`` or ``text``) if set, else ``text`` when ``stream`` is a terminal."""
    chosen = os.environ.get("LOG_FORMAT", "").strip().lower()
    if chosen in LOG_FORMATS:
        return chosen
    if chosen:
        raise LogFormatError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {chosen!r}")
    return "text" if _is_terminal(stream) else "json"


def _is_terminal(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):  # a closed stream
        return False


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields (e.g. task_id) are kept."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as the fields of its JSON line."""
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        skip = _RESERVED | _NOISE
        line.update({k: v for k, v in record.__dict__.items() if k not in skip})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return line

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), default=str)


class TextLineFormatter(JsonLineFormatter):
    """Formats a record as the human line ``render_line`` makes of its JSON line."""

    def __init__(self, service: str, colour: bool = False) -> None:
        super().__init__(service)
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        return human_line(self.fields(record), with_service=True, colour=self.colour)


def render_line(line: str, colour: bool = False) -> str:
    """A human line for a JSON log line (without the service: the relay names it).

    Anything else (librdkafka's stderr, a traceback, a banner) comes back unchanged.
    """
    if not line.lstrip().startswith("{"):
        return line
    try:
        fields = json.loads(line)
    except ValueError:
        return line
    if not isinstance(fields, dict) or "msg" not in fields or "level" not in fields:
        return line
    return human_line(fields, with_service=False, colour=colour)


def human_line(fields: Mapping[str, Any], with_service: bool, colour: bool = False) -> str:
    """``12:01:02 INFO  task accepted  task_id=… kind=embed`` (+ traceback lines)."""
    level = str(fields.get("level", ""))
    shown = f"{level:<5}"
    if colour and level in _LEVEL_COLOURS:
        shown = f"\033[{_LEVEL_COLOURS[level]}m{shown}\033[0m"
    head = [_clock(fields.get("ts")), shown]
    if with_service:
        head.insert(1, str(fields.get("service", "")))
    line = f"{' '.join(head)} {fields.get('msg', '')}"
    if extras := _extras(fields):
        line += "  " + " ".join(f"{k}={_short(v)}" for k, v in extras.items())
    if fields.get("exc"):
        line += "\n" + str(fields["exc"]).rstrip()
    return line


def _extras(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``task_id`` first, the other ``extra=`` fields, and the logger of a warning."""
    extras = {k: v for k, v in fields.items() if k not in _FIXED | _NOISE}
    if "task_id" in extras:
        extras = {"task_id": extras.pop("task_id"), **extras}
    if fields.get("level") in _LEVEL_COLOURS and fields.get("logger"):
        extras["logger"] = fields["logger"]
    return extras


def _clock(ts: object) -> str:
    """Local ``HH:MM:SS`` of a JSON line's UTC ``ts``."""
    try:
        return datetime.fromisoformat(str(ts)).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return str(ts)


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, str) and (not text or any(c in text for c in ' ="')):
        text = json.dumps(value)
    if len(text) > _VALUE_WIDTH:
        text = text[: _VALUE_WIDTH - 1] + "…"
    return text


def configure_logging(service: str) -> None:
    """Send every log record of this process to stderr, one line a record.

    JSON lines or human lines (``log_format``); ``LOG_LEVEL`` sets the level.
    Per-request INFO lines of HTTP client libraries are dropped (see
    ``PER_REQUEST_LOGGERS``); the API's own access log is ``API_ACCESS_LOG``.
    """
    if log_format(sys.stderr) == "text":
        formatter: logging.Formatter = TextLineFormatter(service, _is_terminal(sys.stderr))
    else:
        formatter = JsonLineFormatter(service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
