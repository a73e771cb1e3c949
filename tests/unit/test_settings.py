"""Settings: secret-key rules per environment, SURGE_* variables and derived flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from surge.cities.pressure import Thresholds
from surge.reports.schemas import ReportFormat
from surge.settings import Environment, ExportFormat, Settings
from tests.conftest import REDIS_URL

SRC = Path(__file__).parents[2] / "src" / "surge"

REAL_SECRET = "a-real-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SURGE_"):
            monkeypatch.delenv(name)


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "secret",
    ["", "   ", "changeme", "CHANGEME", " changeme ", "change-me", "secret", "Secret", "surge"],
)
def test_production_refuses_placeholder_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SURGE_SECRET_KEY"):
        make(environment="production", secret_key=secret)


def test_production_refuses_missing_secret() -> None:
    with pytest.raises(ValidationError, match="SURGE_SECRET_KEY"):
        make(environment="production")


def test_production_refuses_placeholder_secret_from_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SURGE_ENVIRONMENT", "production")
    monkeypatch.setenv("SURGE_SECRET_KEY", "changeme")
    with pytest.raises(ValidationError):
        make()


def test_production_keeps_a_real_secret() -> None:
    settings = make(environment="production", secret_key=REAL_SECRET)
    assert settings.environment is Environment.PRODUCTION
    assert settings.secret_key.get_secret_value() == REAL_SECRET


@pytest.mark.parametrize("secret", ["", "changeme", "secret"])
def test_development_invents_a_random_secret(secret: str) -> None:
    first, second = make(secret_key=secret), make(secret_key=secret)
    assert first.environment is Environment.DEVELOPMENT
    one, two = first.secret_key.get_secret_value(), second.secret_key.get_secret_value()
    assert one != two
    for value in (one, two):
        assert value.strip().lower() not in {"", "changeme", "change-me", "secret", "surge"}
        assert len(value) >= 32


def test_development_keeps_a_real_secret() -> None:
    assert make(secret_key=REAL_SECRET).secret_key.get_secret_value() == REAL_SECRET


def test_secret_is_not_shown_in_repr() -> None:
    settings = make(environment="production", secret_key=REAL_SECRET)
    assert REAL_SECRET not in repr(settings)
    assert REAL_SECRET not in str(settings.model_dump())


def test_reads_surge_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURGE_ENVIRONMENT", "production")
    monkeypatch.setenv("SURGE_SECRET_KEY", REAL_SECRET)
    monkeypatch.setenv("SURGE_DATABASE_URL", "postgresql+asyncpg://db/surge")
    monkeypatch.setenv("SURGE_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("SURGE_REDIS_PREFIX", "p1:")
    monkeypatch.setenv("SURGE_INSTANCE_ID", "node-7")
    monkeypatch.setenv("SURGE_OFFER_TIMEOUT_S", "7.5")
    monkeypatch.setenv("SURGE_DISPATCH_BATCH", "64")
    monkeypatch.setenv("SURGE_TOKEN_TTL_S", "60")
    settings = make()
    assert settings.environment is Environment.PRODUCTION
    assert settings.secret_key.get_secret_value() == REAL_SECRET
    assert settings.database_url == "postgresql+asyncpg://db/surge"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.redis_prefix == "p1:"
    assert settings.instance_id == "node-7"
    assert settings.offer_timeout_s == 7.5
    assert settings.dispatch_batch == 64
    assert settings.token_ttl_s == 60


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere")
    settings = make()
    assert settings.database_url == "sqlite+aiosqlite:///./surge.db"
    assert settings.redis_url is None


def test_environment_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("surge_redis_prefix", "lower:")
    assert make().redis_prefix == "lower:"


def test_invalid_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURGE_OFFER_TIMEOUT_S", "0")
    with pytest.raises(ValidationError, match="offer_timeout_s"):
        make()


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError, match="environment"):
        make(environment="staging")


def test_defaults() -> None:
    settings = make()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.redis_url is None
    assert not settings.uses_redis
    assert settings.offer_timeout_s == 15.0
    assert settings.instance_id != make().instance_id


@pytest.mark.parametrize(
    ("redis_url", "uses_redis"),
    [(None, False), ("redis://127.0.0.1:6379/0", True), ("rediss://cache:6380/1", True)],
)
def test_uses_redis_follows_redis_url(redis_url: str | None, uses_redis: bool) -> None:
    assert make(redis_url=redis_url).uses_redis is uses_redis


def test_uses_redis_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not make().uses_redis
    monkeypatch.setenv("SURGE_REDIS_URL", "redis://cache:6379/0")
    assert make().uses_redis


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_redis_url_means_in_process_state(
    monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv("SURGE_REDIS_URL", blank)
    settings = make()
    assert settings.redis_url is None
    assert not settings.uses_redis


def test_a_redis_cluster_gets_a_prefix_with_a_hash_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make(redis_url="redis://cache:6379/0").redis_prefix == "surge:"  # standalone: as was
    monkeypatch.setenv("SURGE_REDIS_URL", "redis://node-1:7000")
    monkeypatch.setenv("SURGE_REDIS_CLUSTER", "true")
    assert make().redis_prefix == "{surge}:"
    monkeypatch.setenv("SURGE_REDIS_PREFIX", "{12345}:js:")
    assert make().redis_prefix == "{12345}:js:"


@pytest.mark.parametrize("prefix", ["surge:", "{}:surge:", "{surge:", "surge}:{", "}{:"])
def test_a_redis_cluster_refuses_a_prefix_without_a_hash_tag(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setenv("SURGE_REDIS_PREFIX", prefix)
    with pytest.raises(ValidationError, match=r"has no hash tag.*'\{surge\}:'"):
        make(redis_url="redis://node-1:7000", redis_cluster=True)


def test_a_redis_cluster_needs_a_node_to_start_from() -> None:
    with pytest.raises(ValidationError, match="SURGE_REDIS_CLUSTER needs SURGE_REDIS_URL"):
        make(redis_cluster=True)


def test_surge_serve_says_what_is_wrong_with_a_cluster_prefix() -> None:
    environment = {"SURGE_REDIS_URL": "redis://127.0.0.1:1", "SURGE_REDIS_CLUSTER": "true"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("surge")), "serve", "--port", "1"],
        env={**os.environ, **environment, "SURGE_REDIS_PREFIX": "surge:"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "configuration error" in done.stderr
    assert "SURGE_REDIS_PREFIX 'surge:' has no hash tag" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "environment",
    [
        {"SURGE_REDIS_URL": "redis://127.0.0.1:1"},
        {"SURGE_REDIS_URL": "redis://127.0.0.1:1", "SURGE_REDIS_CLUSTER": "true"},
        {"SURGE_REDIS_URL": REDIS_URL, "SURGE_REDIS_CLUSTER": "true"},  # no cluster's node
    ],
    ids=["unreachable", "unreachable-cluster", "standalone-as-cluster"],
)
def test_surge_serve_says_in_one_line_when_it_cannot_reach_the_hot_state(
    environment: dict[str, str], tmp_path: Path
) -> None:
    surge = str(Path(sys.executable).with_name("surge"))
    database = {"SURGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'surge.db'}"}
    done = subprocess.run(
        [surge, "serve", "--port", "1"],
        env={**os.environ, **database, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # After the migrations' log lines, one line saying what is wrong.
    said = [line for line in done.stderr.splitlines() if line.startswith("surge:")]
    assert said == done.stderr.strip().splitlines()[-1:], done.stderr
    assert said[0].startswith("surge: hot state unavailable: "), said


def test_pressure_release_and_sample_settings_reach_the_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SURGE_PRESSURE_MIN_SAMPLE", "25")
    monkeypatch.setenv("SURGE_PRESSURE_RELEASE_SCORE", "0.6")
    monkeypatch.setenv("SURGE_RELEASE_AFTER_S", "120")
    thresholds = Thresholds.from_settings(make())
    assert (thresholds.min_sample, thresholds.release_score) == (25, 0.6)
    assert thresholds.release_after_s == 120
    # The release threshold sits under the election's (a signal at its threshold, 1).
    with pytest.raises(ValidationError, match="pressure_release_score"):
        make(pressure_release_score=1.0)


def test_allowed_origins_come_comma_separated_and_in_normal_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert make().allowed_origins == []
    monkeypatch.setenv(
        "SURGE_ALLOWED_ORIGINS", "https://Console.12345.example, http://10.0.0.5:8080"
    )
    assert make().allowed_origins == ["https://console.12345.example:443", "http://10.0.0.5:8080"]
    monkeypatch.setenv("SURGE_ALLOWED_ORIGINS", '["https://a.example/"]')
    assert make().allowed_origins == ["https://a.example:443"]


@pytest.mark.parametrize(
    "origin", ["console.example", "ftp://a.example", "https://a.example/console", "null", "*"]
)
def test_allowed_origins_refuse_what_is_no_origin(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        make(allowed_origins=[origin])


def test_settings_import_no_domain() -> None:
    """The lowest layer: importing it alone loads none of the domain packages under src/surge."""
    domains = sorted(path.parent.name for path in SRC.glob("*/__init__.py"))
    assert {"calls", "cities", "reports", "router", "seats", "surges"} <= set(domains)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, surge.settings; print(json.dumps(list(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), *sys.path])},
    )
    modules = json.loads(loaded.stdout)
    assert "surge.settings" in modules
    assert [m for m in modules if m.split(".")[:2] in (["surge", d] for d in domains)] == []
    # The one other surge module: a pure helper of the standard library, no domain.
    assert sorted(m for m in modules if m.startswith("surge.")) == [
        "surge.origins",
        "surge.settings",
    ]


def test_pressure_thresholds_default_to_the_settings_defaults() -> None:
    assert Thresholds.from_settings(make()) == Thresholds()


def test_export_formats_are_the_report_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(get_args(ExportFormat)) == {fmt.value for fmt in ReportFormat}
    assert make().report_export_formats == ["json", "csv", "xlsx"]
    monkeypatch.setenv("SURGE_REPORT_EXPORT_FORMATS", "csv, xlsx")
    assert make().report_export_formats == ["csv", "xlsx"]
    monkeypatch.setenv("SURGE_REPORT_EXPORT_FORMATS", "pdf")
    with pytest.raises(ValidationError, match="Input should be 'json', 'csv' or 'xlsx'"):
        make()
    monkeypatch.setenv("SURGE_REPORT_EXPORT_FORMATS", "")
    with pytest.raises(ValidationError, match="at least 1 item"):
        make()
