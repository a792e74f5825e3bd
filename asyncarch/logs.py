"""Structured logging: one line a record, with the service name on every line."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

__all__ = ["configure_logging"]

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Libraries that log every HTTP request at INFO: with pollers and webhooks that
# is a line per request. Their warnings and errors still come through.
PER_REQUEST_LOGGERS = ("httpx", "httpcore")


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields (e.g. task_id) are kept."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(service: str) -> None:
    """Send every log record of this process to stderr as JSON lines.

    Per-request INFO lines of HTTP client libraries are dropped (see
    ``PER_REQUEST_LOGGERS``); the API's own access log is ``API_ACCESS_LOG``.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
