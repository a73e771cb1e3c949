"""A socket's outbox: frames leave in order, a writer task exists only while frames wait, the
close comes after what was queued before it, and a console that does not read is closed."""

from __future__ import annotations

import asyncio

import orjson
from starlette.websockets import WebSocketState

from surge.auth.models import Role
from surge.auth.service import Principal
from surge.seats import frames
from surge.seats.gateway import CLOSE_OVERWHELMED, OUTBOX_LIMIT, Connection


class FakeSocket:
    """What the writer uses of a websocket; `gate` holds every send until it is set."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.application_state = WebSocketState.CONNECTED
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)

    async def close(self, code: int) -> None:
        self.closed_with = code
        self.application_state = WebSocketState.DISCONNECTED


def connection() -> tuple[Connection, FakeSocket]:
    socket = FakeSocket()
    principal = Principal(user_id=1, username="a", role=Role.AGENT, city="320100", agent_id=1)
    return Connection(socket, city="320100", principal=principal), socket  # type: ignore[arg-type]


def state(name: str) -> frames.Frame:
    return frames.state(state=name)


async def idle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_leave_in_order_and_no_writer_waits_on_an_idle_socket() -> None:
    conn, socket = connection()
    assert conn._writer is None
    conn.send(state("available"))
    conn.send(state("break"))
    await idle()
    assert [orjson.loads(text)["state"] for text in socket.sent] == ["available", "break"]
    assert conn._writer is None  # idle again: no task
    conn.send(state("available"))
    await idle()
    assert len(socket.sent) == 3
    assert conn._writer is None


async def test_close_comes_after_the_queued_frames_and_nothing_after_it() -> None:
    conn, socket = connection()
    socket.gate.clear()
    conn.send(state("available"))
    conn.close(1000)
    conn.send(state("break"))  # too late: the socket is closing
    socket.gate.set()
    await conn.closed(within_s=1)
    assert len(socket.sent) == 1
    assert socket.closed_with == 1000


async def test_a_console_that_does_not_read_is_closed_as_overwhelmed() -> None:
    conn, socket = connection()
    socket.gate.clear()  # the console reads nothing
    for _ in range(OUTBOX_LIMIT + 1):
        conn.send(state("available"))
    socket.gate.set()
    await conn.closed(within_s=1)
    assert conn.close_code == CLOSE_OVERWHELMED
    assert socket.closed_with == CLOSE_OVERWHELMED
    assert len(socket.sent) <= 1  # the one frame already in flight, if any
