"""What a benchmark runs on: its own database and Redis prefix, bulk accounts, one service process.

Everything is loopback only and bounded in time; each resource has a matching clean-up that is
safe to call after a partial set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import redis.asyncio as aioredis
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from surge.auth.models import Role, User
from surge.auth.service import Principal, hash_password, issue_token
from surge.seats.models import Agent
from surge.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "SURGE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SURGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
HOST = "127.0.0.1"
SURGE = Path(sys.executable).with_name("surge")  # the console script of this virtualenv


class BenchError(RuntimeError):
    """The benchmark itself broke (the service crashed, a call was lost, set-up failed)."""


class Outcome(Protocol):
    @property
    def broken(self) -> bool: ...


def exit_code(run: Callable[[], Outcome]) -> int:
    """Run a benchmark; 0 when it ran (PASS or MISS), 1 when it broke, saying how."""
    try:
        outcome = run()
    except BenchError as exc:
        print(f"benchmark broke: {exc}", file=sys.stderr)
        return 1
    except Exception:  # anything else breaking the run is as bad: say where
        traceback.print_exc()
        print("benchmark broke (see the traceback above)", file=sys.stderr)
        return 1
    return 1 if outcome.broken else 0


# --- PostgreSQL -------------------------------------------------------------------------------


async def _admin_sql(statement: str) -> None:
    """Run one statement outside a transaction on the maintenance database."""
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def database_url(name: str) -> str:
    """The URL of database `name` on the benchmark's PostgreSQL server."""
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def create_database(name: str) -> str:
    """Create an empty database of the benchmark's own; return its URL."""
    await asyncio.wait_for(_admin_sql(f'CREATE DATABASE "{name}"'), timeout=30)
    return database_url(name)


async def drop_database(name: str) -> None:
    """Drop the benchmark's database, closing any connection still open on it."""
    await asyncio.wait_for(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), 60)


# --- Redis ------------------------------------------------------------------------------------


async def ping_redis() -> None:
    """Fail early and clearly when Redis is not there."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await asyncio.wait_for(client.ping(), timeout=5)
    finally:
        await client.aclose()


async def drop_prefix(prefix: str) -> int:
    """Delete every key under the benchmark's prefix (SCAN + UNLINK); return how many."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(await client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await client.unlink(*batch))
    finally:
        await client.aclose()
    return deleted


# --- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accounts:
    """The CTI's token, `agent_city`'s admin's and one token per agent (all of `agent_city`)."""

    cti_token: str
    admin_token: str
    agent_city: str
    agent_tokens: tuple[str, ...]


async def create_accounts(
    url: str, settings: Settings, *, agents: int, agent_city: str, run_id: str
) -> Accounts:
    """Insert a province-wide CTI, a city admin and `agents` agents; mint their tokens directly.

    Hashing 1,000 passwords with argon2 and logging each in would take minutes: every account
    shares one hash (nobody logs in with it) and tokens are signed with the service's secret.
    """
    password_hash = await hash_password(os.urandom(16).hex())
    names = [f"bench-{run_id}-agent-{i:05d}" for i in range(agents)]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            cti_name = f"bench-{run_id}-cti"
            cti_id = (
                await connection.execute(
                    insert(User)
                    .values(
                        username=cti_name,
                        password_hash=password_hash,
                        role=Role.CTI.value,
                        city_code=None,
                    )
                    .returning(User.id)
                )
            ).scalar_one()
            admin_name = f"bench-{run_id}-admin"
            admin_id = (
                await connection.execute(
                    insert(User)
                    .values(
                        username=admin_name,
                        password_hash=password_hash,
                        role=Role.CITY_ADMIN.value,
                        city_code=agent_city,
                    )
                    .returning(User.id)
                )
            ).scalar_one()
            user_ids: Sequence[int] = []
            agent_ids: Sequence[int] = []
            if names:
                user_ids = (
                    (
                        await connection.execute(
                            insert(User).returning(User.id, sort_by_parameter_order=True),
                            [
                                {
                                    "username": name,
                                    "password_hash": password_hash,
                                    "role": Role.AGENT.value,
                                    "city_code": agent_city,
                                }
                                for name in names
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
                agent_ids = (
                    (
                        await connection.execute(
                            insert(Agent).returning(Agent.id, sort_by_parameter_order=True),
                            [
                                {
                                    "user_id": user_id,
                                    "city_code": agent_city,
                                    "name": name,
                                    "endpoint": f"sip:{name}@{agent_city}.12345.local",
                                }
                                for user_id, name in zip(user_ids, names, strict=True)
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
    finally:
        await engine.dispose()
    cti = Principal(user_id=cti_id, username=cti_name, role=Role.CTI, city=None)
    admin = Principal(user_id=admin_id, username=admin_name, role=Role.CITY_ADMIN, city=agent_city)
    return Accounts(
        cti_token=issue_token(settings=settings, principal=cti),
        admin_token=issue_token(settings=settings, principal=admin),
        agent_city=agent_city,
        agent_tokens=tuple(
            issue_token(
                settings=settings,
                principal=Principal(
                    user_id=user_id,
                    username=name,
                    role=Role.AGENT,
                    city=agent_city,
                    agent_id=agent_id,
                ),
            )
            for user_id, agent_id, name in zip(user_ids, agent_ids, names, strict=True)
        ),
    )


# --- the service process ----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(values: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any SURGE_* setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURGE_")}
    env.update(values)
    return env


@dataclass(frozen=True)
class Stack:
    """A migrated, seeded database and a Redis prefix of one benchmark's own."""

    url: str
    env: dict[str, str]  # the service's environment
    settings: Settings  # the same, for this process (to mint tokens)


async def prepare_stack(
    exits: contextlib.AsyncExitStack,
    *,
    db_name: str,
    prefix: str,
    secret: str,
    cwd: Path,
    more_env: Mapping[str, str] | None = None,
) -> Stack:
    """Create the database and prefix (dropped when `exits` closes), migrate and seed them."""
    exits.push_async_callback(drop_prefix, prefix)
    url = await create_database(db_name)
    exits.push_async_callback(drop_database, db_name)
    values = {
        "SURGE_DATABASE_URL": url,
        "SURGE_REDIS_URL": REDIS_URL,
        "SURGE_REDIS_PREFIX": prefix,
        "SURGE_SECRET_KEY": secret,
        "SURGE_ENVIRONMENT": "production",
        # The benchmarks' agents take their next call as soon as a ticket is closed (a wrap-up
        # would only stretch each run; the figures compare against baselines without one).
        "SURGE_WRAP_UP_S": "0",
        **(more_env or {}),
    }
    env = service_env(values)
    await run_cli(["migrate"], env=env, cwd=cwd)
    await run_cli(["seed"], env=env, cwd=cwd)
    settings = Settings(
        database_url=url,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        secret_key=secret,
        environment="production",
        _env_file=None,
    )
    return Stack(url, env, settings)


async def run_cli(args: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> str:
    """Run one `surge` command to completion (2 minutes at most); return its output."""

    def run() -> subprocess.CompletedProcess[str]:
        """The blocking part, off the event loop."""
        return subprocess.run(
            [str(SURGE), *args],
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = await asyncio.to_thread(run)
    if done.returncode != 0:
        raise BenchError(f"`surge {' '.join(args)}` failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _proc_status(pid: int) -> dict[str, str]:
    """The fields of /proc/<pid>/status."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _cpu_seconds(pid: int) -> tuple[str, float] | None:
    """A process's command name and user + system CPU seconds so far; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            head, _, tail = stat.read().rpartition(")")
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its parenthesis.
    fields = tail.split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return head.partition("(")[2], ticks / os.sysconf("SC_CLK_TCK")


SERVERS = {"postgres": "postgres", "redis-server": "redis"}
"""Command name -> the server it is one process of."""


def servers_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this machine's PostgreSQL and Redis processes, by server (the
    ones that still run: a backend that ended is not counted)."""
    used = dict.fromkeys(SERVERS.values(), 0.0)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _cpu_seconds(int(entry))) is not None:
            server = SERVERS.get(found[0])
            if server is not None:
                used[server] += found[1]
    return used


def machine_cpu_seconds() -> tuple[float, float]:
    """The machine's busy and total CPU seconds so far, over all its cores (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    total = sum(ticks[:8])  # guest time is counted in user time already
    hertz = os.sysconf("SC_CLK_TCK")
    return (total - idle) / hertz, total / hertz


def _tree(pid: int) -> list[int]:
    """The process and its descendants (a `--workers` supervisor's workers)."""
    pids = [pid]
    for each in pids:
        path = f"/proc/{each}/task/{each}/children"
        with contextlib.suppress(OSError), open(path, encoding="ascii") as children:
            pids += [int(child) for child in children.read().split()]
    return pids


class Service:
    """One `surge serve` subprocess on a free loopback port; always stopped by `stop()`.

    With `workers` > 1 it is uvicorn's supervisor and its workers: CPU and memory are their sums.
    """

    def __init__(self, *, env: Mapping[str, str], cwd: Path, workers: int = 1) -> None:
        """Prepare the service on a free port (`start()` runs it)."""
        self.workers = workers
        self.env = dict(env)
        self.cwd = cwd
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.port}"
        self.log_path = cwd / "service.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The service process's id."""
        if self._process is None:
            raise BenchError("the service is not started")
        return self._process.pid

    def _command(self) -> list[str]:
        """The command line that runs the service (`surge serve` here)."""
        args = [str(SURGE), "serve", "--host", HOST, "--port", str(self.port)]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        return [*args, "--log-level", "warning"]

    def _launch(self) -> None:
        """Start the service's process, its output going to the log file."""
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, *, timeout_s: float = 60.0) -> None:
        """Start `surge serve` (it migrates first) and wait until /readyz answers 200."""
        self._launch()
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while True:
                self.check_alive()
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"the service was not ready after {timeout_s:.0f} s")
                await asyncio.sleep(0.1)

    def check_alive(self) -> None:
        """Raise `BenchError` (with the end of its log) if the service has exited."""
        if self._process is None:
            raise BenchError("the service is not started")
        code = self._process.poll()
        if code is not None:
            raise BenchError(f"the service exited with {code}; its log ends:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the service's output."""
        try:
            text_lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text_lines[-lines:]) or "(empty)"

    def memory_mb(self) -> tuple[float, float]:
        """The service's resident set size now and at its peak (VmRSS, VmHWM), in MB."""
        rss_kb = hwm_kb = 0
        for pid in _tree(self.pid):
            with contextlib.suppress(OSError):
                fields = _proc_status(pid)
                rss_kb += int(fields["VmRSS"].split()[0])
                hwm_kb += int(fields["VmHWM"].split()[0])
        return rss_kb / 1024, hwm_kb / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the service has used so far."""
        return sum(found[1] for pid in _tree(self.pid) if (found := _cpu_seconds(pid)))

    async def stop(self) -> int | None:
        """Terminate the service, then kill it if it lingers; return its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 15)
        return process.returncode
