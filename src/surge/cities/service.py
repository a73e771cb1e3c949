"""The city registry, seeding the 13 cities, and their live queue figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.cities.models import City
from surge.errors import UnknownCity
from surge.state.base import CityView, HotState


@dataclass(frozen=True, slots=True)
class CityInfo:
    """What the service keeps in memory about a city."""

    code: str
    name: str
    name_en: str
    seats: int
    normal_rate_per_hour: float


@dataclass(frozen=True, slots=True)
class CityFigures:
    """A city's live queue and staffing figures."""

    city: CityInfo
    waiting: int
    longest_wait_s: float
    agents_available: int
    agents_busy: int
    agents_on_break: int


def seed_data() -> list[dict[str, object]]:
    """The province's cities as shipped in `surge/data/cities.json`."""
    text = resources.files("surge.data").joinpath("cities.json").read_text(encoding="utf-8")
    cities: list[dict[str, object]] = json.loads(text)["cities"]
    return cities


async def seed(*, session: AsyncSession) -> int:
    """Insert the cities that are missing (idempotent); returns how many were added."""
    existing = set((await session.execute(select(City.code))).scalars())
    added = [City(**row) for row in seed_data() if row["code"] not in existing]
    session.add_all(added)
    await session.flush()
    return len(added)


class CityRegistry:
    """The cities, read once from the database and re-read when an unknown code shows up."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cities: dict[str, CityInfo] = {}

    async def load(self) -> None:
        """(Re)read every city."""
        async with self._sessions() as session:
            rows = (await session.execute(select(City).order_by(City.code))).scalars()
            self._cities = {
                c.code: CityInfo(c.code, c.name, c.name_en, c.seats, c.normal_rate_per_hour)
                for c in rows
            }

    @property
    def codes(self) -> list[str]:
        """Every city code, in code order."""
        return list(self._cities)

    async def require(self, code: str) -> CityInfo:
        """Return the city or raise `UnknownCity` (after one re-read, for cities seeded since)."""
        city = self._cities.get(code)
        if city is None:
            await self.load()
            city = self._cities.get(code)
        if city is None:
            raise UnknownCity(f"no city with code {code!r}")
        return city

    def figures(self, views: dict[str, CityView], now: float) -> list[CityFigures]:
        """Combine the hot state's views with the registry, in code order."""
        return [
            CityFigures(
                city=city,
                waiting=view.waiting,
                longest_wait_s=round(max(0.0, now - view.oldest_enqueued_at), 3)
                if view.oldest_enqueued_at is not None
                else 0.0,
                agents_available=len(view.idle),
                agents_busy=view.offered + view.busy,
                agents_on_break=view.on_break,
            )
            for code, city in self._cities.items()
            if (view := views.get(code)) is not None
        ]


async def live_figures(*, registry: CityRegistry, state: HotState, now: float) -> list[CityFigures]:
    """Every city's live figures."""
    views = await state.snapshot(registry.codes, queue_depth=0)
    return registry.figures(views, now)
