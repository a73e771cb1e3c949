"""The ticket list (GET /calls): which calls a reader sees, the filters, cursor pages and the CSV.

Scope: the province (a coordinator, a province-wide CTI) sees every call, a city-bound reader its
city's calls, and a city admin also the calls its city's agents answered for other hosts, their
callers masked as a helper agent sees them. A call is served by the city of the agent it was
connected to: one offered to an agent and abandoned before it was answered was served by nobody.

Order: newest `received_at` first, then the highest id. A cursor is the last row's
(`received_at`, id): the next page starts strictly after it, so pages neither repeat nor skip a
call, and calls that arrive meanwhile (newer than every row already read) never shift them.
"""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import io
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.auth.models import Role
from surge.auth.service import Principal
from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.calls.service import CallRow
from surge.db import BIG_INTEGER_MAX
from surge.errors import BadRequest, InvalidCursor, UnknownCategory
from surge.reports.schemas import Lang
from surge.scripts.classification import Classification
from surge.seats import frames
from surge.seats.models import Agent

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
CSV_BATCH = 1000
"""Rows read per query while a CSV streams: the file is never held whole in memory."""

_CALL = Call.metadata.tables["call"]
_AGENT = Agent.metadata.tables["agent"]
_HELPER = _AGENT.alias("helper")  # the agents a city lent, apart from the join that names them
_SERVED_BY = case((_CALL.c.connected_at.is_not(None), _AGENT.c.city_code), else_=None)
_LISTED = (
    select(*_CALL.c, _SERVED_BY.label("served_by"))
    .select_from(_CALL.outerjoin(_AGENT, _AGENT.c.id == _CALL.c.agent_id))
    .order_by(_CALL.c.received_at.desc(), _CALL.c.id.desc())
)


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """What the list is narrowed to, every value checked; None is no filter."""

    city: str | None = None
    served_by: str | None = None
    status: CallStatus | None = None
    categories: frozenset[str] | None = None
    text: str | None = None
    text_categories: frozenset[str] = frozenset()  # the categories whose names hold `text`
    received_from: datetime | None = None  # included
    received_to: datetime | None = None  # excluded


class Position(NamedTuple):
    """Where a page ended: its last call's arrival and id."""

    received_at: datetime
    call_id: int


class Ticket(NamedTuple):
    """A listed call and the city that served it."""

    call: CallRow
    served_by: str | None


def query(
    *,
    classification: Classification,
    timezone: str,
    city: str | None = None,
    served_by: str | None = None,
    status: CallStatus | None = None,
    category: str | None = None,
    text: str | None = None,
    received_from: date | None = None,
    received_to: date | None = None,
) -> TicketQuery:
    """The filters as given (cities already checked), categories and days resolved.

    A category is a level-2 code or a level-1 code (all its children). A day is the local day in
    `timezone`: `from` its first moment, `to` the first moment of the day after (the day is in).
    The range may not be empty: `from` must come before `to`.
    """
    categories = None
    if category is not None:
        categories = classification.under(category)
        if not categories:
            raise UnknownCategory(f"no category with code {category!r}")
    zone = ZoneInfo(timezone)
    start = None if received_from is None else _moment(received_from, zone)
    end = None if received_to is None else _moment(received_to, zone, after_the_day=True)
    if start is not None and end is not None and start >= end:
        raise BadRequest(f"from ({received_from}) must come before to ({received_to})")
    text = (text or "").strip() or None
    return TicketQuery(
        city=city,
        served_by=served_by,
        status=status,
        categories=categories,
        text=text,
        text_categories=classification.named(text) if text else frozenset(),
        received_from=start,
        received_to=end,
    )


def _moment(bound: date, zone: ZoneInfo, *, after_the_day: bool = False) -> datetime:
    """A moment as given, or a local day's first moment (of the day after, for an end)."""
    if isinstance(bound, datetime):
        return bound.astimezone(UTC)
    day = bound + timedelta(days=1) if after_the_day else bound
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(-?[0-9]{1,19})\.([0-9]{1,19})")
_CURSOR_MAX_CHARS = 64


def encode_cursor(position: Position) -> str:
    """An opaque cursor for the page after `position`."""
    micros = (position.received_at - _EPOCH) // timedelta(microseconds=1)
    text = f"{micros}.{position.call_id}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor of `encode_cursor` names; anything else is `InvalidCursor`."""
    problem = InvalidCursor("cursor: not one this API gave; start again without it")
    if len(cursor) > _CURSOR_MAX_CHARS:
        raise problem
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise problem from None
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise problem
    micros, call_id = int(found[1]), int(found[2])
    if not 1 <= call_id <= BIG_INTEGER_MAX:
        raise problem
    try:
        return Position(_EPOCH + timedelta(microseconds=micros), call_id)
    except OverflowError:
        raise problem from None


def _served_by(city: str) -> ColumnElement[bool]:
    """The call was answered by one of the city's agents."""
    lent = select(_HELPER.c.id).where(_HELPER.c.city_code == city)
    return and_(_CALL.c.connected_at.is_not(None), _CALL.c.agent_id.in_(lent))


def _scope(viewer: Principal) -> ColumnElement[bool] | None:
    """The calls the viewer may list (None: all of them)."""
    if viewer.city is None:
        return None
    own = _CALL.c.city_code == viewer.city
    if viewer.role is Role.CITY_ADMIN:
        return or_(own, _served_by(viewer.city))
    return own


def _matches(text: str, viewer: Principal, categories: frozenset[str]) -> ColumnElement[bool]:
    """Free text: the ticket's words and keys, its category's names, the number where shown."""
    caller = _CALL.c.caller.contains(text, autoescape=True)
    if viewer.city is not None:  # a masked number may not be searched for
        caller = and_(caller, _CALL.c.city_code == viewer.city)
    found = [
        _CALL.c.summary.icontains(text, autoescape=True),
        _CALL.c.category_code.contains(text, autoescape=True),
        _CALL.c.script_key.icontains(text, autoescape=True),
        _CALL.c.external_id.icontains(text, autoescape=True),
        caller,
    ]
    if categories:
        found.append(_CALL.c.category_code.in_(sorted(categories)))
    if text.isascii() and text.isdigit() and int(text) <= BIG_INTEGER_MAX:
        found.append(_CALL.c.id == int(text))
    return or_(*found)


def _conditions(
    viewer: Principal, wanted: TicketQuery, after: Position | None
) -> list[ColumnElement[bool]]:
    conditions = [scope] if (scope := _scope(viewer)) is not None else []
    if wanted.city is not None:
        conditions.append(_CALL.c.city_code == wanted.city)
    if wanted.served_by is not None:
        conditions.append(_served_by(wanted.served_by))
    if wanted.status is not None:
        conditions.append(_CALL.c.status == wanted.status.value)
    if wanted.categories is not None:
        conditions.append(_CALL.c.category_code.in_(sorted(wanted.categories)))
    if wanted.text is not None:
        conditions.append(_matches(wanted.text, viewer, wanted.text_categories))
    if wanted.received_from is not None:
        conditions.append(_CALL.c.received_at >= wanted.received_from)
    if wanted.received_to is not None:
        conditions.append(_CALL.c.received_at < wanted.received_to)
    if after is not None:
        # The first bound alone lets an index on received_at find the start of the page.
        conditions.append(_CALL.c.received_at <= after.received_at)
        conditions.append(or_(_CALL.c.received_at < after.received_at, _CALL.c.id < after.call_id))
    return conditions


async def page(
    *,
    session: AsyncSession,
    viewer: Principal,
    wanted: TicketQuery,
    after: Position | None,
    limit: int,
) -> tuple[list[Ticket], Position | None]:
    """Up to `limit` calls after `after`, newest first, and where the next page starts (or None)."""
    statement = _LISTED.where(*_conditions(viewer, wanted, after)).limit(limit + 1)
    rows = (await session.execute(statement)).mappings().all()
    listed = [
        Ticket(CallRow(**{name: row[name] for name in CallRow._fields}), row["served_by"])
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    last = listed[-1].call if more else None
    return listed, None if last is None else Position(last.received_at, last.id)


# The CSV's columns: key (the English header) and the Chinese header.
CSV_COLUMNS = {
    "id": "工单编号",
    "received_at": "来电时间",
    "city": "来电城市",
    "served_by": "接听城市",
    "caller": "来电号码",
    "channel": "渠道",
    "priority": "优先级",
    "status": "状态",
    "agent_id": "坐席编号",
    "connected_at": "接通时间",
    "ended_at": "结束时间",
    "disposition": "办结方式",
    "category_code": "诉求分类代码",
    "category": "诉求分类",
    "summary": "工单摘要",
    "script_key": "答复口径条目",
    "script_version": "答复口径版本",
    "satisfied": "是否满意",
    "feedback_score": "满意度评分",
    "external_id": "话务系统编号",
}
_FREE_TEXT = ("summary", "script_key", "external_id")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_header(lang: Lang) -> bytes:
    """The file's start: the byte-order mark Excel looks for, then the header row."""
    header = CSV_COLUMNS.values() if lang is Lang.ZH else CSV_COLUMNS.keys()
    return "\ufeff".encode() + _csv_line([list(header)])


def csv_rows(
    tickets: Iterable[Ticket],
    *,
    viewer: Principal,
    timezone: str,
    classification: Classification,
    lang: Lang,
) -> bytes:
    """Tickets as CSV lines (UTF-8), numbers masked as the viewer sees them, local times."""
    zone = ZoneInfo(timezone)

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    lines = []
    for ticket in tickets:
        call = ticket.call
        category = classification.categories.get(call.category_code or "")
        values = call._asdict() | {
            "city": call.city_code,
            "served_by": ticket.served_by,
            "caller": frames.caller_as_seen(
                call.caller, call_city=call.city_code, viewer_city=viewer.city
            ),
            "category": None
            if category is None
            else (category.name if lang is Lang.ZH else category.name_en or category.name),
        }
        for key in _FREE_TEXT:  # text that Excel would run as a formula is kept as text
            if isinstance(values[key], str) and values[key].startswith(_FORMULA_START):
                values[key] = "'" + values[key]
        lines.append([cell(values[key]) for key in CSV_COLUMNS])
    return _csv_line(lines)


def _csv_line(lines: list[list[Any]]) -> bytes:
    text = io.StringIO(newline="")
    csv.writer(text).writerows(lines)
    return text.getvalue().encode("utf-8")


async def csv_file(
    first: list[Ticket],
    more: Position | None,
    *,
    sessions: async_sessionmaker[AsyncSession],
    viewer: Principal,
    wanted: TicketQuery,
    timezone: str,
    classification: Classification,
    lang: Lang,
) -> AsyncIterator[bytes]:
    """The whole list as a CSV file, streamed: the first batch (read before the answer began,
    so that an outage is still a proper error), then a batch per query until the last."""
    render = functools.partial(
        csv_rows, viewer=viewer, timezone=timezone, classification=classification, lang=lang
    )
    yield csv_header(lang) + render(first)
    while more is not None:
        async with sessions() as session:
            batch, more = await page(
                session=session, viewer=viewer, wanted=wanted, after=more, limit=CSV_BATCH
            )
        yield render(batch)
