"""Hot issues from the database: the completed tickets of the windows, the verdict, the alert.

The tickets are read by the partial index of completed calls by `ended_at`
(`ix_call_completed_ended_at`), over the hour and its baseline only; the verdict is
`detection.detect`. `HotspotWatch` announces what appeared since the previous check to every
coordinator's stream: one instance per check, whichever takes the check's turn in the hot state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.events import Announce, to_admins
from surge.hotspots.detection import Hotspot, Rules, Ticket, appeared, detect, question_terms
from surge.loops import run_forever
from surge.scripts.classification import Classification
from surge.seats import frames
from surge.settings import Settings
from surge.state.base import HotState

log = logging.getLogger(__name__)

_CALL = Call.metadata.tables["call"]
CHECK_TURN = "hotspot-check"
"""The hot state's counter whose first hit in each check interval makes that instance check."""


def rules(settings: Settings) -> Rules:
    """The detection rules the settings give (`SURGE_HOTSPOT_*`)."""
    return Rules(
        window_s=settings.hotspot_window_s,
        baseline_s=settings.hotspot_baseline_s,
        min_tickets=settings.hotspot_min_tickets,
        min_count=settings.hotspot_min_count,
        min_lift=settings.hotspot_min_lift,
        min_rise=settings.hotspot_min_rise,
        baseline_floor=settings.hotspot_baseline_floor,
    )


async def tickets(
    *, session: AsyncSession, since: float, until: float, city: str | None = None
) -> list[Ticket]:
    """The tickets completed in [since, until] (epoch seconds), of one city or all.

    Their summaries are cut into terms in a worker thread: a big day's window is a hundred
    thousand summaries, seconds of work the event loop must not wait for.
    """
    query = select(
        _CALL.c.city_code, _CALL.c.ended_at, _CALL.c.category_code, _CALL.c.summary
    ).where(
        _CALL.c.status == CallStatus.COMPLETED.value,
        _CALL.c.ended_at >= datetime.fromtimestamp(since, UTC),
        _CALL.c.ended_at <= datetime.fromtimestamp(until, UTC),
    )
    if city is not None:
        query = query.where(_CALL.c.city_code == city)
    rows = (await session.execute(query)).all()
    return await asyncio.to_thread(_as_tickets, rows)


def _as_tickets(rows: Sequence[Row[str, datetime, str | None, str | None]]) -> list[Ticket]:
    """The rows as tickets, each distinct summary cut once (a hot issue's tickets often carry
    the same words, copied from the script entry that answers it)."""
    cut: dict[str | None, frozenset[str]] = {}
    made = []
    for code, ended, category, summary in rows:
        found = cut.get(summary)
        if found is None:
            found = cut[summary] = question_terms(summary)
        made.append(Ticket(code, ended.timestamp(), category, found))
    return made


async def current(
    *, session: AsyncSession, rules: Rules, now: float, city: str | None = None
) -> list[Hotspot]:
    """The hotspots at `now`, of one city or province-wide (the verdict in a worker thread)."""
    found = await tickets(
        session=session, since=now - rules.window_s - rules.baseline_s, until=now, city=city
    )
    return await asyncio.to_thread(detect, found, now=now, rules=rules, city=city)


def item(spot: Hotspot, classification: Classification) -> frames.HotspotItem:
    """A hotspot as the API lists it and the frame carries it, named in both languages."""
    label: frames.HotspotLabel = {"zh": spot.key, "en": spot.key}
    category = classification.categories.get(spot.key) if spot.kind == "category" else None
    if category is not None:
        label = {"zh": category.name, "en": category.name_en or category.name}
    return {
        "kind": "category" if spot.kind == "category" else "term",
        "key": spot.key,
        "label": label,
        "count": spot.count,
        "share": round(spot.share, 4),
        "baseline_share": round(spot.baseline_share, 4),
        "lift": round(spot.lift, 2),
        "rise": round(spot.rise, 4),
        "cities": list(spot.cities),
        "province": spot.province,
    }


class HotspotWatch:
    """At every multiple of `SURGE_HOTSPOT_CHECK_S` (wall time), tells the coordinators of the
    hotspots that appeared.

    Every instance wakes at the same instants; the first to count a hit on the check's turn in
    the hot state checks, the others skip. What appeared is what is hot at this instant and was
    not at the previous one (both computed from one read), so it does not depend on which
    instance checked last: a hotspot that stays is not announced again; one that cools down and
    comes back is. (An instant at which no instance ran is not made up for.)
    """

    def __init__(
        self,
        *,
        settings: Settings,
        state: HotState,
        sessions: async_sessionmaker[AsyncSession],
        classification: Classification,
        announce: Announce,
    ) -> None:
        self._settings = settings
        self._state = state
        self._sessions = sessions
        self._classification = classification
        self._announce = announce
        self._rules = rules(settings)
        self._stopping = False

    def stop(self) -> None:
        """Ask the loop to end."""
        self._stopping = True

    async def run(self) -> None:
        """Check at every instant of the schedule this instance takes the turn of, until stopped."""
        interval = self._settings.hotspot_check_s

        async def step() -> None:
            await asyncio.sleep(interval - time.time() % interval)
            instant = round(time.time() / interval) * interval  # the one just reached
            # The turn lasts half an interval: over before the next instant begins.
            if await self._state.count_hit(CHECK_TURN, window_s=interval / 2) == 1:
                await self.check(instant)

        await run_forever("hotspot check", step, stopping=lambda: self._stopping)

    async def check(self, now: float) -> Sequence[Hotspot]:
        """Announce the hotspots at `now` that were not one interval before; return them."""
        rules, interval = self._rules, self._settings.hotspot_check_s
        since = now - interval - rules.window_s - rules.baseline_s
        async with self._sessions() as session:
            read = await tickets(session=session, since=since, until=now)
        new = await asyncio.to_thread(
            lambda: appeared(
                detect(read, now=now - interval, rules=rules), detect(read, now=now, rules=rules)
            )
        )
        if new:
            log.info("hotspots appeared: %s", ", ".join(spot.key for spot in new))
            await self._announce(
                [
                    to_admins(None, frames.hotspot(at=now, item=item(spot, self._classification)))
                    for spot in new
                ]
            )
        return new
