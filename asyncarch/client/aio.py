"""The asyncio client: sends with ``httpx.AsyncClient``, sleeps with ``asyncio.sleep``."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Self

import httpx

from asyncarch.client.core import (
    DEFAULT_BASE_URL,
    HEADERS,
    ApiRequest,
    TaskHandle,
    TaskRef,
    document_request,
    parse_result,
    parse_status,
    parse_submit,
    result_request,
    status_request,
    submit_request,
)
from asyncarch.client.errors import ServiceUnavailable, _unreachable
from asyncarch.client.polling import StatusCallback, StatusPoll
from asyncarch.client.tls import tls_verify

__all__ = ["AsyncAsyncarchClient"]


class AsyncAsyncarchClient:
    """Asyncio client of the task API; the same methods as :class:`AsyncarchClient`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        insecure: bool = False,
    ) -> None:
        self._timeout_s = timeout_s
        verify = tls_verify(ca_bundle, insecure)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            headers=HEADERS,
            transport=transport,
            verify=verify,
        )

    async def submit(
        self,
        kind: str,
        inputs: dict[str, Any],
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        deliver_to: str | None = None,
    ) -> TaskHandle:
        """See :meth:`AsyncarchClient.submit`."""
        request = submit_request(
            kind,
            inputs,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            deliver_to=deliver_to,
        )
        return parse_submit(await self._send(request))

    async def submit_similarity(self, item_a: str, item_b: str, **options: Any) -> TaskHandle:
        """See :meth:`AsyncarchClient.submit_similarity`."""
        return await self.submit("similarity", {"item_a": item_a, "item_b": item_b}, **options)

    async def submit_document(self, document: Path, query: str, **options: Any) -> TaskHandle:
        """See :meth:`AsyncarchClient.submit_document`."""
        return parse_submit(await self._send(document_request(document, query, **options)))

    async def status(
        self, task: TaskRef, wait_s: float = 0.0, since: int | None = None
    ) -> dict[str, Any]:
        """See :meth:`AsyncarchClient.status`."""
        return parse_status(await self._send(status_request(task, wait_s, since)))

    async def result(self, task: TaskRef, wait_s: float = 0.0) -> dict[str, Any]:
        """See :meth:`AsyncarchClient.result`."""
        return parse_result(await self._send(result_request(task, wait_s)))

    async def wait(
        self,
        task: TaskRef,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.1,
        max_interval_s: float = 2.0,
        on_status: StatusCallback | None = None,
    ) -> dict[str, Any]:
        """See :meth:`AsyncarchClient.wait`; ``on_status`` is a plain callable here too."""
        poll = StatusPoll(str(task), timeout_s, poll_interval_s, max_interval_s, on_status)
        while True:
            wait_s, since = poll.request_wait()
            started = time.monotonic()
            try:
                body = await self.status(task, wait_s, since)
            except ServiceUnavailable as exc:
                await asyncio.sleep(poll.next_delay(exc.retry_after))
                continue
            if poll.observe(body):
                return body
            await asyncio.sleep(poll.delay_after(time.monotonic() - started))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _send(self, request: ApiRequest) -> httpx.Response:
        try:
            return await self._http.request(
                request.method, request.path, **request.send_kwargs(self._timeout_s)
            )
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc
