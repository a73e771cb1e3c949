"""The one `Settings` object: every knob, read from `SURGE_*` environment variables (or `.env`).

The lowest layer: it imports no domain package (a test holds it to that). It keeps plain values;
each domain builds its own objects from them (`pressure.Thresholds.from_settings`, the report's
`ReportFormat(name)`). `surge.origins` is a small pure helper of the standard library, no domain.
"""

from __future__ import annotations

import json
import secrets
import socket
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from surge.origins import normal_origin

CLUSTER_PREFIX = "{surge}:"
"""The key prefix on a Redis Cluster unless one is given: its hash tag `{surge}` puts every key
in one slot."""


def _hash_tag(key: str) -> str | None:
    """The part of `key` a Redis Cluster hashes when it is not the whole key: the text between
    the first `{` and the next `}`, if not empty; else None."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start < 0 or end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "surge"})


LogFormat = Literal["text", "json"]
"""How log lines are written: `key=value` text for people, or one JSON object per line."""

ExportFormat = Literal["json", "csv", "xlsx"]
"""A format of the scheduled export: the values of `surge.reports.schemas.ReportFormat`."""


class Environment(StrEnum):
    """Where the service runs; only development may start without a real secret key."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Surge's configuration. Nothing else reads the environment."""

    model_config = SettingsConfigDict(env_prefix="SURGE_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./surge.db"
    redis_url: str | None = None
    # On a Redis Cluster the URL names one node (the client finds the others) and every key
    # lives in the one slot of the prefix's hash tag: `{surge}:` unless a tagged prefix is given.
    redis_cluster: bool = False
    redis_prefix: str = "surge:"
    redis_max_connections: int = Field(default=128, gt=0, description="Redis commands in flight")
    # All kept open by default: an extra connection closed whenever the load dips is opened
    # again at the next burst, a connect and fresh statement preparations in a request's path.
    db_pool_size: int = Field(default=40, gt=0, description="Database connections kept open")
    db_max_overflow: int = Field(default=0, ge=0, description="Extra connections under load")
    db_pool_timeout_s: float = Field(
        default=5.0, gt=0, description="How long a request waits for a database connection"
    )
    db_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="How long connecting to a silent database may take"
    )
    db_command_timeout_s: float = Field(
        default=30.0, gt=0, description="How long one statement may wait for the database"
    )
    secret_key: SecretStr = SecretStr("")
    instance_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{secrets.token_hex(3)}"
    )

    token_ttl_s: int = Field(default=12 * 3600, gt=0, description="Lifetime of an access token")
    login_max_failures: int = Field(default=5, gt=0, description="Failed logins per window")
    login_window_s: int = Field(default=300, gt=0, description="Window for failed-login counting")
    login_max_failures_per_address: int = Field(
        default=50, gt=0, description="Failed logins per window from one client address"
    )
    user_refresh_s: float = Field(
        default=1.0, gt=0, description="How often each instance rereads which users may log in"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default=[], description="Browser origins the websockets accept besides the service's own"
    )

    offer_timeout_s: float = Field(default=15.0, gt=0, description="How long an offer is held")
    transfer_limit: int = Field(
        default=3, ge=1, le=20, description="Transfers of one call at most (bounds A -> B -> A)"
    )
    wrap_up_s: float = Field(
        default=10.0, ge=0, le=3600, description="An agent's wrap-up after each ticket (0: none)"
    )
    dispatch_interval_s: float = Field(default=0.5, gt=0, description="Dispatcher safety tick")
    protection_service_level: float = Field(
        default=0.8, ge=0, le=1, description="A helper lends no agent under this own level (0: off)"
    )
    protection_window_s: float = Field(
        default=900.0, gt=0, le=86_400, description="The helper's own service level is over this"
    )
    dispatch_coalesce_s: float = Field(
        default=0.005, ge=0, description="Gather changes this long before a dispatch cycle"
    )
    dispatch_batch: int = Field(default=256, gt=0, description="Calls per city per dispatch cycle")
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    instance_timeout_s: float = Field(default=15.0, gt=0, description="Silence before reaping")
    heartbeat_timeout_s: float = Field(
        default=10.0, gt=0, description="An agent console silent to pings this long is lost"
    )
    state_rebuild_s: float = Field(
        default=5.0, gt=0, description="A hot state lost (Redis restarted empty) is rebuilt within"
    )
    pressure_interval_s: float = Field(default=5.0, gt=0, description="How often cities are read")
    pressure_arrival_ratio: float = Field(default=2.0, gt=0, description="Arrivals vs normal")
    pressure_longest_wait_s: float = Field(default=60.0, gt=0)
    pressure_predicted_wait_s: float = Field(default=30.0, gt=0, description="Erlang C ASA")
    pressure_connection_rate: float = Field(default=0.8, gt=0, le=1, description="Last hour")
    pressure_min_signals: int = Field(default=2, ge=1, le=4, description="Signals to be over")
    pressure_hysteresis: float = Field(default=0.25, ge=0, lt=1)
    pressure_min_sample: int = Field(
        default=10, ge=1, description="Calls behind a rate (arrivals, connection) before it counts"
    )
    pressure_release_score: float = Field(
        default=0.75, gt=0, lt=1, description="Under it the elected city loses, a host may release"
    )
    release_after_s: float = Field(
        default=300.0, gt=0, description="A host under the release score this long: release"
    )
    default_aht_s: float = Field(default=300.0, gt=0, description="AHT before any call is done")
    service_level_target: float = Field(default=0.8, gt=0, lt=1)
    service_level_s: float = Field(default=20.0, gt=0)
    auto_surge: bool = Field(default=False, description="Start a surge for the elected city")
    auto_next_wave_after_s: float | None = Field(
        default=None, gt=0, description="Start the next wave after the host is over this long"
    )
    classification_file: Path | None = Field(
        default=None, description="A replacement for the shipped request classification"
    )
    max_script_book_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    report_timezone: str = Field(
        default="Asia/Shanghai", description="Where the daily report's day begins and ends"
    )
    report_short_abandon_s: float = Field(
        default=5.0, ge=0, description="Abandoned sooner than this is reported apart"
    )
    callback_on_abandon: bool = Field(
        default=False,
        description="Every call abandoned after the short-abandon threshold becomes a callback",
    )
    callback_retry_s: float = Field(
        default=120.0, gt=0, le=86_400, description="A callback not reached is dialled again after"
    )
    callback_attempts: int = Field(
        default=3, ge=1, le=20, description="Dial-outs of a callback before it is `unreached`"
    )
    report_export_dir: Path | None = Field(
        default=None, description="Write each day's report here (unset: no scheduled export)"
    )
    report_export_at: time = Field(
        default=time(7, 0), description="Local time of day when the previous day is exported"
    )
    report_export_formats: Annotated[list[ExportFormat], NoDecode] = Field(
        default=["json", "csv", "xlsx"], min_length=1
    )
    report_export_check_s: float = Field(
        default=60.0, gt=0, description="How often instances look for a report to export"
    )
    report_export_lease_s: float = Field(
        default=1800.0, gt=0, description="An unfinished export is retried after this long"
    )
    # Hot issues (热点预警), see surge.hotspots.detection: the last hour against a trailing
    # baseline, on shares, with small-sample guards.
    hotspot_window_s: float = Field(default=3600.0, gt=0, le=86_400, description="The hour")
    hotspot_baseline_s: float = Field(
        default=6 * 3600.0, gt=0, le=7 * 86_400, description="The baseline before the hour"
    )
    hotspot_min_tickets: int = Field(
        default=20, ge=1, description="Tickets in the hour (and the baseline) before any verdict"
    )
    hotspot_min_count: int = Field(default=5, ge=1, description="Hour tickets carrying it")
    hotspot_min_lift: float = Field(default=3.0, gt=1, description="Share ÷ baseline share")
    hotspot_min_rise: float = Field(default=0.05, ge=0, lt=1, description="Share − baseline")
    hotspot_baseline_floor: float = Field(
        default=0.01, gt=0, lt=1, description="The baseline share of what the baseline never saw"
    )
    hotspot_check_s: float = Field(
        default=60.0, gt=0, description="How often new hotspots are announced to coordinators"
    )
    max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="Largest accepted request body"
    )
    ws_max_message_bytes: int = Field(default=32 * 1024, gt=0)
    metrics_enabled: bool = Field(
        default=False, description="Serve Prometheus metrics at /metrics (no token: keep it inside)"
    )
    log_format: LogFormat = Field(
        default="text", description="`text` (key=value) or `json` (one object per line)"
    )

    @field_validator("report_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @field_validator("report_export_formats", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """`SURGE_REPORT_EXPORT_FORMATS=json,csv` (and the origins) as well as a JSON list."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        """Each entry is `scheme://host[:port]` (http or https), kept in its normal form."""
        normal = [normal_origin(origin) for origin in value]
        for origin, written in zip(normal, value, strict=True):
            if origin is None:
                raise ValueError(f"{written!r} is not an origin (write https://host[:port])")
        return [origin for origin in normal if origin is not None]

    @field_validator("redis_url", mode="before")
    @classmethod
    def _blank_means_none(cls, value: object) -> object:
        """`SURGE_REDIS_URL=` (left empty in a .env template) means in-process state."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _cluster_keys_in_one_slot(self) -> Self:
        """On a Redis Cluster the prefix carries a hash tag: the scripts touch many keys at once,
        which a cluster runs only when they hash to one slot."""
        if not self.redis_cluster:
            return self
        if self.redis_url is None:
            raise ValueError("SURGE_REDIS_CLUSTER needs SURGE_REDIS_URL (any node of the cluster)")
        if "redis_prefix" not in self.model_fields_set:
            self.redis_prefix = CLUSTER_PREFIX
        elif _hash_tag(self.redis_prefix) is None:
            raise ValueError(
                f"SURGE_REDIS_PREFIX {self.redis_prefix!r} has no hash tag: on a Redis Cluster "
                f"every key must hash to one slot, so write the prefix with one, such as "
                f"{CLUSTER_PREFIX!r}"
            )
        return self

    @model_validator(mode="after")
    def _require_secret_outside_development(self) -> Self:
        """Refuse a missing or placeholder secret in production; invent one in development."""
        if self.secret_key.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            if self.environment is not Environment.DEVELOPMENT:
                raise ValueError(
                    "SURGE_SECRET_KEY must be set to a real secret outside development"
                )
            # Development only: tokens will not survive a restart, which is what we want there.
            self.secret_key = SecretStr(secrets.token_urlsafe(32))
        return self

    @property
    def ws_ping_interval_s(self) -> float:
        """Websocket ping interval and pong timeout: a silent console is lost within
        `heartbeat_timeout_s` (a ping every half of it, each answered within the other half)."""
        return self.heartbeat_timeout_s / 2

    @property
    def uses_redis(self) -> bool:
        """True when hot state and events live in Redis (several instances may share them)."""
        return self.redis_url is not None
