"""The CA bundles of sinks (DELIVERY_FTP_CA_BUNDLE, DELIVERY_S3_CA_BUNDLE): one that cannot
be loaded is named in the attempt's error, before any connection, and retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncarch.config import DeliverySettings
from stream_processors.delivery.sinks import send_to_sink
from stream_processors.delivery.targets import parse_networks
from stream_processors.delivery.trust import trusted_context
from stream_processors.exceptions import SinkTrustUnavailable

LOOPBACK = parse_networks(["127.0.0.1/32"])


@pytest.fixture(params=["missing", "not-pem"])
def unloadable(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A CA bundle path that is no file, or a file without a certificate."""
    path = tmp_path / "ca.pem"
    if request.param == "not-pem":
        path.write_text("not a certificate\n")
    return path


def test_an_unloadable_bundle_is_named(unloadable: Path) -> None:
    with pytest.raises(SinkTrustUnavailable, match=rf"^DELIVERY_FTP_CA_BUNDLE={unloadable} cannot"):
        trusted_context(str(unloadable), "DELIVERY_FTP_CA_BUNDLE")


async def test_an_ftps_attempt_with_an_unloadable_bundle_is_retried(unloadable: Path) -> None:
    settings = DeliverySettings(
        ftp_hosts=("127.0.0.1:2121",), ftp_tls=True, ftp_ca_bundle=str(unloadable)
    )
    result = await send_to_sink("ftp://127.0.0.1:2121/out/", "t", b"{}", settings, LOOPBACK, 5.0)
    assert result.outcome == "retrying"
    assert result.error is not None and result.error["type"] == "SinkUnavailable"
    assert result.error["message"].startswith(f"DELIVERY_FTP_CA_BUNDLE={unloadable} cannot")


async def test_an_s3_attempt_with_an_unloadable_bundle_is_retried(unloadable: Path) -> None:
    settings = DeliverySettings(
        s3_buckets=("results",),
        s3_endpoint_url="https://127.0.0.1:9",
        s3_ca_bundle=str(unloadable),
    )
    result = await send_to_sink("s3://results/", "t", b"{}", settings, LOOPBACK, 5.0)
    assert result.outcome == "retrying"
    assert result.error is not None and result.error["type"] == "SinkUnavailable"
    assert result.error["message"].startswith(f"DELIVERY_S3_CA_BUNDLE={unloadable} cannot")
