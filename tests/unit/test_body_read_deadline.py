"""A request body that does not arrive in time is cut off with 408 (slow-loris uploads)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message

from producer_api.body_limit import BodySizeLimit


async def echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def waits_for_disconnect(request: Request) -> JSONResponse:
    await request.body()
    await asyncio.sleep(0.3)  # past the read deadline: the body is done, no timeout now
    return JSONResponse({"disconnected": await request.is_disconnected()})


ROUTES = [
    Route("/", echo_size, methods=["POST"]),
    Route("/after", waits_for_disconnect, methods=["POST"]),
]


def api(read_timeout_s: float, settings: object = None) -> Starlette:
    """As in the API: the limit inside the server-error middleware, outside the routes."""
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(BodySizeLimit, max_bytes=1000, read_timeout_s=read_timeout_s)],
    )
    if settings is not None:
        app.state.settings = settings
    return app


async def call(app: Starlette, path: str, chunks: list[bytes], hang: bool) -> list[Message]:
    """Drive the app with a client that sends ``chunks``, then (``hang``) sends nothing."""
    pending = [
        {"type": "http.request", "body": c, "more_body": hang or i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600 if hang else 0.05)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [],
        "query_string": b"",
        "app": app,
    }
    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent


async def test_a_body_that_stops_coming_gets_408_and_the_connection_closes() -> None:
    start, body = await call(api(0.2), "/", [b"x" * 10], hang=True)
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert json.loads(body["body"])["status"] == 408


async def test_the_deadline_covers_the_body_only() -> None:
    start, body = await call(api(0.2), "/after", [b"x" * 10], hang=False)
    assert start["status"] == 200, body


async def test_the_apps_settings_set_the_deadline() -> None:
    app = api(3600, SimpleNamespace(body_read_timeout_s=0.1))
    start, body = await call(app, "/", [b"x"], hang=True)
    assert start["status"] == 408
    assert "0.1 s" in json.loads(body["body"])["detail"]
