"""One delivery of a result document to its sink (``deliver_to``): S3 or FTP.

The destination is checked against the server's settings again (they may have
changed since the API accepted the task), then the host that will be
connected to goes through the webhooks' SSRF guard (``targets.py``): an FTP
server's address, or the S3 endpoint's. The blocking upload (boto3, ftplib)
runs in a thread pool of this module, so the Faust event loop never waits on
it; an attempt that has not finished within the timeout is recorded as a
timeout and retried (the upload is idempotent: same key, overwritten).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial

from asyncarch.config import DeliverySettings
from asyncarch.exceptions import SinkUrlError
from asyncarch.sink_targets import SinkTarget, destination_refusal, parse_sink_url
from stream_processors.delivery import ftp, s3
from stream_processors.delivery.deliveries import REFUSED, RETRYING, AttemptResult
from stream_processors.delivery.targets import IPNetwork, Resolver, checked_address
from stream_processors.exceptions import (
    SinkTrustUnavailable,
    WebhookRefused,
    WebhookTargetUnresolved,
)

__all__ = ["send_to_sink"]


async def send_to_sink(
    url: str,
    task_id: str,
    body: bytes,
    settings: DeliverySettings,
    allowed: Sequence[IPNetwork],
    timeout_s: float,
    resolve: Resolver | None = None,
) -> AttemptResult:
    """Write ``body`` to the sink named by ``url`` once, within ``timeout_s`` all told."""
    try:
        target = parse_sink_url(url)
        if (reason := destination_refusal(target, settings)) is not None:
            raise WebhookRefused(reason)
        async with asyncio.timeout(timeout_s):
            return await _upload(target, task_id, body, settings, allowed, timeout_s, resolve)
    except (SinkUrlError, WebhookRefused) as exc:
        return AttemptResult(REFUSED, error={"type": "SinkRefused", "message": str(exc)})
    except WebhookTargetUnresolved as exc:
        return AttemptResult(RETRYING, error={"type": "DNSError", "message": str(exc)})
    except ImportError:
        message = "boto3 is not installed (pip install asyncarch[s3])"
        return AttemptResult(RETRYING, error={"type": "SinkUnavailable", "message": message})
    except SinkTrustUnavailable as exc:
        return AttemptResult(RETRYING, error={"type": "SinkUnavailable", "message": str(exc)})
    except TimeoutError:
        message = f"not written within {timeout_s:g} s"
        return AttemptResult(RETRYING, error={"type": "Timeout", "message": message})


async def _upload(
    target: SinkTarget,
    task_id: str,
    body: bytes,
    settings: DeliverySettings,
    allowed: Sequence[IPNetwork],
    timeout_s: float,
    resolve: Resolver | None,
) -> AttemptResult:
    loop = asyncio.get_running_loop()
    if target.scheme == "s3":
        # The first call builds boto3's client, which reads its models from disk.
        endpoint = partial(s3.endpoint_host, settings, target, timeout_s)
        host, port = await loop.run_in_executor(_executor(), endpoint)
        await checked_address(host, port, allowed, resolve, "S3 endpoint")
        upload = partial(s3.put_result, settings, target, task_id, body, timeout_s)
    else:
        assert target.port is not None
        address = await checked_address(target.host, target.port, allowed, resolve, "FTP host")
        upload = partial(ftp.store_result, settings, target, address, task_id, body, timeout_s)
    return await loop.run_in_executor(_executor(), upload)


@cache
def _executor() -> ThreadPoolExecutor:
    # Threads start on demand; the dispatcher bounds the attempts in flight.
    return ThreadPoolExecutor(max_workers=32, thread_name_prefix="sink-delivery")
