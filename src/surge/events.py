"""Events on the bus between service instances, each carrying a websocket frame.

An event says who should get a frame: one agent (`to_agent`), the telephony streams of a city
(`to_cti`) or the admin streams following a city (`to_admins`). Whichever instance holds that
socket delivers it (`seats.gateway`). The frames themselves are built in `surge.seats.frames`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, final

from surge.seats.frames import AdminFrame, AgentFrame, CtiFrame


@final
class ToAgent(TypedDict):
    """A frame for one agent's console."""

    to: Literal["agent"]
    agent_id: int
    frame: AgentFrame


@final
class CloseAgent(TypedDict):
    """Close one agent's console (it opened another elsewhere, or a supervisor logged it out)."""

    to: Literal["agent"]
    agent_id: int
    close: int


class ToCityAgents(TypedDict):
    """A frame for every connected agent of a city."""

    to: Literal["city_agents"]
    city: str
    frame: AgentFrame


class ToCti(TypedDict):
    """A frame for the telephony streams of a city and the province-wide ones."""

    to: Literal["cti"]
    city: str
    frame: CtiFrame


class ToAdmins(TypedDict):
    """A frame for the admin streams: a city's admins' and the coordinators' (`city` None:
    the coordinators' alone)."""

    to: Literal["admins"]
    city: str | None
    frame: AdminFrame


class SurgesChanged(TypedDict):
    """Every instance re-reads the active surges."""

    to: Literal["surges"]


class ScriptHoldsChanged(TypedDict):
    """Every instance re-reads who is held back by a required script version."""

    to: Literal["holds"]


Event = ToAgent | CloseAgent | ToCityAgents | ToCti | ToAdmins | SurgesChanged | ScriptHoldsChanged

Announce = Callable[[Sequence[Event]], Awaitable[None]]
"""Delivers events to the sockets here and sends the rest to the other instances
(`Gateway.announce`)."""

HandOver = Callable[[Sequence[Event]], Mapping[str, Any] | None]
"""Delivers events to the sockets here and returns the bus message carrying the rest to the other
instances, or None (`Gateway.hand_over`): a transition sends it with its next hot-state step."""


def to_agent(agent_id: int, frame: AgentFrame) -> ToAgent:
    """Deliver `frame` to the agent's console, wherever it is connected."""
    return {"to": "agent", "agent_id": agent_id, "frame": frame}


def close_agent(agent_id: int, code: int) -> CloseAgent:
    """Close the agent's console with `code`, wherever it is connected."""
    return {"to": "agent", "agent_id": agent_id, "close": code}


def to_city_agents(city: str, frame: AgentFrame) -> ToCityAgents:
    """Deliver `frame` to every connected agent of `city` (e.g. `surge.joined`)."""
    return {"to": "city_agents", "city": city, "frame": frame}


SURGES_CHANGED: SurgesChanged = {"to": "surges"}  # every instance re-reads the active surges
SCRIPT_HOLDS_CHANGED: ScriptHoldsChanged = {"to": "holds"}  # and the required-version holds


def to_cti(city: str, frame: CtiFrame) -> ToCti:
    """Deliver `frame` to the telephony streams of `city` and the province-wide ones."""
    return {"to": "cti", "city": city, "frame": frame}


def to_admins(city: str | None, frame: AdminFrame) -> ToAdmins:
    """Deliver `frame` to the admin streams of `city`'s admins and of the coordinators, wherever
    they are connected (`city` None: the coordinators' alone, as for `hotspot`)."""
    return {"to": "admins", "city": city, "frame": frame}


def epoch() -> datetime:
    """The start of Unix time, for things that have not happened yet."""
    return datetime.fromtimestamp(0, UTC)
