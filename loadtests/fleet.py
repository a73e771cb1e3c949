"""The agent fleet: many scripted consoles on /ws/agent, in a process of their own.

Each agent accepts every offer as soon as it arrives and completes the call after a random
handling time, after which the service makes it available again. The fleet runs in a child
process (multiprocessing, spawn) so that its websocket work does not compete with the HTTP load
generator for one interpreter; the parent drives it with commands over a pipe (`FleetProcess`).
Times it records are `time.time()`, the same clock the parent stamps its POSTs with.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

CONNECT_CONCURRENCY = 50  # sockets opened at once
FRAME_TIMEOUT_S = 60.0  # how long an agent waits for `hello` or a `state` answer
STATE_CONCURRENCY = 50  # status changes in flight at once (1,000 agents do not click together)
RETRYABLE = frozenset({"state_unavailable", "service_unavailable", "internal_error"})
MAX_RETRIES = 5
COMPLETE_MESSAGE = {
    "disposition": "answered",
    "category_code": "0101",
    "summary": "load test call",
}


@dataclass(frozen=True)
class FleetSpec:
    """What the fleet connects to and how its agents behave."""

    ws_url: str
    tokens: tuple[str, ...]
    handle_s: tuple[float, float]  # handling time, uniform between the two
    seed: int = 12345


@dataclass
class FleetStats:
    """What the agents saw, keyed by call id, with `time.time()` stamps."""

    offers: dict[int, float] = field(default_factory=dict)  # first offer received
    connected: dict[int, float] = field(default_factory=dict)  # `call.connected` received
    completed: dict[int, float] = field(default_factory=dict)  # `call.completed` received
    reoffers: int = 0  # offers for a call that had been offered before
    anomalies: Counter[str] = field(default_factory=Counter)  # revoked offers, errors, ...
    samples: list[str] = field(default_factory=list)  # the first few anomalous frames
    dropped: int = 0  # sockets the service closed while the fleet was running

    def note(self, kind: str, detail: object) -> None:
        """Count something unexpected and keep a few examples."""
        self.anomalies[kind] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{kind}: {detail}")


class Agent:
    """One console: accept at once, complete after the handling time, report what it saw.

    Like a console whose user clicks again, it resends a request the service answered with a
    transient error (`state_unavailable`, ...) a few times, and goes available again after
    missing an offer; each such event is counted as an anomaly.
    """

    def __init__(self, fleet: Fleet, token: str) -> None:
        """An agent not connected yet."""
        self.fleet = fleet
        self.token = token
        self.socket: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.state_waiter: asyncio.Future[str] | None = None
        self.pending: dict[str, Any] | None = None  # the last request not answered yet
        self.retries = 0

    async def open(self) -> None:
        """Connect, read the `hello`, start reading frames."""
        # Browsers offer permessage-deflate, and so does this client by default.
        self.socket = await connect(
            f"{self.fleet.spec.ws_url}/ws/agent?token={self.token}",
            ping_interval=None,
            open_timeout=FRAME_TIMEOUT_S,
            close_timeout=2,
        )
        hello = orjson.loads(await asyncio.wait_for(self.socket.recv(), FRAME_TIMEOUT_S))
        if hello.get("type") != "hello":
            raise RuntimeError(f"expected hello, got {hello!r}")
        self.reader = asyncio.create_task(self.read())

    async def send(self, message: dict[str, Any]) -> None:
        """Send one JSON text frame."""
        assert self.socket is not None
        await self.socket.send(orjson.dumps(message).decode())

    async def request(self, message: dict[str, Any]) -> None:
        """Send a message that expects an answer (an error answer may resend it)."""
        self.pending = message
        self.retries = 0
        await self.send(message)

    async def set_state(self, state: str) -> None:
        """Go available or on break and wait for the service to confirm it."""
        loop = asyncio.get_running_loop()
        self.state_waiter = loop.create_future()
        await self.request({"type": "status", "state": state})
        got = await asyncio.wait_for(self.state_waiter, FRAME_TIMEOUT_S)
        if got != state:
            raise RuntimeError(f"asked for {state}, the service says {got}")

    async def read(self) -> None:
        """Handle frames until the socket closes."""
        assert self.socket is not None
        stats = self.fleet.stats
        try:
            async for message in self.socket:
                frame = orjson.loads(message)
                kind = frame.get("type")
                if kind == "offer":
                    call_id = frame["call"]["id"]
                    if call_id in stats.offers:
                        stats.reoffers += 1
                    else:
                        stats.offers[call_id] = time.time()
                    await self.request({"type": "accept", "offer_id": frame["offer_id"]})
                elif kind == "call.connected":
                    self.pending = None
                    stats.connected[frame["call_id"]] = time.time()
                    self.fleet.spawn(self.complete_later(frame["call_id"]))
                elif kind == "call.completed":
                    self.pending = None
                    stats.completed[frame["call_id"]] = time.time()
                elif kind == "state":
                    self.on_state(frame)
                elif kind == "error":
                    self.on_error(frame)
                else:
                    stats.note(str(kind), frame)
        except ConnectionClosed:
            pass
        finally:
            if not self.fleet.closing:
                stats.dropped += 1

    def on_state(self, frame: dict[str, Any]) -> None:
        """The service says the agent's state (an answer, or news such as a missed offer)."""
        self.pending = None
        waiter = self.state_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(frame["state"])
        if frame.get("reason") == "missed_offer":
            self.fleet.stats.note("missed_offer", frame)
            self.fleet.spawn(self.request({"type": "status", "state": "available"}))

    def on_error(self, frame: dict[str, Any]) -> None:
        """An `error` answer: resend a transient failure a few times, else give up on it."""
        code = str(frame.get("code"))
        self.fleet.stats.note(f"error {code}", frame.get("message"))
        pending = self.pending
        if pending is not None and code in RETRYABLE and self.retries < MAX_RETRIES:
            self.retries += 1
            self.fleet.spawn(self.resend(pending, 0.05 * 2**self.retries))
            return
        self.pending = None
        waiter = self.state_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(RuntimeError(f"{code}: {frame.get('message')}"))

    async def resend(self, message: dict[str, Any], delay_s: float) -> None:
        """Send `message` again after a pause, unless something else was sent since."""
        await asyncio.sleep(delay_s)
        if self.pending is message:
            with contextlib.suppress(ConnectionClosed):
                await self.send(message)

    async def complete_later(self, call_id: int) -> None:
        """Hold the call for the handling time, then close its ticket."""
        await asyncio.sleep(self.fleet.handling_time())
        with contextlib.suppress(ConnectionClosed):
            await self.request({"type": "complete", "call_id": call_id, **COMPLETE_MESSAGE})

    async def close(self) -> None:
        """Close the socket and stop reading."""
        if self.socket is not None:
            with contextlib.suppress(Exception):
                await self.socket.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


class Fleet:
    """All the agents of this process."""

    def __init__(self, spec: FleetSpec) -> None:
        """One agent per token, none connected yet."""
        self.spec = spec
        self.stats = FleetStats()
        self.agents = [Agent(self, token) for token in spec.tokens]
        self.closing = False
        self._random = random.Random(spec.seed)
        self._tasks: set[asyncio.Task[None]] = set()

    def handling_time(self) -> float:
        """A handling time drawn from the spec's range."""
        low, high = self.spec.handle_s
        return self._random.uniform(low, high)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task that is kept alive until it ends."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _each(
        self, work: Callable[[Agent], Awaitable[None]], concurrency: int
    ) -> dict[str, Any]:
        """Run `work(agent)` for every agent, `concurrency` at a time; count the failures."""
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()

        async def one(agent: Agent) -> None:
            """One agent's share, behind the gate."""
            async with gate:
                try:
                    await work(agent)
                except (OSError, TimeoutError, RuntimeError, WebSocketException) as exc:
                    errors[f"{type(exc).__name__}: {exc}"[:200]] += 1

        await asyncio.gather(*(one(agent) for agent in self.agents))
        return {"ok": len(self.agents) - sum(errors.values()), "errors": dict(errors)}

    async def connect(self) -> dict[str, Any]:
        """Open every console."""
        return await self._each(Agent.open, CONNECT_CONCURRENCY)

    async def set_state(self, state: str) -> dict[str, Any]:
        """Put every agent in `state` (available or break)."""

        async def change(agent: Agent) -> None:
            """One agent's change."""
            await agent.set_state(state)

        return await self._each(change, STATE_CONCURRENCY)

    def progress(self) -> dict[str, int]:
        """Counts so far."""
        stats = self.stats
        return {
            "offers": len(stats.offers),
            "completed": len(stats.completed),
            "dropped": stats.dropped,
        }

    def collect(self) -> dict[str, Any]:
        """Everything recorded so far, and the CPU time this process used."""
        stats = self.stats
        return {
            "offers": stats.offers,
            "connected": stats.connected,
            "completed": stats.completed,
            "reoffers": stats.reoffers,
            "anomalies": dict(stats.anomalies),
            "samples": stats.samples,
            "dropped": stats.dropped,
            "cpu_s": time.process_time(),
        }

    async def close(self) -> None:
        """Close every console."""
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        gate = asyncio.Semaphore(200)

        async def close_one(agent: Agent) -> None:
            """One agent's close, behind the gate."""
            async with gate:
                await agent.close()

        await asyncio.gather(*(close_one(agent) for agent in self.agents))


async def _serve(conn: Connection, spec: FleetSpec) -> None:
    """Answer the parent's commands until it says `close` (or goes away)."""
    fleet = Fleet(spec)
    try:
        while True:
            try:
                command, *args = await asyncio.to_thread(conn.recv)
            except EOFError:
                return  # the parent is gone
            try:
                if command == "connect":
                    reply: Any = await fleet.connect()
                elif command == "state":
                    reply = await fleet.set_state(args[0])
                elif command == "progress":
                    reply = fleet.progress()
                elif command == "collect":
                    reply = fleet.collect()
                elif command == "close":
                    await fleet.close()
                    conn.send(("ok", None))
                    return
                else:
                    raise ValueError(f"unknown command {command!r}")
            except Exception as exc:  # tell the parent rather than die silently
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("ok", reply))
    finally:
        await fleet.close()


def fleet_main(conn: Connection, spec: FleetSpec) -> None:
    """Entry point of the fleet process."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(conn, spec))
    conn.close()


class FleetProcess:
    """The parent's handle on a fleet process."""

    def __init__(self, spec: FleetSpec) -> None:
        """Start the fleet process."""
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=fleet_main, args=(child, spec), name="surge-bench-agents", daemon=True
        )
        self._process.start()
        child.close()
        self._lock = asyncio.Lock()

    async def ask(self, command: str, *args: Any, timeout_s: float = 120.0) -> Any:
        """Send a command and wait for its answer."""

        def exchange() -> tuple[str, Any]:
            """The blocking pipe exchange, off the event loop."""
            self._conn.send((command, *args))
            if not self._conn.poll(timeout_s):
                raise TimeoutError(f"the agent fleet did not answer {command!r} in {timeout_s} s")
            reply: tuple[str, Any] = self._conn.recv()
            return reply

        if not self._process.is_alive():
            raise RuntimeError(f"the agent fleet process exited ({self._process.exitcode})")
        async with self._lock:
            status, value = await asyncio.to_thread(exchange)
        if status != "ok":
            raise RuntimeError(f"the agent fleet failed on {command!r}: {value}")
        return value

    async def stop(self) -> None:
        """Close the agents and end the process (terminate, then kill, if it lingers)."""
        with contextlib.suppress(Exception):
            if self._process.is_alive():
                await self.ask("close", timeout_s=30)
        await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.terminate()
            await asyncio.to_thread(self._process.join, 5)
        if self._process.is_alive():
            self._process.kill()
            await asyncio.to_thread(self._process.join, 5)
        self._conn.close()
        with contextlib.suppress(ValueError):  # still running after kill: leave it to the OS
            self._process.close()
