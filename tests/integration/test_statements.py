"""Each hot transition is one statement on PostgreSQL; SQLite takes the few it needs.

Statements are counted with the engine's `before_cursor_execute` event; on PostgreSQL the
driver's query log is counted too, which also sees what bypasses SQLAlchemy (the hot statements'
fixed SQL) and the transaction's BEGIN and COMMIT. Every path runs once before it is counted,
as in a running service whose connections have prepared their statements.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from surge.auth import service as auth_service
from surge.auth.models import Role
from surge.calls import service as calls_service
from surge.calls.lifecycle import Channel, Disposition
from surge.calls.schemas import CallCreate
from surge.db import HotConnections, create_engine, create_sessionmaker, utcnow
from surge.scripts import service as scripts_service
from surge.scripts.models import ScriptVersion
from surge.seats.models import Agent
from surge.state.base import HeldOffer
from tests.conftest import Backend
from tests.helpers import seed

CITY = "320100"
KEY = "testing"
_TRANSACTION = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})


@dataclass
class Counter:
    """The statements sent, and the transaction commands (PostgreSQL only)."""

    statements: list[str] = field(default_factory=list)
    transaction: list[str] = field(default_factory=list)

    def clear(self) -> None:
        """Start counting afresh."""
        self.statements.clear()
        self.transaction.clear()


@dataclass
class Db:
    """The engine (and the hot transitions' view of it), the counter, one agent and a script
    version of its city."""

    engine: AsyncEngine
    hot: HotConnections
    counted: Counter
    agent_id: int
    script_version: int
    postgres: bool


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Db]:
    """A counted engine on a seeded database with one agent."""
    await seed(backend.settings())
    engine = create_engine(backend.database_url)
    counted = Counter()
    postgres = engine.dialect.name == "postgresql"

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _statement(*args: Any) -> None:
        counted.statements.append(str(args[2]).split(None, 1)[0])

    @event.listens_for(engine.sync_engine, "connect")
    def _log_driver(dbapi_connection: Any, _record: Any) -> None:
        if not postgres:
            return

        def logged(record: Any) -> None:
            command = record.query.strip().split(None, 1)[0].rstrip(";").upper()
            # SQLAlchemy's own statements run as prepared statements, which the log does not
            # show: what it shows went past SQLAlchemy, or is the transaction's BEGIN or COMMIT.
            (counted.transaction if command in _TRANSACTION else counted.statements).append(command)

        dbapi_connection.driver_connection.add_query_logger(logged)

    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            user = await auth_service.create_user(
                session=session,
                actor=auth_service.CLI,
                username=f"agent-{secrets.token_hex(3)}",
                password="password-123",
                role=Role.AGENT,
                city=CITY,
            )
            agent_id = (
                await session.execute(select(Agent.id).where(Agent.user_id == user.id))
            ).scalar_one()
            book = ScriptVersion(
                city_code=CITY,
                version=1,
                author="test",
                entry_count=1,
                entries=[{"key": KEY, "title": "t", "question": "q", "answer": "a"}],
            )
            session.add(book)
        hot = HotConnections(engine, pool_size=5)
        yield Db(engine, hot, counted, agent_id, book.version, postgres)
        await hot.close()
    finally:
        await engine.dispose()


async def _ingest(db: Db, external_id: str | None = None) -> HeldOffer:
    """Record a call (in its own transaction, as POST /calls does); return an offer of it."""
    payload = CallCreate(
        city=CITY,
        caller="13800000000",
        channel=Channel.PHONE,
        external_id=external_id or secrets.token_hex(8),
    )
    async with db.hot.transition() as connection:
        call, created, _ = await calls_service.ingest(
            connection=connection,
            payload=payload,
            instance="test",
            secret="test-secret",
            timezone="Asia/Shanghai",
        )
    assert created
    return HeldOffer(
        offer_id=secrets.token_hex(8),
        call=calls_service.as_queued(call),
        agent_id=db.agent_id,
        expires_at=0.0,
    )


async def _offer(db: Db, offer: HeldOffer) -> None:
    async with db.hot.transition() as connection:
        made, behind = await calls_service.record_offers(
            connection=connection, offers=[offer], at=utcnow(), instance="test"
        )
    assert (made, behind) == ([offer], [])


async def _connect(db: Db, offer: HeldOffer) -> None:
    async with db.hot.transition() as connection:
        connected = await calls_service.record_connect(
            connection=connection, offer=offer, at=utcnow(), instance="test"
        )
    assert connected


async def _complete(db: Db, offer: HeldOffer, script_version: int | None = None) -> None:
    """As `Transitions.complete` does: a ticket naming a script version checks it first."""
    async with db.hot.transition() as connection:
        if script_version is not None:
            book = await calls_service.handled_city(
                connection=connection, call_id=offer.call.call_id, agent_id=db.agent_id
            )
            await scripts_service.check_script_entry(
                connection=connection, city=book, script_version=script_version, script_key=KEY
            )
        city = await calls_service.record_completion(
            connection=connection,
            call_id=offer.call.call_id,
            agent_id=db.agent_id,
            disposition=Disposition.ANSWERED,
            category_code=None,
            summary=None,
            script_version=script_version,
            script_key=None if script_version is None else KEY,
            at=utcnow(),
            instance="test",
        )
    assert city == CITY


async def _requeue(db: Db, offer: HeldOffer) -> None:
    async with db.hot.transition() as connection:
        out = await calls_service.record_requeue(
            connection=connection, offer=offer, reason="declined", at=utcnow(), instance="test"
        )
    assert len(out) == 1


async def _lifecycle(db: Db) -> dict[str, tuple[int, int]]:
    """Ingest, offer, accept, complete; ingest, offer, requeue: statements and BEGIN/COMMITs."""
    counts: dict[str, tuple[int, int]] = {}

    async def step(name: str, *run: Any) -> Any:
        db.counted.clear()
        result = await run[0](db, *run[1:])
        counts[name] = (len(db.counted.statements), len(db.counted.transaction))
        return result

    offer = await step("ingest", _ingest)
    await step("offer", _offer, offer)
    await step("accept", _connect, offer)
    await step("complete", _complete, offer)
    declined = await _ingest(db)
    await _offer(db, declined)
    await step("requeue", _requeue, declined)
    scripted = await _ingest(db)
    await _offer(db, scripted)
    await _connect(db, scripted)
    await step("complete, naming a script version", _complete, scripted, db.script_version)
    return counts


async def test_hot_transitions_send_the_statements_they_should(db: Db) -> None:
    """PostgreSQL: one statement each, without BEGIN or COMMIT; SQLite: a few."""
    await _lifecycle(db)  # prepare every statement on the connection first

    counts = await _lifecycle(db)

    if db.postgres:
        assert counts == {
            "ingest": (1, 0),
            "offer": (1, 0),
            "accept": (1, 0),
            "complete": (1, 0),
            "requeue": (1, 0),
            # The call (for its city), the city's script version, then the completion.
            "complete, naming a script version": (3, 0),
        }
    else:
        statements = {name: n for name, (n, _) in counts.items()}
        # The INSERT of the call, then of its event; the guarded UPDATEs, a SELECT of what
        # they left, the INSERT of the events; an UPDATE and the INSERT of its event.
        assert statements == {
            "ingest": 2,
            "offer": 3,
            "accept": 2,
            "complete": 2,
            "requeue": 2,
            "complete, naming a script version": 4,
        }
