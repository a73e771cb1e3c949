"""Events on the bus between service instances, each carrying a websocket frame.

An event says who should get a frame: one agent (`to_agent`) or the telephony streams of a city
(`to_cti`). Whichever instance holds that socket delivers it (`seats.gateway`). The frames
themselves are built in `surge.seats.frames`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from surge.seats.frames import AgentFrame, CtiFrame

Event = dict[str, Any]


def to_agent(agent_id: int, frame: AgentFrame) -> Event:
    """Deliver `frame` to the agent's console, wherever it is connected."""
    return {"to": "agent", "agent_id": agent_id, "frame": frame}


def to_city_agents(city: str, frame: AgentFrame) -> Event:
    """Deliver `frame` to every connected agent of `city` (e.g. `surge.joined`)."""
    return {"to": "city_agents", "city": city, "frame": frame}


SURGES_CHANGED: Event = {"to": "surges"}  # every instance re-reads the active surges


def to_cti(city: str, frame: CtiFrame) -> Event:
    """Deliver `frame` to the telephony streams of `city` and the province-wide ones."""
    return {"to": "cti", "city": city, "frame": frame}


def epoch() -> datetime:
    """The start of Unix time, for things that have not happened yet."""
    return datetime.fromtimestamp(0, UTC)
