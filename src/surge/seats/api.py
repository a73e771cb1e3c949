"""The websockets: /ws/agent for consoles (local and cloud seats), /ws/cti for telephony and
/ws/admin for the city admins' and the coordinator's consoles."""

from __future__ import annotations

import contextlib

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.types import Message

from surge import events, metrics, telemetry
from surge.auth.directory import WITHDRAWN
from surge.auth.models import Role
from surge.auth.service import Principal, read_token
from surge.db import database_errors, utcnow
from surge.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    SurgeError,
    TextFramesOnly,
    Unauthorized,
    describe,
)
from surge.origins import origin_allowed
from surge.runtime import Runtime
from surge.scripts import gaps
from surge.seats import frames
from surge.seats import service as seats_service
from surge.seats.frames import Frame
from surge.seats.gateway import CLOSE_OVERWHELMED, CLOSE_UNAUTHORIZED, Connection
from surge.seats.schemas import (
    AcceptMessage,
    AgentMessage,
    CompleteMessage,
    DeclineMessage,
    GapMessage,
    GapReport,
    ScriptsAckMessage,
    StatusMessage,
    TransferMessage,
    agent_message,
)
from surge.state.base import AgentState
from surge.supervision import service as supervision_service
from surge.surges.roster import ActiveSurges

router = APIRouter()

CLOSE_FORBIDDEN = 4403
CLOSE_SERVER_ERROR = 1011
# A console that closes with these said goodbye (offline); any other end (no close frame,
# 1005/1006, or pings unanswered for SURGE_HEARTBEAT_TIMEOUT_S) leaves the agent `lost`.
CLEAN_CLOSES = frozenset({1000, 1001})


async def _admit(websocket: WebSocket, token: str | None, *roles: Role) -> Principal | None:
    """Accept the socket, check its origin, token and role; on failure say why, then close."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    try:
        origin = websocket.headers.get("origin")
        if not origin_allowed(
            origin,
            scheme=websocket.url.scheme,
            host=websocket.headers.get("host"),
            allowed=runtime.settings.allowed_origins,
        ):
            raise Forbidden(f"pages from {origin} may not open this socket (SURGE_ALLOWED_ORIGINS)")
        if not token:
            raise Unauthorized("connect with ?token=<access token>")
        principal = read_token(settings=runtime.settings, token=token)
        if not await runtime.users.admits(principal):
            raise Unauthorized(WITHDRAWN)
        if principal.role not in roles:
            named = " or ".join(role.value for role in roles)
            raise Forbidden(f"this socket is for the {named} role")
    except SurgeError as exc:
        await websocket.send_text(
            orjson.dumps(frames.error(code=exc.code, message=exc.message)).decode()
        )
        if isinstance(exc, Unauthorized):
            code = CLOSE_UNAUTHORIZED
        elif isinstance(exc, Forbidden):
            code = CLOSE_FORBIDDEN
        else:  # the database did not answer the check of a fresh token
            code = CLOSE_SERVER_ERROR
        await websocket.close(code)
        return None
    return principal


def _text(message: Message) -> str:
    """The text of a received websocket message; a binary frame is refused, a close raised."""
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    if text is None:
        raise TextFramesOnly("send JSON messages in text frames, not binary ones")
    return text


def _parse(runtime: Runtime, text: str) -> AgentMessage:
    """Validate one incoming frame; every problem becomes a `SurgeError` with a clear message."""
    if len(text.encode()) > runtime.settings.ws_max_message_bytes:
        raise PayloadTooLarge(
            f"a message may be at most {runtime.settings.ws_max_message_bytes} bytes"
        )
    try:
        return agent_message.validate_json(text)
    except ValidationError as exc:
        raise BadRequest(describe(exc.errors()[0], whole="message")) from exc


async def _handle(runtime: Runtime, seat: seats_service.Seat, message: AgentMessage) -> None:
    """Do what one message asks; the call transitions announce their own frames, and wake the
    dispatcher when they free an agent or a call."""
    transitions = runtime.transitions
    if isinstance(message, StatusMessage):
        await transitions.set_status(seat=seat, target=AgentState(message.state))
    elif isinstance(message, ScriptsAckMessage):
        surges = await runtime.surges.current()  # before taking a connection
        holds = await runtime.holds.current()
        async with runtime.sessions() as session, session.begin():
            await seats_service.acknowledge_scripts(
                session=session, seat=seat, message=message, surges=surges
            )
        if holds.holds(message.city, seat.agent_id):  # this may lift it, on every instance
            await runtime.gateway.announce([events.SCRIPT_HOLDS_CHANGED])
    elif isinstance(message, AcceptMessage):
        await transitions.accept(seat=seat, offer_id=message.offer_id)
    elif isinstance(message, DeclineMessage):
        await transitions.decline(seat=seat, offer_id=message.offer_id)
    elif isinstance(message, TransferMessage):
        await transitions.transfer(seat=seat, message=message)
    elif isinstance(message, GapMessage):
        await _raise_gap(runtime, seat, message.call_id, message, completed=False)
    else:
        assert isinstance(message, CompleteMessage)
        await transitions.complete(seat=seat, message=message)
        if message.gap is not None:  # the ticket is closed: the gap comes with it
            await _raise_gap(runtime, seat, message.call_id, message.gap, completed=True)


async def _raise_gap(
    runtime: Runtime, seat: seats_service.Seat, call_id: int, gap: GapReport, *, completed: bool
) -> None:
    """Tell the host of the call in hand that its scripts do not answer a question."""
    async with runtime.sessions() as session:
        host = await gaps.call_in_hand(
            session=session, state=runtime.state, agent_id=seat.agent_id, call_id=call_id,
            completed=completed,
        )  # fmt: skip
    async with runtime.sessions() as session, session.begin():
        out = await gaps.raise_gap(
            session=session, host=host, call_id=call_id, agent_id=seat.agent_id,
            agent_city=seat.city, question=gap.question, note=gap.note,
        )  # fmt: skip
    await runtime.gateway.announce(out)


async def _leave(runtime: Runtime, seat: seats_service.Seat, *, said_goodbye: bool) -> None:
    """The console is gone: offline after a goodbye, else `lost`; a held offer is requeued."""
    # A failure here must not stop the socket's clean-up: an offer whose end the database
    # missed is recorded by the dispatcher later (the hot state has its call queued again).
    with contextlib.suppress(SurgeError):
        async with database_errors():
            await runtime.transitions.disconnect(seat=seat, said_goodbye=said_goodbye)


async def _arrive(
    runtime: Runtime, connection: Connection, agent_id: int, surges: ActiveSurges
) -> seats_service.Seat:
    """Load the seat, make it present and queue its greeting.

    A function of its own so that its session and frames end here, not with the socket.
    """
    async with runtime.sessions() as session:
        seat = await seats_service.load_seat(session=session, agent_id=agent_id)
        greeting = await seats_service.connect(
            session=session,
            state=runtime.state,
            seat=seat,
            instance=runtime.settings.instance_id,
            surges=surges,
        )
        # The notices of the day and of the surges it serves, after the greeting.
        greeting += await supervision_service.on_arrival(
            session=session,
            city=seat.city,
            surges=surges,
            since=supervision_service.day_start(utcnow(), runtime.settings.report_timezone),
        )
    for frame in greeting:
        connection.send(frame)
    return seat


@router.websocket("/ws/agent")
async def agent_socket(websocket: WebSocket, token: str | None = None) -> None:
    """An agent's console: offers in, accept/decline/complete out (see API.md)."""
    principal = await _admit(websocket, token, Role.AGENT)
    if principal is None or principal.agent_id is None:
        return
    runtime: Runtime = websocket.app.state.runtime
    connection = Connection(websocket, city=principal.city, principal=principal)
    sockets = metrics.WEBSOCKETS.labels("agent")
    sockets.inc()
    seat: seats_service.Seat | None = None
    said_goodbye = True  # unless the socket is found gone without its closing handshake
    try:
        # Read before taking a connection: never hold one while waiting for another.
        async with database_errors():
            surges = await runtime.surges.current()
        async with runtime.gateway.console_turn(principal.agent_id), database_errors():
            # The greeting goes first in the outbox: once attached, the console may be sent
            # an offer at any moment, and `hello` must come before it.
            seat = await _arrive(runtime, connection, principal.agent_id, surges)
            await runtime.gateway.attach_agent(seat.agent_id, connection)
        telemetry.agent_connected(agent_id=seat.agent_id, city=seat.city)
        while True:
            message = await websocket.receive()
            try:
                async with database_errors():
                    await _handle(runtime, seat, _parse(runtime, _text(message)))
            except SurgeError as exc:
                connection.send(frames.error(code=exc.code, message=exc.message))
                # A transition that failed part-way may have freed the agent or the call.
                runtime.dispatcher.poke()
    except (WebSocketDisconnect, RuntimeError) as exc:
        # The console went away (RuntimeError: it went while we were reading).
        said_goodbye = isinstance(exc, WebSocketDisconnect) and exc.code in CLEAN_CLOSES
    except SurgeError as exc:  # connecting failed: the seat is gone or the state is down
        connection.send(frames.error(code=exc.code, message=exc.message))
    finally:
        try:
            if seat is not None:
                async with runtime.gateway.console_turn(seat.agent_id):
                    if runtime.gateway.detach_agent(seat.agent_id, connection):
                        # A console this server closed on purpose (a withdrawn user, a
                        # logout) is offline.
                        closed_here = connection.close_code not in (None, CLOSE_OVERWHELMED)
                        await _leave(runtime, seat, said_goodbye=said_goodbye or closed_here)
        finally:
            connection.close(1000)
            await connection.closed(within_s=1)
            sockets.dec()


async def _read_only(websocket: WebSocket, connection: Connection) -> None:
    """Answer every message of a stream that only sends with an `error`, until it closes."""
    while True:
        try:
            _text(await websocket.receive())
        except TextFramesOnly as exc:
            connection.send(frames.error(code=exc.code, message=exc.message))
            continue
        refusal = "this stream only sends; use the HTTP API to act"
        connection.send(frames.error(code="read_only", message=refusal))


async def _read_only_stream(
    websocket: WebSocket,
    connection: Connection,
    streams: dict[int, Connection],
    hello: Frame,
    *,
    stream: str,
) -> None:
    """Keep a stream that only sends open: registered in `streams` until it goes, each
    message it sends refused; counted among the open websockets as `stream`."""
    sockets = metrics.WEBSOCKETS.labels(stream)
    sockets.inc()
    streams[connection.id] = connection
    connection.send(hello)
    try:
        await _read_only(websocket, connection)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        streams.pop(connection.id, None)
        connection.close(1000)
        await connection.closed(within_s=1)
        sockets.dec()


@router.websocket("/ws/cti")
async def cti_socket(websocket: WebSocket, token: str | None = None) -> None:
    """The telephony stream: every lifecycle change of the token's city's calls (or all)."""
    principal = await _admit(websocket, token, Role.CTI)
    if principal is None:
        return
    runtime: Runtime = websocket.app.state.runtime
    connection = Connection(websocket, city=principal.city, principal=principal)
    hello = frames.cti_hello(city=principal.city)
    await _read_only_stream(websocket, connection, runtime.gateway.cti, hello, stream="cti")


@router.websocket("/ws/admin")
async def admin_socket(websocket: WebSocket, token: str | None = None) -> None:
    """A city admin's stream (its city's events) or the coordinator's (every city's, and the
    province-wide alerts: `hotspot`)."""
    principal = await _admit(websocket, token, Role.CITY_ADMIN, Role.COORDINATOR)
    if principal is None:
        return
    runtime: Runtime = websocket.app.state.runtime
    city = principal.city if principal.role is Role.CITY_ADMIN else None
    connection = Connection(websocket, city=city, principal=principal)
    hello = frames.admin_hello(role=principal.role.value, city=city)
    await _read_only_stream(websocket, connection, runtime.gateway.admins, hello, stream="admin")
