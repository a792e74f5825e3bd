"""Result sinks' pure logic: what a deliver_to URL means, what the settings allow, the
key each result is written to, and how their deliveries sit beside the webhook's."""

from __future__ import annotations

import hashlib
import json

import pytest

from asyncarch.config import DeliverySettings
from asyncarch.exceptions import SinkUrlError
from asyncarch.sink_targets import SinkTarget, destination_refusal, parse_sink_url
from stream_processors.delivery.deliveries import (
    DELIVERED,
    AttemptResult,
    RetryPolicy,
    needs_delivery,
    new_delivery,
    record_attempt,
    targets_of,
    with_deliveries,
)
from stream_processors.delivery.s3 import _client_error

SETTINGS = DeliverySettings(
    s3_buckets="results, shared/team-a/",  # type: ignore[arg-type]  # as the env gives it
    ftp_hosts="ftp.example.com, 127.0.0.1:2121",  # type: ignore[arg-type]
)
POLICY = RetryPolicy(retry_for_ms=60_000, initial_s=1.0, max_s=10.0)
STATE = {
    "task_id": "t-1",
    "state": "SUCCESS",
    "callback_url": "http://127.0.0.1/hook",
    "deliver_to": "s3://results/out/",
    "history": [{"state": "PENDING", "at": 1, "attempt": 0}],
}


@pytest.mark.parametrize(
    ("url", "target", "key"),
    [
        ("s3://results/out/", SinkTarget("s3", "results", None, "out/"), "out/T.json"),
        ("s3://results", SinkTarget("s3", "results", None, ""), "T.json"),
        ("s3://results/run-", SinkTarget("s3", "results", None, "run-"), "run-T.json"),
        ("S3://results/a/b/", SinkTarget("s3", "results", None, "a/b/"), "a/b/T.json"),
        ("ftp://Host.Example/out/", SinkTarget("ftp", "host.example", 21, "out/"), "out/T.json"),
        ("ftp://127.0.0.1:2121/", SinkTarget("ftp", "127.0.0.1", 2121, ""), "T.json"),
        ("ftp://[::1]/x/", SinkTarget("ftp", "::1", 21, "x/"), "x/T.json"),
        ("ftp://h/with%20space/", SinkTarget("ftp", "h", 21, "with space/"), "with space/T.json"),
    ],
)
def test_a_sink_url_names_a_target_and_a_key(url: str, target: SinkTarget, key: str) -> None:
    assert parse_sink_url(url) == target
    assert target.key("T") == key


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/", "must be s3://"),
        ("file:///tmp/x", "must be s3://"),
        ("s3:///no-bucket/", "must be s3://"),
        ("ftp://user:pw@host/", "no credentials"),
        ("ftp://user@host/", "no credentials"),
        ("s3://results/out/?x=1", "no query"),
        ("s3://results/out/#frag", "no query"),
        ("s3://Results/", "not an S3 bucket"),
        ("s3://re_sults/", "not an S3 bucket"),
        ("s3://results:9000/", "not an S3 bucket"),
        ("s3://results/a/../b/", "'..'"),
        ("s3://results/a/%2e%2e/b/", "'..'"),
        ("ftp://host/a//b/", "empty segments"),
        ("ftp://host/a%0d%0aDELE%20x/", "control characters"),
        ("ftp://host/a b/", "printable"),
        ("ftp://host:99999/", "invalid"),
        ("s3://results/" + "x" * 2000, "at most"),
    ],
)
def test_a_url_that_names_no_sink_is_refused(url: str, why: str) -> None:
    with pytest.raises(SinkUrlError, match=why):
        parse_sink_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "s3://results/",
        "s3://results/any/depth/",
        "s3://shared/team-a/",
        "s3://shared/team-a/run-",
        "ftp://ftp.example.com/out/",
        "ftp://FTP.EXAMPLE.COM:21/out/",
        "ftp://127.0.0.1:2121/",
    ],
)
def test_the_settings_allow_these(url: str) -> None:
    assert destination_refusal(parse_sink_url(url), SETTINGS) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("s3://other/", "DELIVERY_S3_BUCKETS"),
        ("s3://shared/", "DELIVERY_S3_BUCKETS"),
        ("s3://shared/team-b/", "DELIVERY_S3_BUCKETS"),
        ("s3://results-2/", "DELIVERY_S3_BUCKETS"),
        ("ftp://ftp.example.com:2121/", "DELIVERY_FTP_HOSTS"),
        ("ftp://127.0.0.1/", "DELIVERY_FTP_HOSTS"),
        ("ftp://evil.example.com/", "DELIVERY_FTP_HOSTS"),
    ],
)
def test_the_settings_refuse_these(url: str, why: str) -> None:
    reason = destination_refusal(parse_sink_url(url), SETTINGS)
    assert reason is not None and why in reason


def test_no_sink_is_allowed_by_default() -> None:
    nothing = DeliverySettings(s3_buckets=(), ftp_hosts=())
    for url in ("s3://results/", "ftp://ftp.example.com/"):
        assert "not enabled" in (destination_refusal(parse_sink_url(url), nothing) or "")


def test_a_task_with_both_targets_gets_a_delivery_for_each() -> None:
    assert needs_delivery(STATE, "webhook") and needs_delivery(STATE, "sink")
    assert not needs_delivery({**STATE, "deliver_to": None}, "sink")
    assert not needs_delivery({**STATE, "state": "RUNNING"}, "sink")
    sink = new_delivery(STATE, 100, POLICY, "sink")
    webhook = new_delivery(STATE, 100, POLICY, "webhook")
    assert (sink["url"], webhook["url"]) == ("s3://results/out/", "http://127.0.0.1/hook")
    assert sink["delivery_id"] == webhook["delivery_id"]  # one result, one id


def test_the_api_view_shows_both_deliveries_in_time_order() -> None:
    webhook = record_attempt(
        new_delivery(STATE, 10, POLICY), AttemptResult(DELIVERED, 200), 30, POLICY
    )
    sink = record_attempt(
        new_delivery(STATE, 10, POLICY, "sink"), AttemptResult(DELIVERED, 200), 20, POLICY
    )
    view = with_deliveries(STATE, {"webhook": webhook, "sink": sink})
    assert [(e["state"], e["at"]) for e in view["history"][1:]] == [("SINK", 20), ("WEBHOOK", 30)]
    assert view["sink"]["status"] == view["webhook"]["status"] == "delivered"


def test_a_value_written_before_sinks_is_the_webhooks_delivery() -> None:
    old = new_delivery(STATE, 10, POLICY)
    assert targets_of(old) == {"webhook": old}
    assert targets_of(None) == {}
    assert with_deliveries(STATE, old)["webhook"]["status"] == "pending"


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (503, "SlowDown", "retrying"),
        (500, "InternalError", "retrying"),
        (403, "AccessDenied", "failed"),
        (404, "NoSuchBucket", "failed"),
    ],
)
def test_s3_error_answers_are_judged_as_http_answers(status: int, code: str, outcome: str) -> None:
    result = _client_error(
        {"ResponseMetadata": {"HTTPStatusCode": status}, "Error": {"Code": code, "Message": "m"}}
    )
    assert (result.outcome, result.status_code) == (outcome, status)
    assert result.error == {"type": "S3Error", "message": f"HTTP {status}: {code} m"}


def test_a_submission_without_deliver_to_keeps_its_digest() -> None:
    """Idempotency-Key replays across the upgrade: no deliver_to, the digest of before."""
    from producer_api.submission import Submission

    inputs = {"item_a": "a", "item_b": "b"}
    plain = Submission("similarity", inputs, "http://h/")
    sunk = Submission("similarity", inputs, "http://h/", deliver_to="s3://r/")
    before = {"kind": "similarity", "inputs": inputs, "callback_url": "http://h/"}
    assert (
        plain.fingerprint()
        == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    )
    assert sunk.fingerprint() != plain.fingerprint()
