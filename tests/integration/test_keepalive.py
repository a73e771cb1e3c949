"""The websocket keepalive (`surge.seats.keepalive`) on a real uvicorn server, seen from raw
clients that record each ping and answer it, or stop answering, as told."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from surge.seats.keepalive import TICKS_PER_WAIT, Sweeper, websocket_options
from surge.settings import Settings
from tests.helpers import serving

HEARTBEAT_S = 2.0  # so a ping every 1 s at most, answered within 1 s
INTERVAL_S = WAIT_S = HEARTBEAT_S / 2
TICK_S = WAIT_S / TICKS_PER_WAIT
SLACK_S = 0.3  # a loaded CI machine's event loops run late


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept a websocket and wait for its end."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def server() -> contextlib.AbstractAsyncContextManager[int]:
    """The app on a free port with the service's websocket options; yields the port."""
    options = websocket_options(Settings(heartbeat_timeout_s=HEARTBEAT_S))
    return serving(
        uvicorn.Config(echo_app, host="127.0.0.1", port=0, log_level="warning", **options)
    )


@dataclass
class RawClient:
    """A websocket client that timestamps every ping it gets and answers while `answering`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: ClientProtocol
    answering: bool = True
    pings: list[float] = field(default_factory=list)
    last_pong: float = 0.0
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed_at: float | None = None
    close_code: int | None = None

    @classmethod
    async def open(cls, port: int) -> RawClient:
        """Connect and finish the handshake."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
        protocol.send_request(protocol.connect())
        writer.write(b"".join(protocol.data_to_send()))
        while not any(isinstance(e, Response) for e in protocol.events_received()):
            protocol.receive_data(await reader.read(65536))
        return cls(reader, writer, protocol)

    async def run(self) -> None:
        """Read until the server closes the connection."""
        loop = asyncio.get_running_loop()
        while data := await self.reader.read(65536):
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if getattr(event, "opcode", None) is Opcode.PING:
                    self.pings.append(loop.time())
            if self.protocol.close_rcvd is not None:
                self.close_code = self.protocol.close_rcvd.code
            reply = b"".join(self.protocol.data_to_send())  # the pongs the protocol queued
            if reply and self.answering:
                self.writer.write(reply)
                self.last_pong = loop.time()
                self.answered.set()
        self.closed_at = loop.time()
        self.closed.set()


@contextlib.asynccontextmanager
async def reading() -> AsyncIterator[Callable[[int], Awaitable[RawClient]]]:
    """Yields `open(port)`: a client, read (`run`) from then on; at the end the reading stops
    and the sockets are closed."""
    clients: list[RawClient] = []
    tasks: list[asyncio.Task[None]] = []

    async def open_client(port: int) -> RawClient:
        client = await RawClient.open(port)
        clients.append(client)
        tasks.append(asyncio.create_task(client.run()))
        return client

    try:
        yield open_client
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            client.writer.close()
            with contextlib.suppress(OSError):
                await client.writer.wait_closed()


async def test_the_pings_of_sockets_opened_over_an_interval_go_out_in_sweeps() -> None:
    async with server() as port, reading() as open_client:
        clients = []
        for _ in range(40):  # opened over one interval: 40 pings an interval, each on its own,
            clients.append(await open_client(port))  # without the sweeps
            await asyncio.sleep(INTERVAL_S / 40)
        await asyncio.sleep(3 * INTERVAL_S + SLACK_S)
    moments = sorted(t for c in clients for t in c.pings)
    # A sweep pings its sockets in one callback, so their pings arrive together, in a burst;
    # pinged each on its own timer they would come one by one, INTERVAL_S / 40 apart. A loaded
    # machine runs a sweep late, which moves its burst but does not spread it.
    bursts = [[moments[0]]]
    for before, t in itertools.pairwise(moments):
        if t - before > INTERVAL_S / 40 / 2:
            bursts.append([])
        bursts[-1].append(t)
    assert len(bursts) <= (4 * INTERVAL_S + SLACK_S) / TICK_S + 1, [len(b) for b in bursts]
    assert len(moments) >= 3 * len(bursts), [len(b) for b in bursts]
    assert all(len(c.pings) >= 2 for c in clients), [c.pings for c in clients]
    assert all(c.closed_at is None for c in clients)
    # Each socket is pinged again within the interval, and not much before it (a tick early).
    gaps = [b - a for c in clients for a, b in itertools.pairwise(c.pings)]
    assert max(gaps) <= INTERVAL_S + SLACK_S, gaps
    assert min(gaps) >= INTERVAL_S - 2 * TICK_S, gaps


async def test_a_socket_that_stops_answering_pings_is_closed_within_the_heartbeat() -> None:
    async with server() as port, reading() as open_client:
        silent, answering = await open_client(port), await open_client(port)
        await silent.answered.wait()  # one ping answered
        silent.answering = False
        stopped = silent.last_pong
        await asyncio.wait_for(silent.closed.wait(), HEARTBEAT_S + 2 * SLACK_S)
        await asyncio.sleep(HEARTBEAT_S)  # the other one, answering, is kept all along
    assert silent.closed_at is not None
    assert silent.close_code == 1011
    # Lost within the heartbeat of its last pong: a ping within the interval, then the wait.
    assert silent.closed_at - stopped <= HEARTBEAT_S + SLACK_S
    # ... and not before a ping went unanswered for the whole wait (less a tick).
    assert silent.closed_at - silent.pings[-1] >= WAIT_S - 2 * TICK_S
    assert answering.closed_at is None
    assert len(answering.pings) >= 4


@dataclass
class Due:
    """A socket for the sweeper alone: it records when it is served, and may ask again."""

    sweeper: Sweeper
    again_in: float | None = None  # ask to be served again this long after each service
    keepalive_slot: int | None = None
    served: list[float] = field(default_factory=list)

    def keepalive_due(self) -> None:
        now = asyncio.get_running_loop().time()
        self.served.append(now)
        if self.again_in is not None:
            self.sweeper.at(self, now + self.again_in)


async def test_the_sweeper_serves_each_socket_in_the_first_sweep_at_or_after_its_time() -> None:
    loop = asyncio.get_running_loop()
    tick = 0.05
    sweeper = Sweeper(loop, tick)
    start = loop.time()
    # One socket served again and again from within the sweeps (as pings and pong deadlines
    # are), nine more due once each at a later tick: a sweep's own requests must not put off
    # the ticks already waiting.
    every = Due(sweeper, again_in=9 * tick)
    sweeper.at(every, start)
    once = [Due(sweeper) for _ in range(9)]
    for k, socket in enumerate(once, start=1):
        sweeper.at(socket, start + k * tick + tick / 3)
    moved = Due(sweeper)  # asked for twice: served once, at the second time
    sweeper.at(moved, start + 2 * tick)
    sweeper.at(moved, start + 4 * tick)
    await asyncio.sleep(12 * tick)
    for k, socket in enumerate(once, start=1):
        due = start + k * tick + tick / 3
        assert len(socket.served) == 1
        assert due - tick / 2 <= socket.served[0] <= due + tick + SLACK_S / 3
    assert len(every.served) == 2
    assert len(moved.served) == 1
    assert moved.served[0] >= start + 4 * tick - tick / 2


@dataclass
class Broken(Due):
    """A socket whose service fails (a transport gone wrong, say)."""

    def keepalive_due(self) -> None:
        super().keepalive_due()
        raise OSError("the transport broke")


async def test_a_socket_whose_ping_fails_stops_neither_the_others_nor_the_sweeps(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    tick = 0.05
    sweeper = Sweeper(loop, tick)
    start = loop.time()
    broken, beside, later = Broken(sweeper), Due(sweeper), Due(sweeper)
    sweeper.at(broken, start + tick)
    sweeper.at(beside, start + tick)  # the same sweep, after the broken one
    sweeper.at(later, start + 3 * tick)  # a later sweep
    await asyncio.sleep(6 * tick)
    assert len(broken.served) == 1
    assert len(beside.served) == 1
    assert len(later.served) == 1
    assert "websocket.keepalive_failed" in caplog.text
