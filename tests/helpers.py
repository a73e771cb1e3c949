"""Test helpers: a live service on a real uvicorn server, users, and a scripted agent console."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
import uvicorn
import websockets
from redis.crc import key_slot
from websockets.asyncio.client import ClientConnection

from surge.app import create_app
from surge.auth import service as auth_service
from surge.auth.models import Role
from surge.cities import service as cities_service
from surge.cli import build_parser
from surge.db import create_engine, create_sessionmaker
from surge.seats.keepalive import websocket_options
from surge.settings import Settings

PASSWORD = "correct-horse-battery"


async def seed(settings: Settings) -> None:
    """Load the 13 cities into the settings' database."""
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await cities_service.seed(session=session)
    finally:
        await engine.dispose()


@dataclass
class LiveService:
    """A running service and an HTTP client for it."""

    settings: Settings
    base_url: str
    http: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        """The websocket base URL."""
        return self.base_url.replace("http://", "ws://")

    async def add_user(
        self, role: Role, city: str | None = None, *, name: str | None = None
    ) -> str:
        """Create a user directly in the database and log it in; return its name."""
        name = name or f"{role.value}-{secrets.token_hex(3)}"
        engine = create_engine(self.settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                await auth_service.create_user(
                    session=session,
                    actor=auth_service.CLI,
                    username=name,
                    password=PASSWORD,
                    role=role,
                    city=city,
                )
        finally:
            await engine.dispose()
        response = await self.http.post(
            "/api/v1/auth/token", json={"username": name, "password": PASSWORD}
        )
        response.raise_for_status()
        self.tokens[name] = response.json()["access_token"]
        return name

    def auth(self, name: str) -> dict[str, str]:
        """Headers carrying the user's token."""
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def post_call(self, cti: str, city: str, **fields: Any) -> dict[str, Any]:
        """Post a call as the CTI and return it."""
        body = {"city": city, "caller": "13812345678", "channel": "phone", **fields}
        response = await self.http.post("/api/v1/calls", json=body, headers=self.auth(cti))
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    async def answer_call(
        self, cti: str, agent: str, city: str, *, complete: bool = True, **ticket: Any
    ) -> dict[str, Any]:
        """Post a call and have `agent` (not yet connected) take it, and complete it unless told."""
        async with self.console(agent) as console:
            await console.available()
            call = await self.post_call(cti, city)
            offer = await console.expect("offer")
            assert offer["call"]["id"] == call["id"]
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("call.connected")
            if complete:
                ticket = {"disposition": "answered", "category_code": "0101", **ticket}
                await console.send(type="complete", call_id=call["id"], **ticket)
                await console.expect("call.completed")
        return call

    @asynccontextmanager
    async def console(self, agent: str) -> AsyncIterator[Console]:
        """Open an agent's console websocket (after its `hello`)."""
        url = f"{self.ws_url}/ws/agent?token={self.tokens[agent]}"
        async with websockets.connect(url) as socket:
            console = Console(socket)
            console.hello = await console.expect("hello")
            yield console


class Console:
    """A scripted agent console over a real websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.hello: dict[str, Any] = {}

    async def send(self, **message: Any) -> None:
        """Send one JSON message."""
        await self.socket.send(json.dumps(message))

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        """The next frame."""
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), within))
        return frame

    async def drain(self) -> None:
        """Read frames until the server closes the socket (raises `ConnectionClosed`)."""
        while True:
            await self.socket.recv()

    async def expect(self, kind: str, within: float = 5.0) -> dict[str, Any]:
        """The next frame, which must be of type `kind`."""
        frame = await self.recv(within)
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    async def silent(self, seconds: float = 0.3) -> None:
        """Assert that nothing arrives for a while."""
        try:
            frame = await asyncio.wait_for(self.socket.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected silence, got {frame!r}")

    async def available(self) -> None:
        """Go available and wait for the confirmation."""
        await self.send(type="status", state="available")
        assert (await self.expect("state"))["state"] == "available"


@asynccontextmanager
async def run_service(settings: Settings) -> AsyncIterator[LiveService]:
    """Serve the app on a real uvicorn server on a free port, in this event loop."""
    await seed(settings)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        **websocket_options(settings),
    )
    async with serving(config) as port:
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            yield LiveService(settings=settings, base_url=base_url, http=http)


@asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[int]:
    """A uvicorn server of `config` in this event loop; yields its port; stopped at the end."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped the server
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateRedis:
    """A `redis-server` of one test's own on a free port, keeping nothing: restarted, it is empty.

    Fault tests stop and restart it; the shared Redis is never touched.
    """

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it empty (no persistence) and wait until it answers."""
        self._process = await asyncio.create_subprocess_exec(
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(self._directory)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except (aioredis.ConnectionError, OSError):
                    await asyncio.sleep(0.05)
            raise RuntimeError("redis-server did not start")
        finally:
            await client.aclose()

    async def kill(self) -> None:
        """SIGKILL, if it runs: everything it held is gone."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()

    def freeze(self) -> None:
        """SIGSTOP: it answers nothing, its sockets stay open (a server hung, not gone)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: it answers again."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    async def configure(self, name: str, value: str) -> None:
        """Change a setting while it runs (to make it refuse writes but keep its data, say)."""
        client = aioredis.Redis.from_url(self.url)
        try:
            await client.config_set(name, value)
        finally:
            await client.aclose()


@asynccontextmanager
async def private_redis(directory: Path) -> AsyncIterator[PrivateRedis]:
    """A private Redis for the block; killed at the end."""
    server = PrivateRedis(directory)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@dataclass(frozen=True)
class PrivateCluster:
    """A running Redis Cluster of a test session's own."""

    url: str  # names one node; a cluster client finds the others
    seed_slots: tuple[range, ...]  # the slots that node serves

    def prefix(self) -> str:
        """A key prefix of one test's own whose hash tag puts all its keys in one slot, one that
        the node the URL names does not serve: a command a client sent there without routing
        it by its slot is refused (MOVED), so a test passes only if routing works."""
        while True:
            prefix = f"{{surge-test-{uuid.uuid4().hex[:12]}}}:"
            if not any(key_slot(prefix.encode()) in served for served in self.seed_slots):
                return prefix


@contextmanager
def private_cluster(directory: Path, *, masters: int = 3) -> Iterator[PrivateCluster]:
    """A Redis Cluster of `masters` masters (no replicas) on free ports, keeping nothing, for
    the block.

    Each node is `redis-server --cluster-enabled yes` with its config file in `directory`;
    `redis-cli --cluster create` shares the slots out. The nodes are stopped at the end.
    """
    ports: set[int] = set()
    while len(ports) < 2 * masters:  # each node's own port and its cluster bus port
        ports.add(free_port())
    nodes, buses = sorted(ports)[:masters], sorted(ports)[masters:]
    processes: list[subprocess.Popen[bytes]] = []
    clients = [redis.Redis("127.0.0.1", port, socket_connect_timeout=1) for port in nodes]
    try:
        for port, bus in zip(nodes, buses, strict=True):
            processes.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        *("--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1"),
                        *("--cluster-enabled", "yes", "--dir", str(directory)),
                        *("--cluster-config-file", f"nodes-{port}.conf"),
                        *("--save", "", "--appendonly", "no"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _until(lambda: all(_answers(client) for client in clients), "the nodes did not start")
        created = subprocess.run(
            [
                *("redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in nodes)),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        _until(
            lambda: all(c.cluster("INFO")["cluster_state"] == "ok" for c in clients),
            "the cluster did not reach cluster_state:ok",
        )
        ranges = clients[0].cluster("SLOTS")
        served = tuple(range(r[0], r[1] + 1) for r in ranges if int(r[2][1]) == nodes[0])
        yield PrivateCluster(f"redis://127.0.0.1:{nodes[0]}/0", served)
    finally:
        for client in clients:
            client.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, OSError):
        return False


def _until(condition: Callable[[], bool], failure: str, *, within_s: float = 20) -> None:
    """Poll `condition` (blocking: the cluster starts before any event loop needs it)."""
    for _ in range(int(within_s / 0.05)):
        if condition():
            return
        time.sleep(0.05)
    raise RuntimeError(failure)


PROTOCOL_DOC = Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md"


def protocol_table(header: str) -> list[str]:
    """The rows of the docs/PROTOCOL.md table under `header`, in order."""
    lines = PROTOCOL_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(header) + 2  # past the header and its rule
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def surge_commands(
    parser: argparse.ArgumentParser | None = None, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every `surge` command as it is typed, with its verb (`users add`), and its parser."""
    parser = parser or build_parser()
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found |= surge_commands(command, f"{prefix}{name} ")
    return found or {prefix.strip(): parser}
