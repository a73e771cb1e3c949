"""Knowledge gaps (口径未覆盖): questions agents found the host's scripts do not answer.

An agent raises a gap for the call it has in hand: connected to it, or the one it is wrapping
up (a `complete` may carry one too). The gap is the call's city's (the host's), and joins the
open group of that host whose representative question (its first) is the most similar, or opens
a group of its own. A publish that names groups in `answers_gaps` closes them and tells the
agents who raised them.

Similarity: both questions are cut into terms by the script search's tokenizer (CJK character
pairs, lower-cased words), a few filler terms are dropped ("where", "how", 在哪, 怎么...: they
make any two questions look alike), and the two term sets are compared by their Dice
coefficient, 2|A∩B| / (|A| + |B|). Dice rather than Jaccard because a gap is often a longer or
shorter wording of the same question: Dice weighs the shared terms against the mean size, not
the union. A gap joins a group at `SIMILARITY` (0.6) or more: "核酸检测点在哪里" and
"最近的核酸检测点在哪" score 0.77, "核酸检测点在哪里" and "疫苗接种点在哪里" 0.2.

Grouping is serialized per host (a PostgreSQL advisory lock; SQLite's one writer), so two agents
raising the same new question at once make one group, not two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from surge import events
from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.db import utcnow
from surge.errors import CallNotInHand, GapAnswered, UnknownGap
from surge.scripts.models import ScriptGap, ScriptGapGroup
from surge.scripts.schemas import GapGroupRead, GapStatus
from surge.scripts.search import terms
from surge.seats import frames
from surge.state.base import HotState

SIMILARITY = 0.6
"""The Dice coefficient from which a gap joins a group."""

_FILLER = frozenset(
    {
        # English function and question words
        "a", "an", "the", "is", "are", "was", "be", "been", "am", "do", "does", "did", "can",
        "could", "i", "me", "my", "we", "our", "you", "your", "it", "its", "of", "to", "in", "on",
        "at", "for", "from", "by", "with", "and", "or", "not", "no", "what", "where", "when",
        "which", "who", "how", "why", "there", "this", "that", "these", "those", "any", "please",
        # Chinese question and politeness bigrams
        "在哪", "哪里", "哪儿", "怎么", "怎样", "如何", "什么", "是否", "可以", "能否", "请问",
        "我想", "想问", "多少", "为什",
    }
)  # fmt: skip
_LOCK_KEY = 0x67617073  # "gaps": the advisory lock's namespace on PostgreSQL


def gap_terms(text: str) -> frozenset[str]:
    """The terms a question is compared by: the search's terms without the filler (all of
    them when nothing else is left, so a question of filler alone still matches itself)."""
    found = terms(text)
    kept = frozenset(term for term in found if term not in _FILLER)
    return kept or frozenset(found)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """The Dice coefficient of two term sets (0 when both are empty)."""
    total = len(a) + len(b)
    return 2 * len(a & b) / total if total else 0.0


def closest(question: str, groups: Iterable[tuple[int, str]]) -> int | None:
    """The group whose question is the most similar, at `SIMILARITY` or more (ties: the older,
    i.e. the lower id); None when none is similar enough."""
    wanted = gap_terms(question)
    best: tuple[float, int] | None = None
    for group_id, representative in groups:
        score = similarity(wanted, gap_terms(representative))
        if score >= SIMILARITY and (best is None or (score, -group_id) > (best[0], -best[1])):
            best = (score, group_id)
    return best[1] if best else None


async def call_in_hand(
    *, session: AsyncSession, state: HotState, agent_id: int, call_id: int, completed: bool
) -> str:
    """The city of the call the agent has in hand: connected to it, or completed by it and in
    its wrap-up (or just completed by the message that carries the gap); else `CallNotInHand`."""
    query = select(Call.city_code, Call.status, Call.agent_id).where(Call.id == call_id)
    row = (await session.execute(query)).one_or_none()
    if row is not None and row[2] == agent_id:
        city, status, _ = row
        if status == CallStatus.CONNECTED:
            return city
        if status == CallStatus.COMPLETED:
            if completed:
                return city
            presence = await state.get_agent(agent_id)
            if presence and presence.wrap_up and presence.wrap_up.call_id == call_id:
                return city
    raise CallNotInHand(
        f"call {call_id} is not in your hands: a gap is raised on the call you are on or are"
        " wrapping up"
    )


async def _serialize(session: AsyncSession, host: str) -> None:
    """Hold the host's grouping until the transaction ends (the first statement in it)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY, int(host))))
        return
    # SQLite: a write, even of no row, takes the database's one write lock for the transaction.
    await session.execute(update(ScriptGapGroup).where(false()).values(gaps=ScriptGapGroup.gaps))


async def raise_gap(
    *,
    session: AsyncSession,
    host: str,
    call_id: int,
    agent_id: int,
    agent_city: str,
    question: str,
    note: str | None,
) -> list[events.Event]:
    """Store the gap in its group (joined or opened); the frames for the agent and the host's
    admins."""
    await _serialize(session, host)
    open_groups = await session.execute(
        select(ScriptGapGroup.id, ScriptGapGroup.question)
        .where(ScriptGapGroup.city_code == host, ScriptGapGroup.status == GapStatus.OPEN)
        .order_by(ScriptGapGroup.id)
    )
    chosen = closest(question, [(group_id, text) for group_id, text in open_groups])
    now = utcnow()
    if chosen is None:
        group = ScriptGapGroup(
            city_code=host, question=question, status=GapStatus.OPEN, gaps=1,
            first_at=now, last_at=now,
        )  # fmt: skip
        session.add(group)
        await session.flush()
        group_id = group.id
    else:
        group_id = chosen
        await session.execute(
            update(ScriptGapGroup)
            .where(ScriptGapGroup.id == chosen)
            .values(gaps=ScriptGapGroup.gaps + 1, last_at=now)
        )
    session.add(
        ScriptGap(
            group_id=group_id, city_code=host, call_id=call_id, agent_id=agent_id,
            agent_city=agent_city, question=question, note=note or None, raised_at=now,
        )
    )  # fmt: skip
    await session.flush()
    (read,) = await _read(session, [group_id])
    return [
        events.to_agent(
            agent_id, frames.gap_recorded(call_id=call_id, city=host, question=question)
        ),
        events.to_admins(
            host, frames.gap_raised(question=question, raised_by=agent_city, group=as_frame(read))
        ),
    ]


async def groups(
    *, session: AsyncSession, city: str, status: GapStatus, limit: int
) -> list[GapGroupRead]:
    """The city's groups of a status: open ones most raised first (then the latest), answered
    ones the latest answered first."""
    order = (
        (ScriptGapGroup.gaps.desc(), ScriptGapGroup.last_at.desc())
        if status is GapStatus.OPEN
        else (ScriptGapGroup.answered_at.desc(),)
    )
    ids = await session.execute(
        select(ScriptGapGroup.id)
        .where(ScriptGapGroup.city_code == city, ScriptGapGroup.status == status)
        .order_by(*order, ScriptGapGroup.id.desc())
        .limit(limit)
    )
    return await _read(session, list(ids.scalars()))


async def _read(session: AsyncSession, ids: Sequence[int]) -> list[GapGroupRead]:
    """The groups, in the order of `ids`, with the cities whose agents raised their gaps."""
    if not ids:
        return []
    found = await session.execute(select(ScriptGapGroup).where(ScriptGapGroup.id.in_(ids)))
    by_id = {group.id: group for group in found.scalars()}
    raised = await session.execute(
        select(ScriptGap.group_id, ScriptGap.agent_city)
        .where(ScriptGap.group_id.in_(ids))
        .distinct()
    )
    cities: dict[int, list[str]] = defaultdict(list)
    for group_id, city in raised:
        cities[group_id].append(city)
    return [
        GapGroupRead(
            id=group.id,
            city=group.city_code,
            question=group.question,
            count=group.gaps,
            first_at=group.first_at,
            last_at=group.last_at,
            cities=sorted(cities[group.id]),
            status=GapStatus(group.status),
            answered_version=group.answered_version,
        )
        for group in (by_id[group_id] for group_id in ids)
    ]


def as_frame(group: GapGroupRead) -> frames.GapGroup:
    """A group as the `gap.raised` frame carries it (the list's shape, times in ISO 8601)."""
    return {
        "id": group.id,
        "city": group.city,
        "question": group.question,
        "count": group.count,
        "first_at": _iso(group.first_at),
        "last_at": _iso(group.last_at),
        "cities": group.cities,
        "status": group.status.value,
        "answered_version": group.answered_version,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def answer(
    *, session: AsyncSession, city: str, group_ids: Sequence[int], version: int
) -> list[events.Event]:
    """Close the groups a publish of `city`'s `version` answers; the frames telling each agent
    who raised one of their gaps. A group that is not the city's (or does not exist) is
    `UnknownGap`, one answered already `GapAnswered`: the caller's transaction, publish
    included, is then rolled back."""
    wanted = sorted(set(group_ids))
    if not wanted:
        return []
    found = await session.execute(
        select(ScriptGapGroup.id, ScriptGapGroup.answered_version).where(
            ScriptGapGroup.id.in_(wanted), ScriptGapGroup.city_code == city
        )
    )
    answered: dict[int, int | None] = dict(found.all())
    unknown = [group_id for group_id in wanted if group_id not in answered]
    if unknown:
        raise UnknownGap(f"city {city} has no knowledge-gap group {unknown[0]}")
    closed = {group_id: v for group_id, v in answered.items() if v is not None}
    if closed:
        group_id, by = min(closed.items())
        raise GapAnswered(f"knowledge-gap group {group_id} was answered by version {by}")
    moved = await session.execute(
        update(ScriptGapGroup)
        .where(ScriptGapGroup.id.in_(wanted), ScriptGapGroup.status == GapStatus.OPEN)
        .values(status=GapStatus.ANSWERED, answered_version=version, answered_at=utcnow())
    )
    if moved.rowcount != len(wanted):  # type: ignore[attr-defined]
        raise GapAnswered("a publish answered one of these knowledge-gap groups a moment ago")
    raisers = await session.execute(
        select(ScriptGap.agent_id, ScriptGap.call_id, ScriptGap.question)
        .where(ScriptGap.group_id.in_(wanted))
        .distinct()
        .order_by(ScriptGap.agent_id, ScriptGap.call_id)
    )
    return [
        events.to_agent(
            agent_id,
            frames.gap_answered(city=city, version=version, call_id=call_id, question=question),
        )
        for agent_id, call_id, question in raisers
    ]
