"""Optional automatic surge policies (off by default), run after each pressure survey.

- `SURGE_AUTO_SURGE`: start a surge for the elected city (while it is over) with the proposed
  waves.
- `SURGE_AUTO_NEXT_WAVE_AFTER_S`: activate a surge's next wave once its host has stayed over the
  thresholds that long, both since it went over and since the last wave started.

Each action is taken as `system` and written to the audit log with the readings' reasons. With
several instances each may try; the database lets one win (a second surge for a host is refused).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge import events
from surge.cities import pressure
from surge.cities.monitor import Survey
from surge.cities.service import CityRegistry
from surge.errors import Conflict
from surge.settings import Settings
from surge.surges import service as surges_service
from surge.surges.schemas import SurgeCreate, WaveCreate

log = logging.getLogger(__name__)

SYSTEM = surges_service.SYSTEM


class Autopilot:
    """Takes the automatic surge actions the settings allow."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        cities: CityRegistry,
        announce: events.Announce,
    ) -> None:
        self._settings = settings
        self._thresholds = pressure.Thresholds.from_settings(settings)
        self._sessions = sessions
        self._cities = cities
        self._announce = announce
        self._over_since: dict[str, datetime] = {}

    @property
    def enabled(self) -> bool:
        """Whether any automatic policy is on."""
        s = self._settings
        return s.auto_surge or s.auto_next_wave_after_s is not None

    async def __call__(self, survey: Survey) -> None:
        """Act on a fresh survey."""
        for reading in survey.readings:
            if reading.over:
                self._over_since.setdefault(reading.code, survey.at)
            else:
                self._over_since.pop(reading.code, None)
        if not self.enabled:
            return
        out: list[events.Event] = []
        try:
            async with self._sessions() as session, session.begin():
                live = await surges_service.live_surges(session=session)
                active = [surge for surge in live if surge.status == surges_service.ACTIVE]
                elected = survey.elected
                hosts = {surge.host_city for surge in live}  # a draining surge holds its host
                # Only for a city over now: the hysteresis may keep a drained one elected.
                over = {reading.code for reading in survey.readings if reading.over}
                if self._settings.auto_surge and elected is not None and elected in over - hosts:
                    out += await self._start(session, survey, elected)
                if self._settings.auto_next_wave_after_s is not None:
                    for surge in active:
                        out += await self._next_wave(session, survey, surge.id)
        except Conflict as exc:  # another instance acted first, or nobody can help
            log.info("autopilot stood down: %s", exc.message)
            return
        if out:
            await self._announce([*out, events.SURGES_CHANGED])

    def _reasons(self, survey: Survey, code: str) -> str:
        reading = next(r for r in survey.readings if r.code == code)
        return "; ".join(reading.reasons)

    async def _start(self, session: AsyncSession, survey: Survey, host: str) -> list[events.Event]:
        proposal, _ = await surges_service.propose(
            session=session, survey=survey, host=host, thresholds=self._thresholds
        )
        if not proposal.waves:
            log.warning("autopilot: %s is elected but no city can help now", host)
            return []
        payload = SurgeCreate(
            host_city=host,
            waves=[
                WaveCreate(
                    cities=[offer.code for offer in wave],
                    seats_per_city=min(offer.suggested_seats for offer in wave),
                )
                for wave in proposal.waves
            ],
            reason=f"elected automatically: {self._reasons(survey, host)}",
        )
        surge, out = await surges_service.create(
            session=session, registry=self._cities, payload=payload, actor=SYSTEM
        )
        log.info("autopilot started surge %s for %s", surge.id, host)
        return out

    async def _next_wave(
        self, session: AsyncSession, survey: Survey, surge_id: int
    ) -> list[events.Event]:
        surge = await surges_service.get(session=session, surge_id=surge_id)
        pending = [wave for wave in surge.waves if wave.activated_at is None]
        since = self._over_since.get(surge.host_city)
        if not pending or since is None:
            return []
        started = max(w.activated_at for w in surge.waves if w.activated_at is not None)
        wait = self._settings.auto_next_wave_after_s or 0.0
        if (survey.at - max(since, started)).total_seconds() < wait:
            return []
        _, out = await surges_service.activate_wave(
            session=session,
            surge_id=surge.id,
            number=pending[0].number,
            actor=SYSTEM,
            reason=f"over the thresholds for {wait:g} s: {self._reasons(survey, surge.host_city)}",
        )
        return out
