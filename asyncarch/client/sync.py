"""The blocking client: sends with ``httpx.Client``, sleeps with ``time.sleep``."""

from __future__ import annotations

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

__all__ = ["AsyncarchClient"]


class AsyncarchClient:
    """Blocking client of the task API.

    Args:
        base_url: The API's origin, e.g. ``http://127.0.0.1:8000``.
        timeout_s: Timeout of each HTTP request.
        transport: An httpx transport to use instead of the network (tests).
        ca_bundle: PEM file of the CAs to trust for an ``https://`` API instead of
            the system's; for a self-signed API, its certificate.
        insecure: Do not verify the API's certificate (only for a trusted network).

    Raises:
        TlsSetupError: The CA bundle cannot be read, or both it and ``insecure``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        insecure: bool = False,
    ) -> None:
        self._timeout_s = timeout_s
        verify = tls_verify(ca_bundle, insecure)
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            headers=HEADERS,
            transport=transport,
            verify=verify,
        )

    def submit(
        self,
        kind: str,
        inputs: dict[str, Any],
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        deliver_to: str | None = None,
    ) -> TaskHandle:
        """Submit a task; returns once Kafka holds it. Arguments as :func:`submit_request`."""
        request = submit_request(
            kind,
            inputs,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            deliver_to=deliver_to,
        )
        return parse_submit(self._send(request))

    def submit_similarity(self, item_a: str, item_b: str, **options: Any) -> TaskHandle:
        """Submit a ``similarity`` task; ``options`` as :meth:`submit`."""
        return self.submit("similarity", {"item_a": item_a, "item_b": item_b}, **options)

    def submit_document(self, document: Path, query: str, **options: Any) -> TaskHandle:
        """Upload a document for a ``document-search`` task; as :func:`document_request`."""
        return parse_submit(self._send(document_request(document, query, **options)))

    def status(
        self, task: TaskRef, wait_s: float = 0.0, since: int | None = None
    ) -> dict[str, Any]:
        """The task's status body: ``status``, ``attempt``, timestamps, ``history``.

        ``wait_s`` and ``since`` long-poll as :func:`status_request` describes.
        """
        return parse_status(self._send(status_request(task, wait_s, since)))

    def result(self, task: TaskRef, wait_s: float = 0.0) -> dict[str, Any]:
        """The finished task's result body; raises ``TaskNotFinished`` while it runs.

        With ``wait_s`` the API first waits (at most 30 s) for the task to finish.
        """
        return parse_result(self._send(result_request(task, wait_s)))

    def wait(
        self,
        task: TaskRef,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.1,
        max_interval_s: float = 2.0,
        on_status: StatusCallback | None = None,
    ) -> dict[str, Any]:
        """Follow the task's status until it is terminal, with long-polls.

        Each request after the first waits on the server (up to 20 s) for the
        next change, so the answer comes as soon as the task moves, with few
        requests. An API that does not wait is polled with exponential backoff.

        Args:
            task: The task id or handle.
            timeout_s: Give up after this long.
            poll_interval_s: First backoff delay, doubled up to ``max_interval_s``.
            max_interval_s: Longest backoff delay.
            on_status: Called with the status body whenever the status changes.

        Returns:
            The terminal (SUCCESS, FAILED or CANCELLED) status body.

        Raises:
            TaskTimeout: The task was not terminal within ``timeout_s``.
        """
        poll = StatusPoll(str(task), timeout_s, poll_interval_s, max_interval_s, on_status)
        while True:
            wait_s, since = poll.request_wait()
            started = time.monotonic()
            try:
                body = self.status(task, wait_s, since)
            except ServiceUnavailable as exc:
                time.sleep(poll.next_delay(exc.retry_after))
                continue
            if poll.observe(body):
                return body
            time.sleep(poll.delay_after(time.monotonic() - started))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, request: ApiRequest) -> httpx.Response:
        try:
            return self._http.request(
                request.method, request.path, **request.send_kwargs(self._timeout_s)
            )
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc
