"""One delivery of a result document to S3 (or an S3-compatible store), through boto3.

Blocking: ``delivery/sinks.py`` runs it in a thread. boto3 is an optional
extra (``pip install asyncarch[s3]``); credentials and region come from
boto3's standard sources (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, instance
roles), the endpoint from ``DELIVERY_S3_ENDPOINT_URL``, the CAs that an
HTTPS endpoint's certificate must chain to from ``DELIVERY_S3_CA_BUNDLE``
(else boto3's default). boto3's own retries are off: the delivery table
retries, and records every attempt.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

from asyncarch.config import DeliverySettings
from asyncarch.sink_targets import SinkTarget
from stream_processors.delivery.deliveries import (
    DELIVERED,
    RETRYING,
    AttemptResult,
    classify_response,
)
from stream_processors.delivery.trust import trusted_context

__all__ = ["endpoint_host", "put_result"]


def endpoint_host(
    settings: DeliverySettings, target: SinkTarget, timeout_s: float
) -> tuple[str, int]:
    """The host and port a request for ``target`` connects to (checked before each attempt)."""
    parts = urlsplit(_client(settings, timeout_s).meta.endpoint_url)
    host = parts.hostname or ""
    if not settings.s3_endpoint_url:  # AWS: virtual-hosted style, the bucket is a subdomain
        host = f"{target.host}.{host}"
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def put_result(
    settings: DeliverySettings, target: SinkTarget, task_id: str, body: bytes, timeout_s: float
) -> AttemptResult:
    """Write (or overwrite) ``<prefix><task_id>.json``; never raises for S3's answers."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = _client(settings, timeout_s).put_object(
            Bucket=target.host,
            Key=target.key(task_id),
            Body=body,
            ContentType="application/json",
        )
    except ClientError as exc:
        return _client_error(exc.response)
    except BotoCoreError as exc:  # no connection, timeouts, no credentials
        return AttemptResult(RETRYING, error={"type": type(exc).__name__, "message": str(exc)})
    return AttemptResult(DELIVERED, answer["ResponseMetadata"]["HTTPStatusCode"])


def _client_error(response: dict[str, Any]) -> AttemptResult:
    """S3's error answers are HTTP answers: 5xx and 429 are retried, other codes final."""
    meta, error = response.get("ResponseMetadata", {}), response.get("Error", {})
    status = int(meta.get("HTTPStatusCode") or 500)
    result = classify_response(status, meta.get("HTTPHeaders") or {})
    code, message = error.get("Code", "Error"), error.get("Message", "")
    detail = {"type": "S3Error", "message": f"HTTP {status}: {code} {message}".strip()}
    return AttemptResult(result.outcome, status, detail, result.retry_after_s)


@cache
def _client(settings: DeliverySettings, timeout_s: float) -> Any:
    """One client per process (boto3 clients are thread-safe)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"total_max_attempts": 1},
        # An S3-compatible server on one host name serves buckets as paths.
        s3={"addressing_style": "path" if settings.s3_endpoint_url else "virtual"},
    )
    verify = settings.s3_ca_bundle or None
    if verify:  # a missing file is named now, not at boto3's first request
        trusted_context(verify, "DELIVERY_S3_CA_BUNDLE")
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=config,
        verify=verify,
    )
