"""Who serves which host now: the one owner of the live surges on a service instance.

`ActiveSurges` is an immutable picture of the live surges (active and draining) that answers
what the dispatcher, the consoles, the script books and the coordinator ask of them: which surge
a host has, which hosts a helper city serves and with how many seats, whose agents may read a
host's scripts, which surges are draining, and the routing policy's input (`SurgeView`, the
pure policy's type only). `SurgeRoster` keeps one picture per instance, made in the app's
lifespan: read again after `events.SURGES_CHANGED` (`changed`) and at least every
`SURGES_TTL_S`, one read at a time. It also caches the cities' own service levels that the
lender protection weighs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.router.policy import SurgeView, helper_reserves
from surge.settings import Settings
from surge.surges import service as surges_service
from surge.surges.models import Surge

SURGES_TTL_S = 1.0  # other instances' surge changes arrive by event; this is the backstop
SERVICE_LEVELS_TTL_S = 5.0  # the lender protection's own service levels change slowly

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Helper:
    """A helper city of an active wave, with its limits in the surge."""

    city: str
    wave: int
    seats: int  # how many of its agents may serve the host at once (its quota)
    reserve: int  # free agents it keeps back for its own calls


@dataclass(frozen=True, slots=True)
class LiveSurge:
    """A live surge as everybody asks about it: its host and the helpers of its active waves."""

    surge_id: int
    host: str
    draining: bool  # ended: its helpers get no new offers and finish the calls in hand
    overflow_after_s: float
    severity: float
    helpers: tuple[Helper, ...]
    callbacks: bool = False  # the host's abandoned calls become callbacks by themselves

    @classmethod
    def of(cls, surge: Surge) -> LiveSurge:
        """The picture of a loaded surge row."""
        return cls(
            surge_id=surge.id,
            host=surge.host_city,
            draining=surge.status == surges_service.DRAINING,
            overflow_after_s=surge.overflow_after_s,
            severity=surge.severity,
            helpers=tuple(
                Helper(c.city_code, wave.number, wave.seats_per_city, wave.reserve)
                for wave in sorted(surge.waves, key=lambda w: w.number)
                if wave.activated_at is not None
                for c in wave.cities
            ),
            callbacks=surge.callbacks,
        )

    @property
    def helper_cities(self) -> tuple[str, ...]:
        """The helper cities of its active waves, wave by wave."""
        return tuple(helper.city for helper in self.helpers)

    def view(self) -> SurgeView:
        """The routing policy's input for this surge."""
        return SurgeView(
            surge_id=self.surge_id,
            host=self.host,
            overflow_after_s=self.overflow_after_s,
            quotas={helper.city: helper.seats for helper in self.helpers},
            reserves={helper.city: helper.reserve for helper in self.helpers},
            severity=self.severity,
        )


@dataclass(frozen=True, slots=True)
class ActiveSurges:
    """The live surges at one moment, oldest first, and the questions asked of them."""

    surges: tuple[LiveSurge, ...] = ()
    views: tuple[SurgeView, ...] = field(init=False)  # the active ones, as the policy sees them
    _by_host: Mapping[str, LiveSurge] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        views = tuple(surge.view() for surge in self.surges if not surge.draining)
        object.__setattr__(self, "views", views)
        object.__setattr__(self, "_by_host", {surge.host: surge for surge in self.surges})

    @classmethod
    def of(cls, surges: Sequence[Surge]) -> ActiveSurges:
        """The picture of loaded live surge rows (rows of ended surges are left out)."""
        return cls(tuple(LiveSurge.of(s) for s in surges if s.status in surges_service.LIVE))

    @property
    def calling_back(self) -> frozenset[str]:
        """The hosts whose live surge makes callbacks of their abandoned calls."""
        return frozenset(surge.host for surge in self.surges if surge.callbacks)

    def of_host(self, host: str) -> LiveSurge | None:
        """The host's live surge (a host has at most one), if any."""
        return self._by_host.get(host)

    def joined_by(self, city: str) -> tuple[LiveSurge, ...]:
        """The active surges whose active waves the city helps: its agents may be offered their
        hosts' calls (a draining surge is left: its helpers were told `surge.left`)."""
        return tuple(s for s in self.surges if not s.draining and city in s.helper_cities)

    def helpers_of(self, host: str) -> tuple[str, ...]:
        """The helper cities of the host's live surge's active waves (none without a surge).

        A draining surge's helpers count: they still finish the host's calls in hand.
        """
        surge = self._by_host.get(host)
        return surge.helper_cities if surge else ()

    def serving_cities(self, host: str) -> list[str]:
        """The cities whose agents serve the host's calls: the host's own, then its helpers."""
        return [host, *self.helpers_of(host)]

    def serves(self, city: str, host: str) -> bool:
        """Whether agents of `city` serve the host's calls (their own city, or as helpers)."""
        return city == host or city in self.helpers_of(host)

    def reserves(self) -> dict[str, int]:
        """Per helper city, the free agents it keeps back across the active surges."""
        return helper_reserves(self.views)

    @property
    def draining(self) -> tuple[LiveSurge, ...]:
        """The surges ending once their helpers' calls in hand are done."""
        return tuple(surge for surge in self.surges if surge.draining)


class Cached(Generic[T]):
    """A value read again once older than `ttl_s` (or forgotten), by one reader at a time.

    Many consoles connecting at once share one read rather than each taking a database
    connection (which could drain the pool).
    """

    def __init__(self, read: Callable[[], Awaitable[T]], *, initial: T, ttl_s: float) -> None:
        self._read = read
        self._value = initial
        self._ttl_s = ttl_s
        self._read_at = -math.inf
        self._forgotten = 0  # how many times `forget` was called
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Read again on the next `get` (and after a read under way, which may be too old)."""
        self._read_at = -math.inf
        self._forgotten += 1

    async def get(self) -> T:
        """The value, read again first if it is too old."""
        if time.monotonic() - self._read_at > self._ttl_s:
            async with self._lock:
                if time.monotonic() - self._read_at > self._ttl_s:
                    started, forgotten = time.monotonic(), self._forgotten
                    self._value = await self._read()
                    if forgotten == self._forgotten:
                        self._read_at = started
        return self._value


class SurgeRoster:
    """The live surges and the cities' own service levels, cached once per service instance."""

    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._settings = settings
        self._sessions = sessions
        self._surges = Cached(self._read_surges, initial=ActiveSurges(), ttl_s=SURGES_TTL_S)
        self._levels: Cached[Mapping[str, float | None]] = Cached(
            self._read_levels, initial={}, ttl_s=SERVICE_LEVELS_TTL_S
        )

    def changed(self) -> None:
        """A surge started, gained a wave, ended or drained: read them again before answering."""
        self._surges.forget()

    async def current(self) -> ActiveSurges:
        """The live surges, at most `SURGES_TTL_S` old (or read since the last `changed`).

        Takes a database connection of its own when it reads: call it before taking one.
        """
        return await self._surges.get()

    async def own_service_levels(self) -> Mapping[str, float | None]:
        """Each city's own service level over the protection window, read every few seconds."""
        return await self._levels.get()

    async def _read_surges(self) -> ActiveSurges:
        async with self._sessions() as session:
            return ActiveSurges.of(await surges_service.live_surges(session=session))

    async def _read_levels(self) -> Mapping[str, float | None]:
        settings = self._settings
        since = datetime.now(UTC) - timedelta(seconds=settings.protection_window_s)
        async with self._sessions() as session:
            return await surges_service.own_service_levels(
                session=session,
                since=since,
                within_s=settings.service_level_s,
                short_abandon_s=settings.report_short_abandon_s,
            )
