"""The API's client of the processor's views passes a request's written offset.

The processor here is a small aiohttp server on loopback that records queries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from producer_api import task_state
from producer_api.exceptions import TaskNotFound
from producer_api.task_state import TaskStateClient

TASK_ID = "6f1c2f8e-1d4b-4c53-9f3e-2a1b0c9d8e7f"


@pytest.fixture
async def processor() -> AsyncIterator[tuple[str, list[dict[str, str]], dict[str, int]]]:
    queries: list[dict[str, str]] = []
    answer = {"status": 200}

    async def task(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        if answer["status"] != 200:
            return web.json_response({"detail": "unknown"}, status=answer["status"])
        return web.json_response({"task_id": request.match_info["task_id"], "state": "PENDING"})

    app = web.Application()
    app.router.add_get("/tasks/{task_id}/", task)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", queries, answer
    await runner.cleanup()


async def test_the_first_query_carries_the_written_offset_and_later_ones_do_not(
    processor: tuple[str, list[dict[str, str]], dict[str, int]],
) -> None:
    url, queries, _ = processor
    client = TaskStateClient(url, 2.0)
    try:
        client.remember_written(TASK_ID, 41)
        assert (await client.get(TASK_ID, wait_s=0.5))["state"] == "PENDING"
        await client.get(TASK_ID)
        await client.get("other")
    finally:
        await client.close()
    assert queries[0]["written"] == "41" and "wait" in queries[0]
    assert "written" not in queries[1]  # the table had it: no need any more
    assert "written" not in queries[2]


async def test_an_unknown_answer_forgets_the_offset_too(
    processor: tuple[str, list[dict[str, str]], dict[str, int]],
) -> None:
    url, queries, answer = processor
    answer["status"] = 404
    client = TaskStateClient(url, 2.0)
    try:
        client.remember_written(TASK_ID, 3)
        for _ in range(2):
            with pytest.raises(TaskNotFound):
                await client.get(TASK_ID)
    finally:
        await client.close()
    assert [q.get("written") for q in queries] == ["3", None]


def test_the_remembered_offsets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_state, "WRITTEN_OFFSETS_MAX", 3)
    client = TaskStateClient.__new__(TaskStateClient)  # no HTTP session needed
    client._written = task_state.OrderedDict()
    for offset in range(5):
        client.remember_written(f"t{offset}", offset)
    assert list(client._written) == ["t2", "t3", "t4"]
