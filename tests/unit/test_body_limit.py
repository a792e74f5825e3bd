"""The body-size cap: declared and streamed bodies over the limit get 413."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from producer_api.body_limit import BodySizeLimit


async def echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


APP = BodySizeLimit(Starlette(routes=[Route("/", echo_size, methods=["POST"])]), max_bytes=100)


async def post(content: bytes | object) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=APP), base_url="http://test"
    ) as client:
        return await client.post("/", content=content)  # type: ignore[arg-type]


async def test_a_body_within_the_limit_passes() -> None:
    response = await post(b"x" * 100)
    assert response.status_code == 200 and response.json() == {"size": 100}


async def test_a_declared_length_over_the_limit_is_refused() -> None:
    response = await post(b"x" * 101)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


@pytest.mark.parametrize("chunks", [[b"x" * 60, b"x" * 60], [b"x" * 200]])
async def test_a_streamed_body_over_the_limit_is_cut_off(chunks: list[bytes]) -> None:
    async def stream():  # type: ignore[no-untyped-def]
        for chunk in chunks:
            yield chunk

    response = await post(stream())
    assert response.status_code == 413
