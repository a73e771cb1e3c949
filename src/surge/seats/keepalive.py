"""Websocket keepalive pings in sweeps: one timer for all of a server's sockets, not two each.

uvicorn's sans-I/O websocket protocol gives each socket a ping timer and a pong timer of its own,
so 1,000 idle agent consoles pinged every 5 s wake the process some 400 times a second, each
wake-up for one small frame. The wake-ups, not the frames, are the cost: the same 200 pings a
second measured 3.8 % of a core when the sockets were opened over a few seconds (every ping on
its own), 1.3 % when they had been opened at once (their pings due together), and Surge's idle
service spent 5 % of a core on them, more than everything else it does while idle.

`SweptKeepalive` keeps uvicorn's protocol and its promise: a socket is pinged at most
`ws_ping_interval` after its previous ping, and failed (1011) when a ping is not answered within
`ws_ping_timeout`. What changes is who keeps the time: a `Sweeper` per server wakes every
`tick` (a tenth of the shorter of the two), and in that one wake-up pings every socket whose ping
is due and fails every socket whose pong is overdue; their pongs come back together too. Each
socket aims one tick early, since the sweep that serves it may come up to a tick late, so the
promise holds: a silent console is lost within `SURGE_HEARTBEAT_TIMEOUT_S`.

The sweeper is a timing wheel: one list of sockets per tick, where a
socket's entry is good while it names that tick (a pong moves the socket to a later tick and
leaves the old entry stale).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState
    from websockets.frames import Frame

    from surge.settings import Settings

log = logging.getLogger(__name__)

TICKS_PER_WAIT = 10  # a sweep every tenth of the shorter of the ping interval and the pong wait


def websocket_options(settings: Settings) -> dict[str, Any]:
    """The `uvicorn.Config` arguments for the service's websockets, shared by `surge serve` and
    the tests' live server so that both run the same protocol."""
    return {
        "ws": f"{__name__}:{SweptKeepalive.__name__}",
        "ws_max_size": 4 * settings.ws_max_message_bytes,  # larger frames get a clear error first
        "ws_ping_interval": settings.ws_ping_interval_s,
        "ws_ping_timeout": settings.ws_ping_interval_s,
        # Compression would keep a zlib state per socket, each way: more than the socket
        # itself for the small JSON frames of a console (loadtests/sockets.py measures it).
        "ws_per_message_deflate": False,
    }


class Swept(Protocol):
    """What the sweeper serves: a socket that knows the tick it waits for."""

    keepalive_slot: int | None

    def keepalive_due(self) -> None:
        """Its time has come: ping it, or fail it if its ping went unanswered."""


class Sweeper:
    """The keepalive clock of one server's sockets."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self._loop = loop
        self.tick = tick
        self._slots: dict[int, list[Swept]] = {}
        self._next_slot = math.inf  # the earliest slot with sockets in it, while the timer runs
        self._timer: asyncio.TimerHandle | None = None
        self._sweeping = False  # no timer from `at` meanwhile: the sweep sets one after

    def at(self, socket: Swept, when: float) -> None:
        """Serve `socket` (`keepalive_due`) in the first sweep at or after loop time `when`."""
        slot = math.ceil(when / self.tick)
        socket.keepalive_slot = slot
        self._slots.setdefault(slot, []).append(socket)
        if not self._sweeping and slot < self._next_slot:
            self._start(slot)

    def _start(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._next_slot = slot
        self._timer = self._loop.call_at(slot * self.tick, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        self._next_slot = math.inf
        self._sweeping = True
        now = round(self._loop.time() / self.tick)  # the loop's clock may fire a timer early
        for slot in sorted(s for s in self._slots if s <= now):
            for socket in self._slots.pop(slot):
                if socket.keepalive_slot == slot:  # not moved since, nor stopped
                    socket.keepalive_slot = None
                    try:
                        socket.keepalive_due()
                    except Exception:  # one socket's failure must not stop the others' pings
                        log.exception("websocket.keepalive_failed")
        self._sweeping = False
        if self._slots:
            self._start(min(self._slots))


# One sweeper per uvicorn server (its `ServerState`, which every connection of it is given).
_sweepers: weakref.WeakKeyDictionary[ServerState, Sweeper] = weakref.WeakKeyDictionary()


class SweptKeepalive(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websocket protocol, its keepalive served by its server's `Sweeper`."""

    keepalive_slot: int | None = None  # the sweeper's tick that will serve this socket

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        clock = _sweepers.get(server_state)
        if clock is None:
            shortest = min(config.ws_ping_interval or math.inf, config.ws_ping_timeout or math.inf)
            clock = _sweepers[server_state] = Sweeper(self.loop, shortest / TICKS_PER_WAIT)
        self._clock = clock

    def start_keepalive(self) -> None:
        """After the handshake: the first ping one interval from now."""
        if self.ping_interval:
            self._ping_in(self.ping_interval)

    def stop_keepalive(self) -> None:
        """On close or shutdown: the sweeper passes over this socket from now on."""
        self.keepalive_slot = None
        self.pending_ping_payload = None

    def keepalive_due(self) -> None:
        """The sweeper's call: fail the socket if its ping went unanswered, else ping it."""
        if self.pending_ping_payload is not None:
            self.keepalive_timeout()
        else:
            self.send_keepalive_ping()

    def send_keepalive_ping(self) -> None:
        """Ping with a random payload, and look again when the pong is due."""
        if self.close_sent or self.transport.is_closing():
            return
        self.pending_ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is None:  # pings without a deadline: the next one in an interval
            self.pending_ping_payload = None
            self._ping_in(self.ping_interval or 0.0)
        else:
            self._clock.at(self, self.ping_sent_at + self.ping_timeout - self._clock.tick)

    def handle_pong(self, event: Frame) -> None:
        """The pong of the ping in flight (others are ignored): the next ping an interval after
        this one was sent."""
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        self._ping_in(self.ping_sent_at + (self.ping_interval or 0.0) - self.loop.time())

    def _ping_in(self, delay: float) -> None:
        """Ping in `delay` seconds at the latest (a tick early at the earliest)."""
        self._clock.at(self, self.loop.time() + delay - self._clock.tick)
