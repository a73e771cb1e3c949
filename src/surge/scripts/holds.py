"""Required script versions: which agents get no offers of a city's calls until they acknowledge.

A city admin may publish a version as `required`. From then on, every agent serving the city
(its own agents, and the helper cities' agents of its surge's active waves) whose console has
not acknowledged that version, or a later one (`scripts.ack`), is *held back*: the routing
policy offers it none of the city's calls (`Snapshot.held_back`). Other hosts' calls, and its
own city's, still reach it unless those cities hold it back too.

The source of truth is the database (`script_version.required`, `script_ack`); each instance
keeps a picture (`Holds`), read again when any instance publishes a required version or takes
an acknowledgement of a city with one (`events.SCRIPT_HOLDS_CHANGED` on the bus), and at least
every `HOLDS_TTL_S`. Between an ack on one instance and the event reaching another, that other
instance holds the agent back a moment longer: a hold errs towards waiting, never towards an
offer to an agent who has not read the required scripts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.scripts.models import ScriptAck, ScriptVersion
from surge.surges.roster import ActiveSurges, Cached

HOLDS_TTL_S = 5.0  # changes arrive by event; this is the backstop


@dataclass(frozen=True, slots=True)
class Holds:
    """The newest required version of each city that has one, and who has acknowledged it."""

    required: Mapping[str, int] = field(default_factory=dict)  # city -> newest required version
    acked: Mapping[str, frozenset[int]] = field(default_factory=dict)  # city -> agents at/after it

    def holds(self, city: str, agent_id: int) -> bool:
        """Whether the agent gets no offers of the city's calls now."""
        return city in self.required and agent_id not in self.acked.get(city, frozenset())

    def serving_cities(self, surges: ActiveSurges) -> list[str]:
        """The cities whose agents some hold may concern (the hosts' own and their helpers)."""
        return sorted({code for city in self.required for code in surges.serving_cities(city)})

    def held_back(
        self, present: Mapping[str, Sequence[int]], surges: ActiveSurges
    ) -> dict[str, frozenset[int]]:
        """Per city with a required version, the present agents serving it who are held back."""
        held: dict[str, frozenset[int]] = {}
        for city in self.required:
            agents = frozenset(
                agent_id
                for code in surges.serving_cities(city)
                for agent_id in present.get(code, ())
                if self.holds(city, agent_id)
            )
            if agents:
                held[city] = agents
        return held


async def read(*, session: AsyncSession) -> Holds:
    """The holds as the database has them now."""
    rows = await session.execute(
        select(ScriptVersion.city_code, func.max(ScriptVersion.version))
        .where(ScriptVersion.required.is_(True))
        .group_by(ScriptVersion.city_code)
    )
    required = {city: int(number) for city, number in rows.all()}
    if not required:
        return Holds()
    acks = await session.execute(
        select(ScriptAck.city_code, ScriptAck.agent_id, ScriptAck.version).where(
            ScriptAck.city_code.in_(required)
        )
    )
    acked: dict[str, set[int]] = {city: set() for city in required}
    for city, agent_id, number in acks.all():
        if number >= required[city]:
            acked[city].add(agent_id)
    return Holds(required, {city: frozenset(agents) for city, agents in acked.items()})


class ScriptHolds:
    """The holds, cached once per service instance."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._holds = Cached(self._read, initial=Holds(), ttl_s=HOLDS_TTL_S)

    def changed(self) -> None:
        """A required version was published or acknowledged: read again before answering."""
        self._holds.forget()

    async def current(self) -> Holds:
        """The holds, at most `HOLDS_TTL_S` old (or read since the last `changed`).

        Takes a database connection of its own when it reads: call it before taking one.
        """
        return await self._holds.get()

    async def _read(self) -> Holds:
        async with self._sessions() as session:
            return await read(session=session)
