"""Events on the bus between service instances, and the websocket frames they carry.

An event says who should get a frame: one agent (`to_agent`) or the telephony streams of a city
(`to_cti`). Whichever instance holds that socket delivers it (`seats.gateway`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from surge.state.base import HeldOffer

Event = dict[str, Any]
Frame = dict[str, Any]


def to_agent(agent_id: int, frame: Frame) -> Event:
    """Deliver `frame` to the agent's console, wherever it is connected."""
    return {"to": "agent", "agent_id": agent_id, "frame": frame}


def to_city_agents(city: str, frame: Frame) -> Event:
    """Deliver `frame` to every connected agent of `city` (e.g. `surge.joined`)."""
    return {"to": "city_agents", "city": city, "frame": frame}


SURGES_CHANGED: Event = {"to": "surges"}  # every instance re-reads the active surges


def to_cti(city: str, frame: Frame) -> Event:
    """Deliver `frame` to the telephony streams of `city` and the province-wide ones."""
    return {"to": "cti", "city": city, "frame": frame}


def iso(epoch_s: float) -> str:
    """An epoch time as ISO 8601 with offset."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def epoch() -> datetime:
    """The start of Unix time, for things that have not happened yet."""
    return datetime.fromtimestamp(0, UTC)


def cti_frame(kind: str, *, call_id: int, at: float, **extra: Any) -> Frame:
    """A telephony lifecycle frame (`call.offered`, `call.connected`, ...)."""
    return {"type": kind, "call_id": call_id, "at": iso(at), **extra}


def error_frame(code: str, message: str) -> Frame:
    """The contract's error body as a websocket frame."""
    return {"type": "error", "code": code, "message": message}


def mask_caller(caller: str) -> str:
    """Hide the middle of a number for helper agents: 13812345678 -> 138****5678."""
    hidden = max(-(-len(caller) // 3), len(caller) - 7)  # at least a third, at most 7 shown
    shown = len(caller) - hidden
    head = shown // 2
    return caller[:head] + "*" * hidden + caller[head + hidden :]


def offer_frame(offer: HeldOffer, *, agent_city: str, surge_id: int | None, now: float) -> Frame:
    """The `offer` frame an agent receives; helper agents see the caller's number masked."""
    call = offer.call
    caller = call.caller if agent_city == call.city else mask_caller(call.caller)
    return {
        "type": "offer",
        "offer_id": offer.offer_id,
        "call": {
            "id": call.call_id,
            "city": call.city,
            "caller": caller,
            "channel": call.channel,
            "waited_s": round(max(0.0, now - call.enqueued_at), 3),
        },
        "expires_in_s": round(max(0.0, offer.expires_at - now), 3),
        "surge_id": surge_id,
    }
