""".env.example lists every setting of every settings class, with its real default;
every settings class reads a .env in the working directory, under the environment."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from asyncarch.blobstore import BlobSettings
from asyncarch.config import DeliverySettings, KafkaSettings
from asyncarch.up import SupervisorSettings
from inference_consumer.config import WorkerSettings
from producer_api.core.config import ApiSettings
from schemas.registry import SchemaRegistrySettings
from schemas.topics import TopicSettings
from stream_processors.config import ProcessorSettings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
PACKAGES = ("asyncarch", "schemas", "producer_api", "inference_consumer", "stream_processors")
SETTINGS: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    TopicSettings,
    SchemaRegistrySettings,
    BlobSettings,
    DeliverySettings,
    ApiSettings,
    WorkerSettings,
    ProcessorSettings,
    SupervisorSettings,
)
# Read by the code outside any settings class.
OTHER_VARIABLES = {"ASYNCARCH_CACHE", "ASYNCARCH_CA_BUNDLE", "LOG_LEVEL", "LOG_FORMAT"}
LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")


def documented() -> dict[str, str]:
    """NAME -> documented default, from every `# NAME=value` line."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = LINE.match(line)
        if match:
            name, value = match.groups()
            assert name not in found, f"{name} is listed twice"
            found[name] = value.strip()
    return found


def variables(settings: type[BaseSettings]) -> dict[str, str]:
    """Env variable -> field name of a settings class (an alias replaces prefix + name)."""
    prefix = settings.model_config.get("env_prefix", "")
    found = {}
    for name, info in settings.model_fields.items():
        alias = info.validation_alias or info.alias
        assert alias is None or isinstance(alias, str), f"{name}: only plain aliases are listed"
        found[(alias or f"{prefix}{name}").upper()] = name
    return found


def settings_classes_in_source() -> set[str]:
    """Names of every class that subclasses BaseSettings in the source packages."""
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                    getattr(base, "id", getattr(base, "attr", None)) == "BaseSettings"
                    for base in node.bases
                ):
                    names.add(node.name)
    return names


def clean_env(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    """Remove every settings variable of the test process's own environment, and work
    in ``workdir`` so that no developer's .env is read."""
    monkeypatch.chdir(workdir)
    prefixes = tuple(str(s.model_config.get("env_prefix", "")) for s in SETTINGS)
    for key in list(os.environ):
        if key.startswith(prefixes):
            monkeypatch.delenv(key)


def plain(value: object) -> object:
    """A settings value comparable across two instances."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_settings_class_is_covered() -> None:
    """A new settings class in the source fails here until this test and .env.example list it."""
    assert settings_classes_in_source() == {s.__name__ for s in SETTINGS}


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_every_field_is_listed(settings: type[BaseSettings]) -> None:
    """Each field's variable appears in .env.example."""
    missing = set(variables(settings)) - set(documented())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_nothing_else_is_listed() -> None:
    """Every listed variable is a settings field or one the code reads directly."""
    known = set(OTHER_VARIABLES)
    for settings in SETTINGS:
        known |= set(variables(settings))
    assert set(documented()) - known == set()


def test_every_entry_says_what_it_does() -> None:
    """The line above each variable is a comment that is not itself a variable."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if LINE.match(line):
            above = lines[number - 1]
            assert above.startswith("# ") and not LINE.match(above), f"no meaning for {line}"


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_documented_defaults_are_the_real_ones(
    settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Setting a variable to its documented default changes nothing; empty means unset."""
    clean_env(monkeypatch, tmp_path)
    default = settings()
    listed = documented()
    for variable, field in variables(settings).items():
        value = listed[variable]
        if value == "":
            info = settings.model_fields[field]
            real = plain(getattr(default, field))
            assert (
                info.default_factory
                or real in (None, "", ())
                or info.annotation
                in (
                    SecretStr,
                    SecretStr | None,
                )
            ), f"{variable} is documented as unset but defaults to {real!r}"
            continue
        with monkeypatch.context() as patch:
            patch.setenv(variable, value)
            configured = settings()
        assert plain(getattr(configured, field)) == plain(getattr(default, field)), variable


def test_compose_variables_are_documented() -> None:
    """Every ${NAME} docker-compose.yml interpolates can be set from .env.example."""
    compose = (ROOT / "docker-compose.yml").read_text()
    yaml.safe_load(compose)  # a valid file, so the names below are real references
    names = set(re.findall(r"\$\{(\w+)", compose))
    assert names, "no ${...} in docker-compose.yml"
    assert names <= set(documented()), names - set(documented())


def a_text_field(settings: type[BaseSettings]) -> tuple[str, str]:
    """(env variable, field) of the class's first plain ``str`` field."""
    for variable, field in variables(settings).items():
        if settings.model_fields[field].annotation is str:
            return variable, field
    raise AssertionError(f"{settings.__name__} has no str field to try .env with")


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_a_dotenv_in_the_working_directory_is_read_and_the_environment_wins(
    settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A shared .env, with other services' names in it, configures every class."""
    clean_env(monkeypatch, tmp_path)
    variable, field = a_text_field(settings)
    prefix = str(settings.model_config.get("env_prefix", ""))
    (tmp_path / ".env").write_text(
        f"{variable}=from-dotenv\n"
        f"{prefix}NOT_A_SETTING=ignored\n"  # a name of this prefix that is not a field
        "SOME_OTHER_SERVICE_URL=http://elsewhere\n"
    )
    assert getattr(settings(), field) == "from-dotenv"
    monkeypatch.setenv(variable, "from-env")
    assert getattr(settings(), field) == "from-env"
