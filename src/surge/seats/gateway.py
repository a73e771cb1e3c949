"""The websocket gateway: which consoles and telephony streams are connected to this instance.

Frames reach a socket through its connection's outbox, written by one task per socket, so a slow
console never holds up the others; the writer runs only while the outbox holds frames, so an
idle socket (most are, most of the time) costs no task and no queue. Events for sockets on
other instances travel over the hot state's bus; each instance delivers what is addressed to
its own sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketState

from surge.auth.directory import WITHDRAWN
from surge.auth.service import Principal
from surge.errors import SurgeError, Unauthorized
from surge.events import Event, close_agent
from surge.loops import run_forever
from surge.seats import frames
from surge.seats.frames import Frame
from surge.state.base import AgentState, HotState

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 1000  # frames queued for one socket before it is considered dead and closed
CLOSE_REPLACED = 4409  # the agent opened its console elsewhere
CLOSE_UNAUTHORIZED = 4401  # no valid token, or its user was disabled or deleted
CLOSE_LOGGED_OUT = 4408  # a supervisor logged the agent out (`POST /agents/{id}/logout`)
CLOSE_OVERWHELMED = 1011  # the console did not keep up with its frames: as good as lost


class Connection:
    """One connected websocket, its outbox and, while that holds frames, its writer task."""

    _ids = itertools.count(1)

    def __init__(self, websocket: WebSocket, *, city: str | None, principal: Principal) -> None:
        self.id = next(self._ids)
        self.websocket = websocket
        self.city = city
        self.principal = principal  # whose token opened the socket
        # Frames in order, then None once closed; a list, not a queue: most stay empty.
        self._outbox: list[Frame | None] = []
        self._writer: asyncio.Task[None] | None = None  # sending, or ended (closed or failed)
        self.close_code: int | None = None
        # The agent state this console was last told (`hello`, `state`) and the offer it was
        # last shown: what a rebuilt hot state restores, or revokes.
        self.told_state: str | None = None
        self.told_offer: str | None = None

    def send(self, frame: Frame) -> None:
        """Queue a frame; a socket that cannot keep up is closed rather than buffered forever."""
        if frame["type"] == "state":
            self.told_state = frame["state"]
        elif frame["type"] == "hello":
            told = frame.get("state")  # a telephony stream's hello has none
            self.told_state = told if isinstance(told, str) else None
        elif frame["type"] == "offer":
            self.told_offer = frame["offer_id"]
        elif frame["type"] == "call.connected" or (
            frame["type"] == "offer.revoked" and frame["offer_id"] == self.told_offer
        ):
            self.told_offer = None
        if len(self._outbox) >= OUTBOX_LIMIT:
            log.warning("closing connection %s: %d frames not yet sent", self.id, OUTBOX_LIMIT)
            self._outbox.clear()  # make room for the close: this socket is lost anyway
            self.close(CLOSE_OVERWHELMED)
            return
        self._queue(frame)

    def close(self, code: int) -> None:
        """Ask the writer to close the socket after the frames already queued."""
        self.close_code = code
        if len(self._outbox) < OUTBOX_LIMIT:
            self._queue(None)

    async def closed(self, *, within_s: float) -> None:
        """Wait for the writer to send what was queued before `close`, at most `within_s`."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, timeout=within_s)
            self._writer.cancel()

    def _queue(self, frame: Frame | None) -> None:
        self._outbox.append(frame)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Send the queued frames, then end; at the first None, close the socket and stay ended.

        A failed send also ends the writer for good (the socket is gone; its reader sees it).
        """
        while self._outbox:
            frame = self._outbox.pop(0)
            if frame is None:
                if self.websocket.application_state is WebSocketState.CONNECTED:
                    await self.websocket.close(self.close_code or 1000)
                return
            await self.websocket.send_text(orjson.dumps(frame).decode())
        self._writer = None  # idle: the next frame starts a writer again


@dataclass(frozen=True, slots=True)
class AgentConsole:
    """An agent console connected here, as a rebuilt hot state needs it."""

    agent_id: int
    city: str
    available: bool  # it was last told `available` (or held an offer or a call), not `break`
    offer_id: str | None  # the offer it was last shown, if not since revoked or accepted


class Gateway:
    """The sockets connected to this instance, and delivery of events to them."""

    def __init__(self, state: HotState, *, instance: str, shared: bool) -> None:
        self._state = state
        self._instance = instance
        self._shared = shared  # other instances may hold sockets: events must cross the bus
        self.agents: dict[int, Connection] = {}
        self.cti: dict[int, Connection] = {}
        self.admins: dict[int, Connection] = {}  # city admins' and coordinators' streams
        self.on_surges_changed: Callable[[], None] = lambda: None
        self.on_holds_changed: Callable[[], None] = lambda: None
        self._probes: dict[str, asyncio.Event] = {}
        self._stopping = False
        # One lock per agent while any console of it arrives or leaves (gone when unused).
        self._turns: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def stop(self) -> None:
        """Ask the event listener to end."""
        self._stopping = True

    def agent_consoles(self) -> list[AgentConsole]:
        """The agent consoles connected here, and what each was last told it is."""
        return [
            AgentConsole(
                agent_id,
                connection.city or "",
                available=connection.told_state != AgentState.BREAK,
                offer_id=connection.told_offer,
            )
            for agent_id, connection in self.agents.items()
        ]

    @contextlib.asynccontextmanager
    async def console_turn(self, agent_id: int) -> AsyncIterator[None]:
        """Let one console of the agent arrive or leave here at a time.

        A console reopened while the old one is still closing would otherwise interleave with
        it: the old one's departure could make the agent absent just after the new one made it
        present, and hand the new console the old one's revoked offer.
        """
        lock = self._turns.get(agent_id)
        if lock is None:
            lock = self._turns[agent_id] = asyncio.Lock()
        async with lock:
            yield

    async def attach_agent(self, agent_id: int, connection: Connection) -> None:
        """Make `connection` the agent's console; any older one, here or elsewhere, is closed."""
        previous = self.agents.get(agent_id)
        self.agents[agent_id] = connection
        if previous is not None:
            previous.close(CLOSE_REPLACED)
        if self._shared:
            await self._publish([close_agent(agent_id, CLOSE_REPLACED)])

    def detach_agent(self, agent_id: int, connection: Connection) -> bool:
        """Forget the console if it is still the agent's current one; say whether it was."""
        if self.agents.get(agent_id) is connection:
            del self.agents[agent_id]
            return True
        return False

    def close_withdrawn(self, verdict: Callable[[Principal], bool | None]) -> None:
        """Close the sockets here whose user may no longer connect (disabled, deleted).

        A token newer than the directory's reading (verdict None) is judged at the next one.
        """
        for connection in (*self.agents.values(), *self.cti.values(), *self.admins.values()):
            if connection.close_code is None and verdict(connection.principal) is False:
                connection.send(frames.error(code=Unauthorized.code, message=WITHDRAWN))
                connection.close(CLOSE_UNAUTHORIZED)

    async def announce(self, events: Sequence[Event]) -> None:
        """Deliver events to sockets here, and send the rest to the other instances.

        Never raises: the database already holds what happened, and a console or telephony
        stream that misses an event catches up when it reconnects. A failed publish is logged.
        """
        message = self.hand_over(events)
        if message is not None:
            await self.send_over(message)

    def hand_over(self, events: Sequence[Event]) -> dict[str, Any] | None:
        """Deliver events to sockets here; return the bus message that carries the rest to the
        other instances (None when nothing is left for them), for the caller to send with its
        next hot-state step, or with `send_over`."""
        remote = [event for event in events if not self._deliver(event)]
        if remote and self._shared:
            return {"from": self._instance, "events": remote}
        return None

    async def send_over(self, message: Mapping[str, Any]) -> None:
        """Publish a message `hand_over` returned; never raises (a failure is logged)."""
        try:
            await self._state.publish(message)
        except SurgeError as exc:
            log.warning("%d events not sent to other instances: %s", len(message["events"]), exc)

    async def listen(self) -> None:
        """Deliver events published by other instances (a task); resubscribe after a failure."""

        async def subscription() -> None:
            async for message in self._state.listen():
                if message.get("from") == self._instance:  # a probe it echoed
                    heard = self._probes.get(message.get("probe", ""))
                    if heard is not None:
                        heard.set()
                    continue
                for event in message.get("events", ()):
                    self._deliver(event)
            await asyncio.sleep(0.5)  # the state was closed: do not spin until cancelled

        await run_forever("event listener", subscription, stopping=lambda: self._stopping)

    async def wait_listening(self, *, within_s: float) -> bool:
        """Wait until this instance's listener hears the bus again, and the other instances
        listening know it does (`HotState.welcomed`); False if that did not happen in time.

        A probe is echoed until the listener hears it: the first may go out before a listener
        that lost its connection has subscribed again.
        """
        if not self._shared:
            return True
        token = secrets.token_hex(8)
        heard = self._probes[token] = asyncio.Event()
        try:
            async with asyncio.timeout(within_s):
                while not heard.is_set():
                    await self._state.echo({"from": self._instance, "probe": token})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(heard.wait(), 0.1)
                await self._state.welcomed()
            return True
        except TimeoutError:
            log.warning(
                "the event listener did not hear the bus, or was not welcomed by every instance"
                " listening, within %s s",
                within_s,
            )
            return False
        finally:
            del self._probes[token]

    async def join(self, *, within_s: float) -> None:
        """Wait, before this instance serves, until its listener hears the bus and the other
        instances know it listens (one alone sends no bus messages); never raises: a bus down
        now is logged, and the listener says hello again once it is back."""
        try:
            await self.wait_listening(within_s=within_s)
        except SurgeError as exc:
            log.warning("serving before the event bus answered: %s", exc)

    async def _publish(self, events: list[Event]) -> None:
        await self._state.publish({"from": self._instance, "events": events})

    def _deliver(self, event: Event) -> bool:
        """Deliver locally; True when nothing is left for other instances."""
        if event["to"] == "surges":
            self.on_surges_changed()
            return False
        if event["to"] == "holds":
            self.on_holds_changed()
            return False
        if event["to"] == "city_agents":
            for agent in self.agents.values():
                if agent.city == event["city"]:
                    agent.send(event["frame"])
            return False
        if event["to"] == "agent":
            connection = self.agents.get(event["agent_id"])
            if connection is None:
                return False
            if "close" in event:
                connection.close(event["close"])
            else:
                connection.send(event["frame"])
            return True
        streams = self.admins if event["to"] == "admins" else self.cti
        city = event["city"]
        for connection in streams.values():
            # A stream following every city (the coordinator's, a province-wide telephony)
            # gets every frame; one following a city, that city's.
            if connection.city is None or (city is not None and connection.city == city):
                connection.send(event["frame"])
        return False  # streams following this city may be connected elsewhere too
