"""Database wiring: the declarative base, a UTC timestamp type, and engine/session factories."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float, MetaData, cast, event, func
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from surge import metrics
from surge.errors import ServiceUnavailable

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

INTEGER_MAX = 2**31 - 1
"""The largest value an `Integer` column holds everywhere (Postgres int4): bound what reads one."""
BIG_INTEGER_MAX = 2**63 - 1
"""The largest value a `BigInteger` column holds (Postgres int8, any SQLite integer)."""


class Base(DeclarativeBase):
    """Base of every ORM model; constraint names are the same on every database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; SQLite's naive values come back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Column = ColumnElement[Any] | QueryableAttribute[Any]
"""A column or a column expression, as SQL functions take them."""


_MS_PER_DAY = 86_400_000
_UNIX_EPOCH_MS = 210_866_760_000_000  # 1970-01-01T00:00Z as milliseconds of the Julian day


def epoch_seconds(dialect: str, moment: Column) -> ColumnElement[float]:
    """A UTC timestamp column as seconds since 1970, in the database's own date arithmetic.

    SQLite keeps a time as whole milliseconds of the Julian day: julianday() is that count
    divided out (off by up to ~0.1 ms, enough to move a call received on the hour into the hour
    before), so it is multiplied back and rounded to the exact millisecond. (strftime's '%s'
    and '%f' round a time within half a millisecond of the next second differently, one up and
    one not, which put such a time a whole second late.)
    """
    if dialect == "postgresql":
        # date_part gives a double precision; EXTRACT gives a slower numeric since PostgreSQL 14.
        return cast(func.date_part("epoch", moment), Float)
    milliseconds = func.round(func.julianday(moment) * _MS_PER_DAY) - _UNIX_EPOCH_MS
    return cast(milliseconds / 1000.0, Float)


def seconds_between(dialect: str, later: Column, earlier: Column) -> ColumnElement[float]:
    """Seconds from `earlier` to `later`, computed in the database."""
    return epoch_seconds(dialect, later) - epoch_seconds(dialect, earlier)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout_s: float = 30.0,
    connect_timeout_s: float = 60.0,
    command_timeout_s: float | None = None,
) -> AsyncEngine:
    """Build the async engine; SQLite gets WAL, foreign keys and a busy timeout.

    On PostgreSQL a request waits at most `pool_timeout_s` for a pooled connection,
    `connect_timeout_s` for a server that does not answer a new connection and
    `command_timeout_s` for one that stops answering a statement, so an outage is answered
    rather than left hanging.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # No ping on every checkout (a round trip per transaction): a dropped connection is
    # invalidated when it fails, and connections are recycled before servers time them out.
    return create_async_engine(
        url,
        # A failed statement's message names its values otherwise: a caller's number, a hash.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=pool_timeout_s,
        connect_args={"timeout": connect_timeout_s, "command_timeout": command_timeout_s}
        if url.startswith("postgresql")
        else {},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (the caller owns the transaction)."""
    return async_sessionmaker(engine, expire_on_commit=False)


HOT_CONNECTIONS = 8  # held for the hot transitions, at most half the pool (more: the pool's)
HOT_RECYCLE_S = 1800.0  # a held connection goes back to the pool this old (the pool's recycle)


class HotConnections:
    """The connections of the hot call transitions (ingest, offer, accept, complete, ...).

    On PostgreSQL each of those transitions is one statement, or reads of rows that do not
    change and then one statement, and every statement commits by itself (AUTOCOMMIT): a BEGIN
    and a COMMIT would only add two round trips. Up to `HOT_CONNECTIONS` such connections are
    kept checked out of the engine's pool and handed to one transition at a time, so a
    transition costs no checkout and check-in (an `Engine.connect` and a `close`: 100 -> 35 µs
    of CPU per transition, measured). Past that many at once, a transition takes one of the
    pool's for itself. A connection whose transition failed is given back to the pool, which
    resets it (or drops it when the server is gone), and so is one held for `HOT_RECYCLE_S`.

    On SQLite a transition is a transaction of its own (`engine.begin()`): its UPDATE and the
    INSERT of its history row commit together.
    """

    def __init__(self, engine: AsyncEngine, *, pool_size: int) -> None:
        self._postgres = engine.dialect.name == "postgresql"
        self.engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else engine
        )
        self._size = max(1, min(HOT_CONNECTIONS, pool_size // 2))  # of `engine`'s pool
        self._idle: list[tuple[AsyncConnection, float]] = []  # with when each was taken
        self._held = 0  # idle or in a transition
        self._closed = False

    @asynccontextmanager
    async def transition(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one transition; what it ran is committed when the block ends."""
        if not self._postgres:
            async with self.engine.begin() as connection:
                yield connection
            return
        connection, taken_at = await self._take()
        try:
            yield connection
            if connection.in_transaction():  # a Core statement began one: nothing was sent
                await connection.commit()
        except BaseException:
            await self._give_back(connection, taken_at, keep=False)
            raise
        await self._give_back(connection, taken_at, keep=True)

    async def close(self) -> None:
        """Give every idle connection back to the pool; those in use go back when done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, taken_at in idle:
            await self._give_back(connection, taken_at, keep=False)

    async def _take(self) -> tuple[AsyncConnection, float | None]:
        """An idle held connection, else a new one: held if fewer are, else for this once
        (taken at None)."""
        if self._idle:
            return self._idle.pop()
        if self._held >= self._size or self._closed:
            return await self.engine.connect(), None
        self._held += 1
        try:
            return await self.engine.connect(), time.monotonic()
        except BaseException:
            self._held -= 1
            raise

    async def _give_back(
        self, connection: AsyncConnection, taken_at: float | None, *, keep: bool
    ) -> None:
        """Keep a held connection for the next transition, or close it (back to the pool)."""
        if taken_at is not None:
            young = time.monotonic() - taken_at < HOT_RECYCLE_S
            if keep and young and not connection.invalidated and not self._closed:
                self._idle.append((connection, taken_at))
                return
            self._held -= 1
        await connection.close()


async def fetch_row(connection: AsyncConnection, statement: str, *args: object) -> Any:
    """The first row of fixed SQL run on PostgreSQL's driver connection (asyncpg), or None.

    For the hottest statements: no statement building, no ORM and no greenlet, and no BEGIN of
    its own (a statement sent before the transaction began commits by itself); asyncpg prepares
    `statement` once per connection. A failure comes out as the SQLAlchemy error
    `connection.execute` would raise, and a connection found closed is dropped from the pool.
    """
    return await _on_driver(connection, statement, args, first=True)


async def fetch_rows(connection: AsyncConnection, statement: str, *args: object) -> list[Any]:
    """Every row of fixed SQL run on PostgreSQL's driver connection, as `fetch_row` runs it."""
    rows: list[Any] = await _on_driver(connection, statement, args, first=False)
    return rows


async def _on_driver(
    connection: AsyncConnection, statement: str, args: tuple[object, ...], *, first: bool
) -> Any:
    """Run `statement` on the driver's connection; translate a failure as SQLAlchemy does."""
    held = connection.sync_connection
    # A connection that holds its pooled one hands it over without I/O; `get_raw_connection`
    # would cost a greenlet switch to and fro, in case it had to reconnect an invalidated one.
    if held is not None and not held.invalidated:
        pooled = held.connection
    else:
        pooled = await connection.get_raw_connection()
    adapter: Any = pooled.dbapi_connection
    driver = adapter.driver_connection
    try:
        if first:
            return await driver.fetchrow(statement, *args)
        return await driver.fetch(statement, *args)
    except Exception as exc:
        try:
            adapter._handle_exception(exc)  # SQLAlchemy's own translation to its DBAPI errors
        except Exception as translated:
            dbapi_error = connection.dialect.loaded_dbapi.Error
            if not isinstance(translated, dbapi_error):
                raise
            lost = connection.dialect.is_disconnect(translated, adapter, None)
            if lost:
                await connection.invalidate()
            raise DBAPIError.instance(
                statement,
                list(args),
                translated,
                dbapi_error,
                hide_parameters=True,  # as the engines do: no caller's number in a message
                connection_invalidated=lost,
            ) from exc
        raise


def is_outage(exc: BaseException) -> bool:
    """True when the database could not be reached, rather than refusing what we asked."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError):
        return True
    # Drivers report a refused connection as an unclassified DBAPIError (asyncpg does).
    return isinstance(exc, DBAPIError) and (type(exc) is DBAPIError or exc.connection_invalidated)


def outage(exc: BaseException) -> ServiceUnavailable:
    """The project's 503 for a database that cannot be reached (counted: `surge_backend_errors`)."""
    metrics.BACKEND_ERRORS.labels("database").inc()
    return ServiceUnavailable(f"the database is not answering ({type(exc).__name__}); try again")


class OutageLog:
    """One log line per database outage, not one per refused request.

    An outage begins with the first failure; it ends when the pool connects again (the engine's
    `connect` event). A failure long after the last line is logged again, in case the outage
    never dropped the pool's connections (a pool exhausted under load, say).
    """

    def __init__(self, *, repeat_after_s: float = 60.0) -> None:
        self._repeat_after_s = repeat_after_s
        self._since: float | None = None  # monotonic time of the last line of this outage
        self._refused = 0

    def watch(self, engine: AsyncEngine) -> None:
        """End the outage whenever `engine` makes a new connection."""

        @event.listens_for(engine.sync_engine, "connect")
        def _connected(_dbapi_connection: Any, _record: Any) -> None:
            self.ended()

    def failed(self, exc: BaseException) -> ServiceUnavailable:
        """Note one request refused by the outage; return the error to answer with."""
        now = time.monotonic()
        self._refused += 1
        if self._since is None or now - self._since >= self._repeat_after_s:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning(
                "database.outage",
                extra={"error": first_line, "refused": self._refused},
            )
            self._since = now
        return outage(exc)

    def ended(self) -> None:
        """The database answers again."""
        if self._since is not None:
            log.info("database.answering", extra={"refused": self._refused})
        self._since = None
        self._refused = 0


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Turn a database outage into the project's 503 error at the boundary."""
    try:
        yield
    except Exception as exc:
        if is_outage(exc):
            raise outage(exc) from exc
        raise
