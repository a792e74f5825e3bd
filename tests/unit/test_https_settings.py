"""HTTPS settings: the API's certificate and key, the clients' CA bundle, up's probe.

No server here: tests/integration/test_https.py serves and dials.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from asyncarch.cli import build_parser
from asyncarch.client import AsyncarchClient, TlsSetupError, tls_verify
from asyncarch.up import ApiTls, SupervisorSettings, Up, api_probe_verify
from producer_api.core.config import ApiSettings
from producer_api.tls import TlsConfigError, tls_options
from tests.certificates import SelfSigned, self_signed


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def no_api_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No API_SSL_* from the environment or a developer's .env."""
    monkeypatch.chdir(tmp_path)
    for name in ("API_SSL_CERTFILE", "API_SSL_KEYFILE", "API_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)


def api(**fields: object) -> ApiSettings:
    return ApiSettings(**fields)  # type: ignore[arg-type]


def test_https_off_by_default(no_api_env: None) -> None:
    settings = api()
    assert tls_options(settings) == {}
    assert settings.base_url == "http://127.0.0.1:8000"
    assert api(ssl_certfile="", ssl_keyfile="").base_url.startswith("http://")


def test_a_readable_pair_becomes_uvicorns_options(no_api_env: None, pair: SelfSigned) -> None:
    settings = api(ssl_certfile=str(pair.cert), ssl_keyfile=str(pair.key), port=8443)
    assert tls_options(settings) == {"ssl_certfile": str(pair.cert), "ssl_keyfile": str(pair.key)}
    assert settings.base_url == "https://127.0.0.1:8443"


def test_the_pair_is_read_from_the_environment(
    no_api_env: None, pair: SelfSigned, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_SSL_CERTFILE", str(pair.cert))
    monkeypatch.setenv("API_SSL_KEYFILE", str(pair.key))
    assert tls_options(ApiSettings())["ssl_certfile"] == str(pair.cert)


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("cert", "API_SSL_CERTFILE is set but API_SSL_KEYFILE is not: HTTPS needs both"),
        ("key", "API_SSL_KEYFILE is set but API_SSL_CERTFILE is not: HTTPS needs both"),
    ],
)
def test_one_file_of_the_pair_is_refused(
    no_api_env: None, pair: SelfSigned, which: str, message: str
) -> None:
    field, path = ("ssl_certfile", pair.cert) if which == "cert" else ("ssl_keyfile", pair.key)
    settings = api(**{field: str(path)})
    with pytest.raises(TlsConfigError) as caught:
        tls_options(settings)
    assert str(caught.value) == message


def test_a_missing_file_is_named(no_api_env: None, pair: SelfSigned, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(TlsConfigError) as caught:
        tls_options(api(ssl_certfile=str(pair.cert), ssl_keyfile=str(missing)))
    assert str(caught.value) == f"API_SSL_KEYFILE={missing}: No such file or directory"
    with pytest.raises(TlsConfigError, match=r"API_SSL_CERTFILE=.*: Is a directory"):
        tls_options(api(ssl_certfile=str(tmp_path), ssl_keyfile=str(pair.key)))


def test_files_that_are_not_a_certificate_and_its_key_are_refused(
    no_api_env: None, pair: SelfSigned, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError, match="do not load as a PEM certificate"):
        tls_options(api(ssl_certfile=str(garbage), ssl_keyfile=str(pair.key)))
    other = self_signed(tmp_path)  # a key that does not match the certificate
    with pytest.raises(TlsConfigError, match="do not load"):
        tls_options(api(ssl_certfile=str(pair.cert), ssl_keyfile=str(other.key)))


def test_client_verification_choices(pair: SelfSigned) -> None:
    assert tls_verify() is True
    assert tls_verify(insecure=True) is False
    context = tls_verify(pair.cert)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_client_refuses_bad_ca_bundles(pair: SelfSigned, tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match="exclude each other"):
        AsyncarchClient("https://api", ca_bundle=pair.cert, insecure=True)
    with pytest.raises(TlsSetupError, match=r"nope.pem: No such file or directory"):
        AsyncarchClient("https://api", ca_bundle=tmp_path / "nope.pem")
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(TlsSetupError, match="no PEM certificate"):
        tls_verify(tmp_path / "empty.pem")


def test_up_probes_against_the_configured_certificate(no_api_env: None, pair: SelfSigned) -> None:
    assert api_probe_verify(api()) is True
    context = api_probe_verify(api(ssl_certfile=str(pair.cert), ssl_keyfile=str(pair.key)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname  # it dials 127.0.0.1, which the cert need not name


def test_cli_flags() -> None:
    args = build_parser().parse_args(["api", "--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem"])
    assert (args.ssl_certfile, args.ssl_keyfile) == ("c.pem", "k.pem")
    args = build_parser().parse_args(["submit", "--ca-bundle", "ca.pem", "--item-a", "a"])
    assert args.ca_bundle == Path("ca.pem") and not args.insecure
    assert build_parser().parse_args(["submit", "--insecure"]).insecure


def test_up_flags_serve_the_api_over_https(no_api_env: None, pair: SelfSigned) -> None:
    args = build_parser().parse_args(
        ["up", "--ssl-certfile", str(pair.cert), "--ssl-keyfile", str(pair.key)]
    )
    up = Up(SupervisorSettings(), ApiTls(args.ssl_certfile, args.ssl_keyfile))
    assert up.api.base_url.startswith("https://")
    assert (up.env["API_SSL_CERTFILE"], up.env["API_SSL_KEYFILE"]) == (
        str(pair.cert.resolve()),
        str(pair.key.resolve()),
    )
    assert isinstance(api_probe_verify(up.api), ssl.SSLContext)
    plain = Up(SupervisorSettings(), ApiTls())
    assert plain.api.base_url.startswith("http://") and "API_SSL_CERTFILE" not in plain.env
