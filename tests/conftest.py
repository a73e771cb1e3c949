"""Fixtures shared by every suite: the two backends, isolated per test, and a live service.

Backends: `embedded` (SQLite file + in-process state) and `postgres` (a database of its own on the
local PostgreSQL + a Redis key prefix of its own); `cluster` is `postgres` with the hot state on a
three-master Redis Cluster the session starts for itself (`redis_cluster`). Outside CI an
unreachable server skips the Postgres tests; with CI=true it fails them, so CI never passes by
skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from redis.asyncio import RedisCluster
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from surge import migrate
from surge.settings import Settings
from surge.state.redis import ClusterClient
from tests.helpers import LiveService, PrivateCluster, private_cluster, run_service

T = TypeVar("T")
PG_ADMIN_URL = os.environ.get(
    "SURGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SURGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = (
    "notice", "report_export", "script_gap", "script_gap_group", "script_ack", "script_version",
    "audit_entry", "surge_wave_city", "surge_wave", "surge", "call_event", "call", "agent",
    "user", "city",
)  # fmt: skip


def in_thread(function: Callable[[], T]) -> T:
    """Run blocking set-up (which may itself start an event loop) off the test's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


def unavailable(what: str, exc: BaseException) -> None:
    """Skip locally, fail in CI: a missing server there must not pass silently."""
    message = f"{what} is not reachable: {exc!r}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Backend:
    """Where one test's service keeps its data."""

    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str
    redis_cluster: bool = False

    def settings(self, **overrides: object) -> Settings:
        """Settings for a service on this backend."""
        values: dict[str, object] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "redis_prefix": self.redis_prefix,
            "redis_cluster": self.redis_cluster,
            "secret_key": "test-secret-key-0123456789abcdef",
            "environment": "production",
            # An agent is free at once after a ticket unless a test is about the wrap-up.
            "wrap_up_s": 0.0,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """The same, as environment variables for a `surge` subprocess."""
        env = {
            "SURGE_DATABASE_URL": self.database_url,
            "SURGE_REDIS_PREFIX": self.redis_prefix,
            "SURGE_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "SURGE_ENVIRONMENT": "production",
            "SURGE_WRAP_UP_S": "0",
        }
        if self.redis_url:
            env["SURGE_REDIS_URL"] = self.redis_url
        if self.redis_cluster:
            env["SURGE_REDIS_CLUSTER"] = "true"
        return env


def redis_client(url: str, *, cluster: bool, **options: Any) -> aioredis.Redis | RedisCluster:
    """A client of the Redis at `url`: a cluster client when it is a node of a Redis Cluster."""
    if cluster:
        return ClusterClient.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    """A three-master Redis Cluster of this test session's own."""
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(private_cluster(tmp_path_factory.mktemp("cluster")))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            unavailable("a Redis Cluster (redis-server --cluster-enabled yes)", exc)
        yield cluster


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded-free SQLite database that each test copies."""
    path = tmp_path_factory.mktemp("template") / "surge.db"
    in_thread(lambda: migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


async def admin_sql(statement: str) -> None:
    """Run one statement on the local PostgreSQL's admin database (CREATE/DROP DATABASE)."""
    engine = create_async_engine(make_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test session's own on the local PostgreSQL, migrated; dropped after."""
    name = f"surge_test_{uuid.uuid4().hex[:10]}"
    admin = make_url(PG_ADMIN_URL)
    try:
        in_thread(lambda: asyncio.run(admin_sql(f'CREATE DATABASE "{name}"')))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    url = admin.set(database=name).render_as_string(hide_password=False)
    in_thread(lambda: migrate.upgrade(url))
    yield url
    in_thread(lambda: asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            tables = ", ".join(f'"{t}"' for t in TABLES)
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def _drop_prefix(prefix: str, url: str = REDIS_URL, *, cluster: bool = False) -> None:
    client = redis_client(url, cluster=cluster)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def make_backend(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """A backend of `kind` holding only this test's data; cleaned up afterwards."""
    prefix = f"surge-test-{uuid.uuid4().hex[:12]}:"
    if kind == "embedded":
        database = tmp_path / "surge.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), database)
        yield Backend("embedded", f"sqlite+aiosqlite:///{database}", None, prefix)
        return
    url: str = request.getfixturevalue("postgres_url")
    cluster = kind == "cluster"
    if cluster:
        private: PrivateCluster = request.getfixturevalue("redis_cluster")
        redis_url, prefix = private.url, private.prefix()
    else:
        redis_url = REDIS_URL
        try:
            client = aioredis.Redis.from_url(REDIS_URL)
            await client.ping()
            await client.aclose()
        except Exception as exc:
            unavailable("Redis", exc)
    await _truncate(url)
    try:
        yield Backend(kind, url, redis_url, prefix, cluster)
    finally:
        await _drop_prefix(prefix, redis_url, cluster=cluster)


@pytest.fixture(params=["embedded", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each test runs once per backend, on data of its own."""
    async with make_backend(request.param, request, tmp_path) as made:
        yield made


@pytest.fixture
async def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Postgres + Redis only: what several service processes can share (on the session's Redis
    Cluster for a test that parametrizes it, indirectly, with "cluster")."""
    async with make_backend(getattr(request, "param", "postgres"), request, tmp_path) as made:
        yield made


@pytest.fixture
async def service(backend: Backend) -> AsyncIterator[LiveService]:
    """The real service on a real uvicorn server (random port), with the 13 cities seeded."""
    async with run_service(backend.settings(offer_timeout_s=15.0)) as live:
        yield live
