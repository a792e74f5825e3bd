"""Caps the size of every request body, and the time to send it, before any of it is parsed."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer_api.problems import PROBLEM_JSON, problem_body

__all__ = ["BodySizeLimit"]

DEFAULT_READ_TIMEOUT_S = 60.0


class BodyReadTimeout(Exception):
    """The client did not finish sending its body before the read deadline."""


class BodySizeLimit:
    """Pure ASGI middleware: 413 when a body is, or turns out to be, over ``max_bytes``;
    408 when it is not all received within the read deadline (a slow-loris upload).

    A declared Content-Length over the limit is refused at once; a chunked body
    is counted as it streams in and cut off when it passes the limit. The
    deadline is the app's ``settings.body_read_timeout_s`` when it has one.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    ) -> None:
        self.app, self.max_bytes, self.read_timeout_s = app, max_bytes, read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_problem(send, 413, "Request body too large", self._too_large())
            return
        deadline = time.monotonic() + self._read_timeout(scope)
        seen, body_done, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body only a disconnect can come: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError as exc:
                raise BodyReadTimeout from exc
            body_done = not message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # Raised inside the route, so the app's handler answers 413.
                raise HTTPException(413, self._too_large())
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyReadTimeout:
            if started:
                raise
            detail = f"the request body was not received within {self._read_timeout(scope):g} s"
            await _send_problem(send, 408, "Request timeout", detail, close=True)

    def _too_large(self) -> str:
        return f"request bodies are limited to {self.max_bytes} bytes"

    def _read_timeout(self, scope: Scope) -> float:
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        return float(getattr(settings, "body_read_timeout_s", self.read_timeout_s))


async def _send_problem(
    send: Send, status: int, title: str, detail: str, close: bool = False
) -> None:
    body = json.dumps(problem_body(status, title, detail)).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    # The rest of a slow body is not worth waiting for: the server drops the connection.
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": headers + [(b"connection", b"close")] * close,
        }
    )
    await send({"type": "http.response.body", "body": body})
