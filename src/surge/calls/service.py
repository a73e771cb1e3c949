"""Call lifecycle in the database: ingest, and every status change guarded by the state machine
and recorded.

A change is a compare-and-set on the call's status (`UPDATE ... WHERE status IN (...)`), so when
two things race (an abandon and an accept, two instances) exactly one wins and the loser learns it.
Every applied change writes a `call_event` row with it: on PostgreSQL in the same statement, on
SQLite in the same transaction. The caller owns the transaction: for a status change that is its
transition in `calls/transitions.py`, which also makes the hot-state change, announces the
frames after the commit and compensates.

The hot changes (offer, accept, complete, requeue) are fixed SQL on PostgreSQL, run on the
driver's connection by `db.fetch_row`: one round trip each, and no BEGIN or COMMIT when the
caller has not begun a transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Insert, ScalarSelect, Select, Update, bindparam, func, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from surge import events
from surge.calls import callers
from surge.calls.lifecycle import (
    OPEN_STATUSES,
    PENDING_CALLBACK_STATUSES,
    CallStatus,
    Disposition,
    check_move,
    sources_of,
)
from surge.calls.models import Call, CallEvent
from surge.calls.schemas import CallCreate, FeedbackCreate, FeedbackRead
from surge.db import fetch_row, fetch_rows, utcnow
from surge.errors import (
    CallNotConnected,
    CallNotOpen,
    FeedbackRecorded,
    IdempotencyConflict,
    NotFound,
)
from surge.scripts.models import ScriptVersion
from surge.seats import frames
from surge.state.base import HeldOffer, QueuedCall

# Status changes go through Core tables, not the ORM classes: SQLAlchemy's ORM DML path costs
# far more CPU per statement, and a list of parameters runs as one executemany.
_CALL_TABLE = Call.metadata.tables["call"]
_EVENT_TABLE = CallEvent.metadata.tables["call_event"]


class CallRow(NamedTuple):
    """A call's columns as read, without the ORM: what ingest answers with (far cheaper to build
    than a `Call`, which the hottest route would only read)."""

    id: int
    external_id: str | None
    city_code: str
    caller: str
    channel: str
    priority: int
    status: str
    agent_id: int | None
    offer_id: str | None
    received_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    disposition: str | None
    category_code: str | None
    summary: str | None
    script_version: int | None
    script_key: str | None
    satisfied: bool | None
    feedback_score: int | None
    feedback_at: datetime | None
    wrapped_up_at: datetime | None
    transfers: int
    transfer_note: str | None
    callback_requested_at: datetime | None
    callback_attempts: int
    callback_due_at: datetime | None
    script_version_at_accept: int | None
    script_version_at_complete: int | None
    caller_key: int | None


def as_queued(call: Call | CallRow) -> QueuedCall:
    """The hot-state view of a waiting call: a transferred one with its note (which puts it
    ahead of the fresh calls), a callback marked; each still at its original arrival."""
    return QueuedCall(
        call_id=call.id,
        city=call.city_code,
        priority=call.priority,
        enqueued_at=call.received_at.timestamp(),
        caller=call.caller,
        channel=call.channel,
        note=call.transfer_note if call.transfers > 0 else None,
        callback=call.callback_requested_at is not None,
    )


# Ingest on PostgreSQL: the call and its arrival event in one statement, sent as fixed SQL on the
# driver's connection (asyncpg prepares it once per connection). ON CONFLICT DO NOTHING makes a
# duplicate key a no-op (no row comes back) instead of an error. The same statement says whether
# the caller has an older callback in the city not yet dialled (on the callbacks' own index; the
# new call is not in the statement's snapshot), so that most calls need no second look.
_CALLBACK_PENDING = "callback_pending"
_INGEST_POSTGRES = f"""
WITH c AS (
    INSERT INTO call (external_id, city_code, caller, channel, priority, status, received_at,
                      caller_key)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $9)
    ON CONFLICT DO NOTHING
    RETURNING *
), e AS (
    INSERT INTO call_event (call_id, at, to_status, instance)
    SELECT id, received_at, status, $8 FROM c
)
SELECT c.*, EXISTS (
    SELECT 1 FROM call p
    WHERE p.city_code = $2 AND p.caller = $3 AND p.callback_requested_at IS NOT NULL
      AND p.status IN ({", ".join(f"'{s.value}'" for s in sorted(PENDING_CALLBACK_STATUSES))})
) AS {_CALLBACK_PENDING} FROM c
"""
_INGEST_SQLITE = (
    sqlite.insert(_CALL_TABLE)
    .values(
        {
            name: bindparam(name)
            for name in (
                "external_id",
                "city_code",
                "caller",
                "channel",
                "priority",
                "status",
                "received_at",
                "caller_key",
            )
        }
    )
    .on_conflict_do_nothing()
    .returning(*_CALL_TABLE.c)
)
_ARRIVAL = insert(_EVENT_TABLE).values(
    call_id=bindparam("call_id"),
    at=bindparam("at"),
    to_status=CallStatus.QUEUED.value,
    instance=bindparam("instance"),
)


class Ingested(NamedTuple):
    """What `ingest` did: the call, whether it is new (not a repeat of the first), and whether
    the caller may have an older callback in the city not yet dialled (False: certainly none;
    `pending_callbacks` would find nothing)."""

    call: CallRow
    created: bool
    callback_pending: bool


async def ingest(
    *, connection: AsyncConnection, payload: CallCreate, instance: str, secret: str, timezone: str
) -> Ingested:
    """Record an arriving call; the same city and `external_id` again returns the first (not
    created).

    The key names one request: sent again with another caller, channel or priority it is an
    `IdempotencyConflict`, and the first call is not shown.

    On a connection rather than a session: the hottest write has no use for the ORM's unit of
    work. On PostgreSQL the call and its event are one statement on the driver's connection: in
    the caller's transaction once it has sent something, else committed by itself (one round
    trip, no BEGIN or COMMIT; there is nothing else to keep with it). On SQLite, two statements.
    `secret` and `timezone` make the caller's key for the day (`calls.callers`).
    """
    now = utcnow()
    key = callers.caller_key(
        secret=secret, timezone=timezone, caller=payload.caller, received_at=now
    )
    channel = payload.channel.value
    queued = CallStatus.QUEUED.value
    row: Mapping[Any, Any] | None
    if connection.dialect.name == "postgresql":
        row = await fetch_row(
            connection,
            _INGEST_POSTGRES,
            payload.external_id,
            payload.city,
            payload.caller,
            channel,
            payload.priority,
            queued,
            now,
            instance,
            key,
        )
    else:
        inserted = await connection.execute(
            _INGEST_SQLITE,
            {
                "external_id": payload.external_id,
                "city_code": payload.city,
                "caller": payload.caller,
                "channel": channel,
                "priority": payload.priority,
                "status": queued,
                "received_at": now,
                "caller_key": key,
            },
        )
        row = inserted.mappings().one_or_none()
        if row is not None:
            await connection.execute(
                _ARRIVAL, {"call_id": row["id"], "at": now, "instance": instance}
            )
    if row is not None:
        fields = dict(row)
        # On SQLite the question is left to `pending_callbacks`.
        pending = fields.pop(_CALLBACK_PENDING, True)
        return Ingested(CallRow(**fields), True, pending)
    # The key is a city's own: another city's call under the same key is not this one.
    existing = await connection.execute(
        select(_CALL_TABLE).where(
            _CALL_TABLE.c.city_code == payload.city,
            _CALL_TABLE.c.external_id == payload.external_id,
        )
    )
    first = CallRow(**existing.mappings().one())
    if (first.caller, first.channel, first.priority) != (payload.caller, channel, payload.priority):
        raise IdempotencyConflict(
            f"external_id {payload.external_id!r} of city {payload.city} names another call"
            " (its caller, channel or priority differ); send a new external_id"
        )
    return Ingested(first, False, False)


async def get(*, session: AsyncSession, call_id: int) -> Call:
    """Return the call or raise `NotFound`."""
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound(f"no call with id {call_id}")
    return call


async def history(*, session: AsyncSession, call_id: int) -> list[CallEvent]:
    """The call's status changes, oldest first."""
    rows = await session.execute(
        select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.id)
    )
    return list(rows.scalars())


class Moved(NamedTuple):
    """A status change that took."""

    before: CallStatus  # the status the call left
    city: str  # the call's city


class _Shape(NamedTuple):
    """What a status change's statements depend on, besides the values bound to them."""

    postgres: bool
    target: CallStatus
    sources: frozenset[CallStatus]
    match: tuple[str, ...]  # columns that must equal the bound values
    values: tuple[str, ...]  # columns set besides the status
    pinned: tuple[str, ...] = ()  # columns set to the call's city's current script version


_EVENT_COLUMNS = ("agent_id", "offer_id", "reason", "note", "instance")


class _PostgresMove(NamedTuple):
    """A status change on PostgreSQL: one statement, and the parameters of its `$n` in order."""

    sql: str
    names: tuple[str, ...]


class _SqliteMove(NamedTuple):
    """A status change's statements on SQLite: read the status, update, insert the event."""

    read: Select[Any] | None  # the current status, when several statuses may move
    update: Update
    event: Insert


_CURRENT_SCRIPT_SQL = (
    'SELECT coalesce(max(version), 0) FROM script_version WHERE city_code = "call".city_code'
)


def _current_script() -> ScalarSelect[int]:
    """The current script version of the updated call's city (0 before any publish)."""
    versions = ScriptVersion.__table__
    return (
        select(func.coalesce(func.max(versions.c.version), 0))
        .where(versions.c.city_code == _CALL_TABLE.c.city_code)
        .scalar_subquery()
    )


@functools.cache
def _move_statements(shape: _Shape) -> _PostgresMove | _SqliteMove:
    """Build a change's statements once per shape (SQLAlchemy caches their compiled form)."""
    table = _CALL_TABLE
    if shape.postgres:
        names: list[str] = []

        def arg(name: str) -> str:
            names.append(name)
            return f"${len(names)}"

        # Lock the row, change it and record the change in one statement; RETURNING gives the
        # status it left (the row read under the lock, re-checked if another change won).
        call_id = arg("call_id")
        match = "".join(f" AND {k} IS NOT DISTINCT FROM {arg(f'm_{k}')}" for k in shape.match)
        sources = ", ".join(f"'{s.value}'" for s in sorted(shape.sources))
        sets = "".join(f", {k} = {arg(f'v_{k}')}" for k in shape.values) + "".join(
            f", {k} = ({_CURRENT_SCRIPT_SQL})" for k in shape.pinned
        )
        at = arg("at")
        columns = ", ".join(_EVENT_COLUMNS)
        bound = ", ".join(arg(f"e_{k}") for k in _EVENT_COLUMNS)
        sql = f"""
WITH old AS (
    SELECT id, status FROM "call"
    WHERE id = {call_id}{match} AND status IN ({sources})
    FOR UPDATE
), moved AS (
    UPDATE "call" SET status = '{shape.target.value}'{sets}
    FROM old WHERE "call".id = old.id
    RETURNING "call".id, "call".city_code, old.status
), recorded AS (
    INSERT INTO call_event (call_id, at, from_status, to_status, {columns})
    SELECT id, {at}, status, '{shape.target.value}', {bound} FROM moved
)
SELECT status, city_code FROM moved
"""
        return _PostgresMove(sql, tuple(names))
    guard = [
        table.c.id == bindparam("call_id"),
        *(table.c[k].is_not_distinct_from(bindparam(f"m_{k}")) for k in shape.match),
    ]
    read = (
        select(table.c.status).where(*guard).with_for_update() if len(shape.sources) > 1 else None
    )
    update_ = (
        update(table)
        .where(*guard, table.c.status == bindparam("before"))
        .values(
            status=shape.target.value,
            **{k: bindparam(f"v_{k}") for k in shape.values},
            **{k: _current_script() for k in shape.pinned},
        )
        .returning(table.c.city_code)
    )
    event = insert(_EVENT_TABLE).values(
        call_id=bindparam("call_id"),
        at=bindparam("at"),
        from_status=bindparam("before"),
        to_status=shape.target.value,
        **{k: bindparam(f"e_{k}") for k in _EVENT_COLUMNS},
    )
    return _SqliteMove(read, update_, event)


async def move(
    *,
    connection: AsyncConnection,
    call_id: int,
    target: CallStatus,
    at: datetime,
    instance: str,
    reason: str | None = None,
    note: str | None = None,
    agent_id: int | None = None,
    offer_id: str | None = None,
    only_from: frozenset[CallStatus] | None = None,
    match: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    pinned: tuple[str, ...] = (),
) -> Moved | None:
    """Move the call to `target` if its status allows it (and `match` columns equal); record it.

    The `pinned` columns are set, in the same statement, to the script version current for the
    call's city then (the server's version, whatever the agent's console says).

    Returns the status it moved from and the call's city, or None when the guard failed
    (someone else got there first).
    One statement on PostgreSQL (committed by itself unless the caller began a transaction);
    on SQLite an UPDATE and an INSERT (and first a read of the status when several statuses may
    move to `target`), in the caller's transaction.
    """
    sources = only_from or sources_of(target)
    for source in sources:
        check_move(source, target)
    match = match or {}
    values = values or {}
    postgres = connection.dialect.name == "postgresql"
    statements = _move_statements(
        _Shape(postgres, target, sources, tuple(match), tuple(values), pinned)
    )
    params: dict[str, Any] = {
        "call_id": call_id,
        "at": at,
        **{f"m_{k}": v for k, v in match.items()},
        **{f"v_{k}": v for k, v in values.items()},
        "e_agent_id": agent_id,
        "e_offer_id": offer_id,
        "e_reason": reason,
        "e_note": note,
        "e_instance": instance,
    }
    if isinstance(statements, _PostgresMove):
        args = (params[name] for name in statements.names)
        row = await fetch_row(connection, statements.sql, *args)
        return None if row is None else Moved(CallStatus(row["status"]), row["city_code"])
    while True:
        if statements.read is None:
            (source,) = sources
        else:
            # Read the current status so the event names the status it left.
            status = (await connection.execute(statements.read, params)).scalar_one_or_none()
            if status is None or status not in sources:
                return None
            source = CallStatus(status)
        params["before"] = source.value
        city = (await connection.execute(statements.update, params)).scalar_one_or_none()
        if city is not None:
            break
        if statements.read is None:
            return None
        # Another change committed between the read and the update (SQLite takes no row lock
        # on a read): read again, as PostgreSQL re-checks a row it waited for.
    await connection.execute(statements.event, params)
    return Moved(source, city)


_OFFER = (
    update(_CALL_TABLE)
    .where(Call.id == bindparam("call"), Call.status == CallStatus.QUEUED.value)
    .values(status=CallStatus.OFFERED.value, agent_id=bindparam("agent"), offer_id=bindparam("oid"))
)
_HELD = select(Call.id, Call.offer_id, Call.agent_id, Call.status).where(
    Call.id.in_(bindparam("calls", expanding=True))
)
_OFFERED = insert(_EVENT_TABLE).values(
    call_id=bindparam("call"),
    at=bindparam("at"),
    from_status=CallStatus.QUEUED.value,
    to_status=CallStatus.OFFERED.value,
    agent_id=bindparam("agent"),
    offer_id=bindparam("oid"),
    instance=bindparam("instance"),
)
# PostgreSQL: a whole cycle's offers in one statement. Every part of it reads the table as it
# was before the statement, so the calls not offered now come back as they are.
_OFFERS_POSTGRES = f"""
WITH offer AS (
    SELECT * FROM unnest(CAST($1 AS BIGINT[]), CAST($2 AS BIGINT[]), CAST($3 AS VARCHAR[]))
        AS o (call_id, agent_id, offer_id)
), made AS (
    UPDATE "call" SET status = '{CallStatus.OFFERED.value}', agent_id = offer.agent_id,
        offer_id = offer.offer_id
    FROM offer WHERE "call".id = offer.call_id AND "call".status = '{CallStatus.QUEUED.value}'
    RETURNING "call".id, offer.agent_id, offer.offer_id
), recorded AS (
    INSERT INTO call_event (call_id, at, from_status, to_status, agent_id, offer_id, instance)
    SELECT id, $4, '{CallStatus.QUEUED.value}', '{CallStatus.OFFERED.value}', agent_id, offer_id,
        $5
    FROM made
)
SELECT c.id, COALESCE(made.offer_id, c.offer_id) AS offer_id,
    COALESCE(made.agent_id, c.agent_id) AS agent_id,
    CASE WHEN made.id IS NULL THEN c.status ELSE '{CallStatus.OFFERED.value}' END AS status
FROM "call" AS c LEFT JOIN made ON made.id = c.id
WHERE c.id = ANY(CAST($1 AS BIGINT[]))
"""


_OFFERED_ONLY = frozenset({CallStatus.OFFERED})


class LostOffer(NamedTuple):
    """An offer the database holds but the hot state no longer does: its end was never recorded
    (the hot state was lost, or the database failed just after the hot state ended it)."""

    offer_id: str
    call: QueuedCall
    agent_id: int | None


class Behind(NamedTuple):
    """An offer the database was not ready for: it holds the call open, but not as queued."""

    offer: HeldOffer
    recorded_offer_id: str | None  # the offer the database still holds the call under
    recorded_agent_id: int | None


async def record_offers(
    *, connection: AsyncConnection, offers: Sequence[HeldOffer], at: datetime, instance: str
) -> tuple[list[HeldOffer], list[Behind]]:
    """Record that queued calls are now offered to agents.

    Returns the offers that took, and those whose call is still open but not queued in the
    database: the hot state is a step ahead (a decline or requeue not yet committed), or the
    end of an earlier offer was never recorded. Offers of calls that closed meanwhile (the
    caller hung up) are in neither list.

    One batch for a whole dispatch cycle: on PostgreSQL one statement; on SQLite a guarded
    UPDATE per call (sent together), one SELECT to see which calls were still queued, one
    INSERT for their history rows.
    """
    check_move(CallStatus.QUEUED, CallStatus.OFFERED)
    if not offers:
        return [], []
    calls = [o.call.call_id for o in offers]
    postgres = connection.dialect.name == "postgresql"
    held: Sequence[Mapping[Any, Any]]
    if postgres:
        held = await fetch_rows(
            connection,
            _OFFERS_POSTGRES,
            calls,
            [o.agent_id for o in offers],
            [o.offer_id for o in offers],
            at,
            instance,
        )
    else:
        await connection.execute(
            _OFFER,
            [{"call": o.call.call_id, "agent": o.agent_id, "oid": o.offer_id} for o in offers],
        )
        held = (await connection.execute(_HELD, {"calls": calls})).mappings().all()
    current = {row["id"]: row for row in held}
    made = [o for o in offers if current[o.call.call_id]["offer_id"] == o.offer_id]
    open_ = {status.value for status in OPEN_STATUSES}
    behind = [
        Behind(o, row["offer_id"], row["agent_id"])
        for o in offers
        if (row := current[o.call.call_id])["offer_id"] != o.offer_id and row["status"] in open_
    ]
    if made and not postgres:
        await connection.execute(
            _OFFERED,
            [
                {
                    "call": o.call.call_id,
                    "at": at,
                    "agent": o.agent_id,
                    "oid": o.offer_id,
                    "instance": instance,
                }
                for o in made
            ],
        )
    return made, behind


async def record_requeue(
    *,
    connection: AsyncConnection,
    offer: HeldOffer | LostOffer,
    reason: frames.RequeueReason,
    at: datetime,
    instance: str,
) -> list[events.Event]:
    """Record that an offer ended without an answer and the call is queued again; return its
    `call.requeued`, or nothing when the offer's end was recorded meanwhile (compare-and-set on
    the offer)."""
    moved = await move(
        connection=connection,
        call_id=offer.call.call_id,
        target=CallStatus.QUEUED,
        at=at,
        instance=instance,
        reason=reason,
        agent_id=offer.agent_id,
        offer_id=offer.offer_id,
        only_from=_OFFERED_ONLY,
        match={"offer_id": offer.offer_id},
        values={"agent_id": None, "offer_id": None},
    )
    if moved is None:
        return []
    return [
        events.to_cti(
            offer.call.city,
            frames.cti_call_requeued(call_id=offer.call.call_id, at=at.timestamp(), reason=reason),
        )
    ]


async def record_connect(
    *, connection: AsyncConnection, offer: HeldOffer, at: datetime, instance: str
) -> bool:
    """Record that the agent accepted the offer and the call is connected."""
    moved = await move(
        connection=connection,
        call_id=offer.call.call_id,
        target=CallStatus.CONNECTED,
        at=at,
        instance=instance,
        agent_id=offer.agent_id,
        offer_id=offer.offer_id,
        only_from=_OFFERED_ONLY,
        match={"offer_id": offer.offer_id},
        # A transferred call was answered when its first agent took it: that time stays.
        values={"offer_id": None}
        if offer.call.transferred
        else {"connected_at": at, "offer_id": None},
        pinned=("script_version_at_accept",),
    )
    return moved is not None


async def record_dial(
    *, connection: AsyncConnection, offer: HeldOffer, at: datetime, instance: str
) -> bool:
    """Record that the agent accepted a callback's offer and its caller is being dialled."""
    moved = await move(
        connection=connection,
        call_id=offer.call.call_id,
        target=CallStatus.DIALING,
        at=at,
        instance=instance,
        agent_id=offer.agent_id,
        offer_id=offer.offer_id,
        match={"offer_id": offer.offer_id},
        values={"offer_id": None},
        pinned=("script_version_at_accept",),
    )
    return moved is not None


_HANDLED = select(_CALL_TABLE).where(_CALL_TABLE.c.id == bindparam("call_id"))


async def handled_call(*, connection: AsyncConnection, call_id: int, agent_id: int) -> CallRow:
    """The call the agent has connected; else why not (`NotFound`, `CallNotOpen`)."""
    row = (await connection.execute(_HANDLED, {"call_id": call_id})).one_or_none()
    if row is None or row.agent_id != agent_id:
        raise NotFound(f"you are not handling a call with id {call_id}")
    if row.status != CallStatus.CONNECTED:
        raise CallNotOpen(f"call {call_id} is {row.status}, not connected")
    return CallRow(*row)


async def handled_city(*, connection: AsyncConnection, call_id: int, agent_id: int) -> str:
    """The city of the call the agent has connected; else why not (`NotFound`, `CallNotOpen`)."""
    call = await handled_call(connection=connection, call_id=call_id, agent_id=agent_id)
    return call.city_code


async def record_transfer(
    *,
    connection: AsyncConnection,
    call: CallRow,
    to_city: str,
    note: str,
    at: datetime,
    instance: str,
) -> QueuedCall:
    """Send the connected call to `to_city`'s queue, ahead of the fresh calls, with the agent's
    note; return it as it now waits. The history names the agent and the note; the call keeps
    its original arrival. Compare-and-set on its agent and transfer count."""
    moved = await move(
        connection=connection,
        call_id=call.id,
        target=CallStatus.QUEUED,
        at=at,
        instance=instance,
        reason="transferred",
        note=note,
        agent_id=call.agent_id,
        only_from=frozenset({CallStatus.CONNECTED}),
        match={"agent_id": call.agent_id, "transfers": call.transfers},
        values={
            "city_code": to_city,
            "agent_id": None,
            "transfers": call.transfers + 1,
            "transfer_note": note,
        },
    )
    if moved is None:
        raise CallNotOpen(f"call {call.id} was closed meanwhile")
    return as_queued(call._replace(city_code=to_city, transfers=call.transfers + 1,
                                   transfer_note=note))  # fmt: skip


async def record_completion(
    *,
    connection: AsyncConnection,
    call_id: int,
    agent_id: int,
    disposition: Disposition,
    category_code: str | None,
    summary: str | None,
    script_version: int | None,
    script_key: str | None,
    at: datetime,
    instance: str,
) -> str:
    """Close the ticket of a call the agent handles and return its city; explain any refusal."""
    moved = await move(
        connection=connection,
        call_id=call_id,
        target=CallStatus.COMPLETED,
        at=at,
        instance=instance,
        agent_id=agent_id,
        match={"agent_id": agent_id},
        values={
            "ended_at": at,
            "disposition": disposition.value,
            "category_code": category_code,
            "summary": summary,
            "script_version": script_version,
            "script_key": script_key,
        },
        pinned=("script_version_at_complete",),
    )
    if moved is None:
        await handled_city(connection=connection, call_id=call_id, agent_id=agent_id)
        # Connected to the agent only since the move was refused (its accept committed between).
        raise CallNotOpen(f"call {call_id} was not connected yet; complete it again")
    return moved.city


_WRAPPED_UP = (
    update(_CALL_TABLE)
    .where(
        _CALL_TABLE.c.id == bindparam("wrapped_call"),
        _CALL_TABLE.c.agent_id == bindparam("wrapped_by"),
        _CALL_TABLE.c.wrapped_up_at.is_(None),
    )
    .values(wrapped_up_at=bindparam("wrapped_at"))
)


async def record_wrap_ups(
    *, connection: AsyncConnection, ended: Sequence[tuple[int, int, datetime]]
) -> None:
    """Record the end of each (call, its agent, when) wrap-up; one already recorded stays."""
    if ended:
        await connection.execute(
            _WRAPPED_UP,
            [{"wrapped_call": c, "wrapped_by": a, "wrapped_at": at} for c, a, at in ended],
        )


async def record_feedback(
    *, session: AsyncSession, call: Call, answer: FeedbackCreate
) -> FeedbackRead:
    """Record the satisfaction follow-up of a connected call, once."""
    if call.connected_at is None:
        raise CallNotConnected(
            f"call {call.id} was never connected ({call.status}); there is nothing to rate"
        )
    # Compare-and-set: of two follow-ups racing, exactly one is recorded.
    recorded = await session.execute(
        update(_CALL_TABLE)
        .where(_CALL_TABLE.c.id == call.id, _CALL_TABLE.c.feedback_at.is_(None))
        .values(satisfied=answer.is_satisfied, feedback_score=answer.score, feedback_at=utcnow())
        .returning(_CALL_TABLE.c.feedback_at)
    )
    at = recorded.scalar_one_or_none()
    if at is None:
        raise FeedbackRecorded(f"call {call.id} already has its follow-up answer")
    return FeedbackRead(call_id=call.id, satisfied=answer.is_satisfied, score=answer.score, at=at)


async def open_calls(*, session: AsyncSession) -> Sequence[Call]:
    """Every queued or offered call, oldest first (to rebuild the hot state)."""
    rows = await session.execute(
        select(Call)
        .where(Call.status.in_([status.value for status in OPEN_STATUSES]))
        .order_by(Call.id)
    )
    return rows.scalars().all()


async def pending_callbacks(
    *, connection: AsyncConnection, city: str, caller: str, before: int
) -> list[QueuedCall]:
    """The callbacks of `caller` in `city`, older than call `before`, not yet dialled."""
    rows = await connection.execute(
        select(_CALL_TABLE).where(
            _CALL_TABLE.c.city_code == city,
            _CALL_TABLE.c.caller == caller,
            _CALL_TABLE.c.callback_requested_at.is_not(None),
            _CALL_TABLE.c.status.in_([s.value for s in PENDING_CALLBACK_STATUSES]),
            _CALL_TABLE.c.id < before,
        )
    )
    return [as_queued(CallRow(**row)) for row in rows.mappings()]


async def due_redials(
    *, connection: AsyncConnection, now: datetime, limit: int
) -> list[QueuedCall]:
    """The callbacks waiting to be dialled again whose time has come, oldest first."""
    rows = await connection.execute(
        select(_CALL_TABLE)
        .where(
            _CALL_TABLE.c.status == CallStatus.REDIAL.value,
            _CALL_TABLE.c.callback_due_at <= now,
        )
        .order_by(_CALL_TABLE.c.id)
        .limit(limit)
    )
    return [as_queued(CallRow(**row)) for row in rows.mappings()]
