"""The pressure monitor: every few seconds, each city's reading and the elected city.

Figures come from the hot state (waiting, longest wait, free and busy agents) and from one grouped
query over the last hour of calls (arrivals in the last 15 minutes, received and answered in the
hour, average handling time of the calls completed in it). Each instance runs its own monitor;
the election's hysteresis is kept per instance, and so are the last hour of samples (a bounded
ring) that the coordinator's charts read and the time each city has been under the release
threshold (a surge's release suggestion: its clock starts again when an instance starts).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.cities import pressure
from surge.cities.service import CityRegistry
from surge.db import seconds_between
from surge.loops import run_forever
from surge.reasons import Reason
from surge.settings import Settings
from surge.state.base import HotState

log = logging.getLogger(__name__)

HISTORY_S = 3600.0  # how far back the samples go
MAX_SAMPLES = 7200  # the ring's bound, whatever the survey interval


@dataclass(frozen=True, slots=True)
class Survey:
    """One round of readings: ranked, with the elected city and when it was taken."""

    at: datetime
    readings: tuple[pressure.Reading, ...]
    loads: tuple[pressure.CityLoad, ...]
    elected: str | None


@dataclass(frozen=True, slots=True)
class CitySample:
    """One city's figures in one survey, as the history keeps them."""

    waiting: int
    longest_wait_s: float
    agents_free: int
    agents_busy: int
    score: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One survey, reduced to what the history charts need."""

    at: datetime
    cities: Mapping[str, CitySample]

    @classmethod
    def of(cls, survey: Survey) -> Sample:
        """The sample of a survey."""
        scores = {reading.code: reading.score for reading in survey.readings}
        return cls(
            at=survey.at,
            cities={
                load.code: CitySample(
                    waiting=load.waiting,
                    longest_wait_s=round(load.longest_wait_s, 1),
                    agents_free=load.agents_free,
                    agents_busy=load.agents_busy,
                    score=scores.get(load.code, 0.0),
                )
                for load in survey.loads
            },
        )


async def recent_figures(
    *, session: AsyncSession, now: datetime
) -> dict[str, tuple[int, int, int, float | None]]:
    """Per city: arrivals in 15 minutes, received and answered in the hour, and the hour's AHT."""
    hour_ago, quarter_ago = now - timedelta(hours=1), now - timedelta(minutes=15)
    completed = Call.status == CallStatus.COMPLETED.value
    dialect = session.get_bind().dialect.name
    handling = seconds_between(dialect, Call.ended_at, Call.connected_at)
    rows = await session.execute(
        select(
            Call.city_code,
            func.sum(case((Call.received_at >= quarter_ago, 1), else_=0)),
            func.count(),
            func.count(Call.connected_at),
            func.avg(case((completed, handling), else_=None)),
        )
        .where(Call.received_at >= hour_ago)
        .group_by(Call.city_code)
    )
    return {
        city: (int(quarter), int(received), int(answered), None if aht is None else float(aht))
        for city, quarter, received, answered, aht in rows
    }


class PressureMonitor:
    """Reads every city's pressure on a schedule and keeps the latest survey."""

    def __init__(
        self,
        *,
        settings: Settings,
        state: HotState,
        sessions: async_sessionmaker[AsyncSession],
        cities: CityRegistry,
    ) -> None:
        self._settings = settings
        self.thresholds = pressure.Thresholds.from_settings(settings)
        self._state = state
        self._sessions = sessions
        self._cities = cities
        self.latest: Survey | None = None
        self.after_survey: Callable[[Survey], Awaitable[None]] | None = None
        self._stopping = False
        # Room for an hour at the survey interval, twice over (on-demand surveys add some).
        size = 2 * math.ceil(HISTORY_S / settings.pressure_interval_s) + 8
        self._history: deque[Sample] = deque(maxlen=min(MAX_SAMPLES, size))
        self._under_since: dict[str, datetime] = {}  # city -> first survey under the release

    def stop(self) -> None:
        """Ask the loop to end after its current survey."""
        self._stopping = True

    async def survey(self) -> Survey:
        """Read every city now and elect (the previous elected city is the incumbent)."""
        now = datetime.now(UTC)
        views = await self._state.snapshot(self._cities.codes, queue_depth=0)
        async with self._sessions() as session:
            recent = await recent_figures(session=session, now=now)
        loads = []
        for code in self._cities.codes:
            city = await self._cities.require(code)
            view = views[code]
            quarter, received, answered, aht = recent.get(code, (0, 0, 0, None))
            oldest = view.oldest_enqueued_at
            loads.append(
                pressure.CityLoad(
                    code=code,
                    waiting=view.waiting,
                    longest_wait_s=max(0.0, now.timestamp() - oldest) if oldest else 0.0,
                    arrivals_15min=quarter,
                    normal_rate_per_hour=city.normal_rate_per_hour,
                    agents_free=len(view.idle),
                    agents_busy=view.offered + view.busy,
                    received_1h=received,
                    answered_1h=answered,
                    aht_s=aht if aht and aht > 0 else self._settings.default_aht_s,
                )
            )
        thresholds = self.thresholds
        readings = pressure.rank(pressure.read_all(loads, thresholds))
        for reading in readings:
            if reading.score < thresholds.release_score:
                self._under_since.setdefault(reading.code, now)
            else:
                self._under_since.pop(reading.code, None)
        incumbent = self.latest.elected if self.latest else None
        elected = pressure.elect(readings, incumbent=incumbent, thresholds=thresholds)
        if elected != incumbent:
            log.info("elected city: %s (was %s)", elected, incumbent)
        self.latest = Survey(at=now, readings=tuple(readings), loads=tuple(loads), elected=elected)
        self._remember(self.latest)
        return self.latest

    def _remember(self, survey: Survey) -> None:
        """Add the survey to the history ring and drop samples older than the hour."""
        self._history.append(Sample.of(survey))
        horizon = survey.at - timedelta(seconds=HISTORY_S)
        while self._history and self._history[0].at < horizon:
            self._history.popleft()

    def history(self, *, city: str, since: datetime) -> list[tuple[datetime, CitySample]]:
        """This instance's samples of one city taken since `since`, oldest first."""
        found = [
            (sample.at, sample.cities[city])
            for sample in self._history
            if sample.at >= since and city in sample.cities
        ]
        return sorted(found, key=lambda item: item[0])

    def release(self, host: str, *, since: datetime) -> pressure.Release:
        """Whether a surge's host could let its helpers go (under the threshold since `since`)."""
        latest = self.latest
        reading = next((r for r in latest.readings if r.code == host), None) if latest else None
        if latest is None or reading is None:
            unread = Reason("no_reading", {}, "no pressure reading yet")
            return pressure.Release(False, (unread,))
        under = self._under_since.get(host)
        under_for_s = None
        if under is not None:
            under_for_s = max(0.0, (latest.at - max(under, since)).total_seconds())
        return pressure.suggest_release(
            reading, under_for_s=under_for_s, thresholds=self.thresholds
        )

    async def current(self) -> Survey:
        """The latest survey, taken now if there is none yet or it is stale."""
        latest = self.latest
        stale = 2 * self._settings.pressure_interval_s
        if latest is None or time.time() - latest.at.timestamp() > stale:
            return await self.survey()
        return latest

    async def run(self) -> None:
        """Survey every `pressure_interval_s` until stopped (a task)."""

        async def step() -> None:
            survey = await self.survey()
            if self.after_survey is not None:
                await self.after_survey(survey)
            await asyncio.sleep(self._settings.pressure_interval_s)

        await run_forever("pressure survey", step, stopping=lambda: self._stopping)
