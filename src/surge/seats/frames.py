"""The websocket protocol: every frame the service sends on `/ws/agent`, `/ws/cti` and
`/ws/admin`, and what it receives.

Each frame is a TypedDict whose `type` is a `Literal`, built only by the keyword-only function
below it, so a frame missing a field does not type-check. The keys are the wire format
(docs/PROTOCOL.md documents each frame; tests/unit/test_protocol.py keeps the two in step).
What an agent's console sends is validated by `surge.seats.schemas.agent_message`
(`AgentMessage`, re-exported here); the telephony and admin streams receive nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NotRequired, TypedDict

import typing_extensions

from surge.seats.schemas import (
    AcceptMessage,
    AgentMessage,
    CompleteMessage,
    DeclineMessage,
    GapMessage,
    ScriptsAckMessage,
    StatusMessage,
    TransferMessage,
)
from surge.state.base import HeldOffer

__all__ = [
    "AcceptMessage",
    "AgentMessage",
    "CompleteMessage",
    "DeclineMessage",
    "GapMessage",
    "ScriptsAckMessage",
    "StatusMessage",
    "TransferMessage",
]

RequeueReason = Literal[
    "declined", "expired", "seat_lost", "surge_ended", "agent_disconnected", "agent_lost",
    "recovered", "logged_out",
]  # fmt: skip
"""Why an offered call went back to the queue (`call.requeued`, and `offer.revoked`)."""
RevokeReason = RequeueReason | Literal["abandoned", "callback_requested", "caller_called_again"]
"""Why an offer was taken back from the agent (`offer.revoked`)."""


def iso(epoch_s: float) -> str:
    """An epoch time as ISO 8601 with offset."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def mask_caller(caller: str) -> str:
    """Hide the middle of a number for helper agents: 13812345678 -> 138****5678."""
    hidden = max(-(-len(caller) // 3), len(caller) - 7)  # at least a third, at most 7 shown
    shown = len(caller) - hidden
    head = shown // 2
    return caller[:head] + "*" * hidden + caller[head + hidden :]


def caller_as_seen(caller: str, *, call_city: str, viewer_city: str | None) -> str:
    """The number in full from the call's own city or province-wide, masked from another city."""
    return caller if viewer_city is None or viewer_city == call_city else mask_caller(caller)


# -- Both sockets --------------------------------------------------------------------------------


class Error(TypedDict):
    """The contract's error body as a frame: a refused message, or why the socket closes."""

    type: Literal["error"]
    code: str
    message: str


def error(*, code: str, message: str) -> Error:
    """The `error` frame."""
    return {"type": "error", "code": code, "message": message}


# -- /ws/agent -----------------------------------------------------------------------------------


class CallBrief(TypedDict):
    """A call as its agent sees it (a helper agent sees the caller's number masked), with its
    priority (0-9, higher first) as the telephony posted it."""

    id: int
    city: str
    caller: str
    channel: str
    priority: int


CallKind = Literal["call", "callback"]
"""What an offer is: a caller waiting on the line, or a callback (回拨) to dial."""


class OfferedCall(CallBrief):
    """An offered call, with how long its caller has waited (a callback: since its arrival; sent
    here by another agent, that agent's note)."""

    waited_s: float
    kind: CallKind
    note: NotRequired[str]


def call_brief(
    *, call_id: int, city: str, caller: str, channel: str, priority: int, agent_city: str
) -> CallBrief:
    """The call as an agent of `agent_city` sees it."""
    shown = caller_as_seen(caller, call_city=city, viewer_city=agent_city)
    return {"id": call_id, "city": city, "caller": shown, "channel": channel, "priority": priority}


class Hello(TypedDict):
    """The first frame on an agent's socket: who it is, its state, its call in hand."""

    type: Literal["hello"]
    agent: str
    agent_id: int
    city: str
    state: str
    call: CallBrief | None
    scripts: dict[str, int]
    required: dict[str, int]  # city -> its required version this agent has not acknowledged


def hello(
    *,
    agent: str,
    agent_id: int,
    city: str,
    state: str,
    call: CallBrief | None,
    scripts: dict[str, int],
    required: dict[str, int],
) -> Hello:
    """The agent's `hello`."""
    return {
        "type": "hello",
        "agent": agent,
        "agent_id": agent_id,
        "city": city,
        "state": state,
        "call": call,
        "scripts": scripts,
        "required": required,
    }


class State(TypedDict):
    """The agent's state, after every change (`reason` when the service put it on break; in
    `wrap_up`, the call wrapped up and the seconds until the wrap-up ends by itself)."""

    type: Literal["state"]
    state: str
    reason: NotRequired[Literal["missed_offer"]]
    call_id: NotRequired[int]
    ends_in_s: NotRequired[float]


def state(*, state: str) -> State:
    """The `state` frame."""
    return {"type": "state", "state": state}


def wrap_up(*, call_id: int, ends_in_s: float) -> State:
    """The agent is wrapping up `call_id`: no offer until it ends (or the agent ends it)."""
    return {
        "type": "state",
        "state": "wrap_up",
        "call_id": call_id,
        "ends_in_s": round(ends_in_s, 3),
    }


def missed_offer() -> State:
    """The agent let an offer expire: it is put on break."""
    return {"type": "state", "state": "break", "reason": "missed_offer"}


class Offer(TypedDict):
    """A call offered to the agent, to accept or decline before it expires."""

    type: Literal["offer"]
    offer_id: str
    call: OfferedCall
    expires_in_s: float
    surge_id: int | None


def offer(held: HeldOffer, *, agent_city: str, surge_id: int | None, now: float) -> Offer:
    """The `offer` frame an agent of `agent_city` receives."""
    call = held.call
    offered: OfferedCall = {
        "id": call.call_id,
        "city": call.city,
        "caller": caller_as_seen(call.caller, call_city=call.city, viewer_city=agent_city),
        "channel": call.channel,
        "priority": call.priority,
        "waited_s": round(max(0.0, now - call.enqueued_at), 3),
        "kind": "callback" if call.callback else "call",
    }
    if call.note is not None:
        offered["note"] = call.note
    return {
        "type": "offer",
        "offer_id": held.offer_id,
        "call": offered,
        "expires_in_s": round(max(0.0, held.expires_at - now), 3),
        "surge_id": surge_id,
    }


class OfferRevoked(TypedDict):
    """An offer the agent can no longer accept."""

    type: Literal["offer.revoked"]
    offer_id: str
    reason: RevokeReason


def offer_revoked(*, offer_id: str, reason: RevokeReason) -> OfferRevoked:
    """The `offer.revoked` frame."""
    return {"type": "offer.revoked", "offer_id": offer_id, "reason": reason}


class CallConnected(TypedDict):
    """The agent's accept was recorded: the call is in hand."""

    type: Literal["call.connected"]
    call_id: int
    call: CallBrief


def call_connected(*, call_id: int, call: CallBrief) -> CallConnected:
    """The agent's `call.connected`."""
    return {"type": "call.connected", "call_id": call_id, "call": call}


class CallCompleted(TypedDict):
    """The agent's call in hand is closed."""

    type: Literal["call.completed"]
    call_id: int


def call_completed(*, call_id: int) -> CallCompleted:
    """The agent's `call.completed`."""
    return {"type": "call.completed", "call_id": call_id}


class CallTransferred(TypedDict):
    """The agent's call in hand went to `to_city`'s queue: it is no longer the agent's."""

    type: Literal["call.transferred"]
    call_id: int
    to_city: str


def call_transferred(*, call_id: int, to_city: str) -> CallTransferred:
    """The agent's `call.transferred`."""
    return {"type": "call.transferred", "call_id": call_id, "to_city": to_city}


class CallbackDialing(TypedDict):
    """The agent accepted a callback: the telephony is dialling the caller."""

    type: Literal["callback.dialing"]
    call_id: int
    call: CallBrief


def callback_dialing(*, call_id: int, call: CallBrief) -> CallbackDialing:
    """The agent's `callback.dialing`."""
    return {"type": "callback.dialing", "call_id": call_id, "call": call}


class CallbackUnreached(TypedDict):
    """The callback being dialled did not reach the caller: the agent is free again."""

    type: Literal["callback.unreached"]
    call_id: int
    retry_in_s: float | None  # when it is offered again; None: no attempt left (`unreached`)


def callback_unreached(*, call_id: int, retry_in_s: float | None) -> CallbackUnreached:
    """The agent's `callback.unreached`."""
    return {"type": "callback.unreached", "call_id": call_id, "retry_in_s": retry_in_s}


class SurgeJoined(TypedDict):
    """The agent's city now helps a host, whose scripts are at `scripts_version`."""

    type: Literal["surge.joined"]
    surge_id: int
    host_city: str
    scripts_version: int


def surge_joined(*, surge_id: int, host_city: str, scripts_version: int) -> SurgeJoined:
    """The `surge.joined` frame."""
    return {
        "type": "surge.joined",
        "surge_id": surge_id,
        "host_city": host_city,
        "scripts_version": scripts_version,
    }


class SurgeLeft(TypedDict):
    """The surge the agent's city helped is ending: no new offers of its host."""

    type: Literal["surge.left"]
    surge_id: int
    host_city: str


def surge_left(*, surge_id: int, host_city: str) -> SurgeLeft:
    """The `surge.left` frame."""
    return {"type": "surge.left", "surge_id": surge_id, "host_city": host_city}


class ScriptChanges(TypedDict):
    """The entry keys a published version added, removed and changed."""

    added: list[str]
    removed: list[str]
    changed: list[str]


class ScriptsUpdated(TypedDict):
    """A city whose scripts the agent uses published a new version."""

    type: Literal["scripts.updated"]
    city: str
    version: int
    changes: ScriptChanges
    required: bool  # no more of the city's calls until the console acknowledges this version


def scripts_updated(
    *, city: str, version: int, changes: ScriptChanges, required: bool
) -> ScriptsUpdated:
    """The `scripts.updated` frame."""
    return {
        "type": "scripts.updated",
        "city": city,
        "version": version,
        "changes": changes,
        "required": required,
    }


# The key `from` is a Python keyword: this frame is declared in the functional form.
Notice = TypedDict(
    "Notice",
    {
        "type": Literal["notice"],
        "id": int,
        "from": str,
        "text": str,
        "at": str,
        "surge_id": NotRequired[int],
        "city": NotRequired[str],
    },
)
"""A supervisor's notice to everyone serving a surge (`surge_id`) or a city (`city`)."""


def notice(
    *, notice_id: int, author: str, text: str, at: float, surge_id: int | None, city: str | None
) -> Notice:
    """The `notice` frame: for a surge's agents (`surge_id`) or a city's (`city`)."""
    frame: Notice = {"type": "notice", "id": notice_id, "from": author, "text": text, "at": iso(at)}
    if surge_id is not None:
        frame["surge_id"] = surge_id
    else:
        assert city is not None, "a notice is for a surge or a city"
        frame["city"] = city
    return frame


class GapRecorded(TypedDict):
    """The agent's knowledge gap (a question the scripts do not answer) reached the host."""

    type: Literal["gap.recorded"]
    call_id: int
    city: str
    question: str


def gap_recorded(*, call_id: int, city: str, question: str) -> GapRecorded:
    """The agent's `gap.recorded`."""
    return {"type": "gap.recorded", "call_id": call_id, "city": city, "question": question}


class GapAnswered(TypedDict):
    """A question the agent raised is answered by the host's scripts from `version` on."""

    type: Literal["gap.answered"]
    city: str
    version: int
    call_id: int
    question: str


def gap_answered(*, city: str, version: int, call_id: int, question: str) -> GapAnswered:
    """The raising agent's `gap.answered`."""
    return {
        "type": "gap.answered",
        "city": city,
        "version": version,
        "call_id": call_id,
        "question": question,
    }


# -- /ws/cti -------------------------------------------------------------------------------------


class CtiHello(TypedDict):
    """The first frame on a telephony stream: the city it follows (None: the whole province)."""

    type: Literal["hello"]
    city: str | None


def cti_hello(*, city: str | None) -> CtiHello:
    """The telephony stream's `hello`."""
    return {"type": "hello", "city": city}


class CtiCallOffered(TypedDict):
    """A call was offered to an agent."""

    type: Literal["call.offered"]
    call_id: int
    at: str
    agent_id: int
    offer_id: str


def cti_call_offered(*, call_id: int, at: float, agent_id: int, offer_id: str) -> CtiCallOffered:
    """The telephony `call.offered`."""
    return {
        "type": "call.offered",
        "call_id": call_id,
        "at": iso(at),
        "agent_id": agent_id,
        "offer_id": offer_id,
    }


class CtiCallConnected(TypedDict):
    """An agent accepted: bridge the voice to its endpoint."""

    type: Literal["call.connected"]
    call_id: int
    at: str
    agent: str
    endpoint: str


def cti_call_connected(*, call_id: int, at: float, agent: str, endpoint: str) -> CtiCallConnected:
    """The telephony `call.connected`."""
    return {
        "type": "call.connected",
        "call_id": call_id,
        "at": iso(at),
        "agent": agent,
        "endpoint": endpoint,
    }


class CtiCallRequeued(TypedDict):
    """An offered call went back to its place in the queue."""

    type: Literal["call.requeued"]
    call_id: int
    at: str
    reason: RequeueReason


def cti_call_requeued(*, call_id: int, at: float, reason: RequeueReason) -> CtiCallRequeued:
    """The telephony `call.requeued`."""
    return {"type": "call.requeued", "call_id": call_id, "at": iso(at), "reason": reason}


class CtiCallAbandoned(TypedDict):
    """The caller hung up before the call was connected."""

    type: Literal["call.abandoned"]
    call_id: int
    at: str


def cti_call_abandoned(*, call_id: int, at: float) -> CtiCallAbandoned:
    """The telephony `call.abandoned`."""
    return {"type": "call.abandoned", "call_id": call_id, "at": iso(at)}


class CtiCallTransferred(TypedDict):
    """An agent sent the connected call to `to_city`'s queue: hold the caller; a
    `call.connected` with the next agent's endpoint follows."""

    type: Literal["call.transferred"]
    call_id: int
    at: str
    from_agent: str
    to_city: str


def cti_call_transferred(
    *, call_id: int, at: float, from_agent: str, to_city: str
) -> CtiCallTransferred:
    """The telephony `call.transferred`."""
    return {
        "type": "call.transferred",
        "call_id": call_id,
        "at": iso(at),
        "from_agent": from_agent,
        "to_city": to_city,
    }


class CtiCallCompleted(TypedDict):
    """A connected call was closed, with its disposition."""

    type: Literal["call.completed"]
    call_id: int
    at: str
    disposition: str


def cti_call_completed(*, call_id: int, at: float, disposition: str) -> CtiCallCompleted:
    """The telephony `call.completed`."""
    return {"type": "call.completed", "call_id": call_id, "at": iso(at), "disposition": disposition}


class CtiCallbackRequested(TypedDict):
    """A call became a callback (回拨), at its original place: asked for, or by abandoning."""

    type: Literal["callback.requested"]
    call_id: int
    at: str
    reason: Literal["requested", "abandoned"]


def cti_callback_requested(
    *, call_id: int, at: float, reason: Literal["requested", "abandoned"]
) -> CtiCallbackRequested:
    """The telephony `callback.requested`."""
    return {"type": "callback.requested", "call_id": call_id, "at": iso(at), "reason": reason}


class CtiCallbackDial(TypedDict):
    """An agent accepted a callback: dial the caller (the full number) and bridge the agent."""

    type: Literal["callback.dial"]
    call_id: int
    agent: str
    endpoint: str
    number: str


def cti_callback_dial(*, call_id: int, agent: str, endpoint: str, number: str) -> CtiCallbackDial:
    """The telephony `callback.dial`."""
    return {
        "type": "callback.dial",
        "call_id": call_id,
        "agent": agent,
        "endpoint": endpoint,
        "number": number,
    }


class CtiCallbackWithdrawn(TypedDict):
    """The caller of a pending callback called again: the callback is withdrawn (abandoned)."""

    type: Literal["callback.withdrawn"]
    call_id: int
    at: str
    new_call_id: int


def cti_callback_withdrawn(*, call_id: int, at: float, new_call_id: int) -> CtiCallbackWithdrawn:
    """The telephony `callback.withdrawn`."""
    return {
        "type": "callback.withdrawn",
        "call_id": call_id,
        "at": iso(at),
        "new_call_id": new_call_id,
    }


class CtiCallUnreached(TypedDict):
    """A callback's last dial-out did not reach the caller: it is `unreached` (final)."""

    type: Literal["call.unreached"]
    call_id: int
    at: str
    attempts: int


def cti_call_unreached(*, call_id: int, at: float, attempts: int) -> CtiCallUnreached:
    """The telephony `call.unreached`."""
    return {"type": "call.unreached", "call_id": call_id, "at": iso(at), "attempts": attempts}


# -- /ws/admin -----------------------------------------------------------------------------------


class AdminHello(TypedDict):
    """The first frame on an admin stream: the role and the city it follows (None: all)."""

    type: Literal["hello"]
    role: str
    city: str | None


def admin_hello(*, role: str, city: str | None) -> AdminHello:
    """The admin stream's `hello`."""
    return {"type": "hello", "role": role, "city": city}


class GapGroup(TypedDict):
    """A group of similar knowledge gaps, as `GET /cities/{code}/scripts/gaps` lists it."""

    id: int
    city: str
    question: str
    count: int
    first_at: str
    last_at: str
    cities: list[str]
    status: str
    answered_version: int | None


class GapRaised(TypedDict):
    """An agent raised a knowledge gap on one of the city's calls: its group as it now is."""

    type: Literal["gap.raised"]
    city: str
    question: str
    raised_by: str
    group: GapGroup


def gap_raised(*, question: str, raised_by: str, group: GapGroup) -> GapRaised:
    """The host admins' `gap.raised`."""
    return {
        "type": "gap.raised",
        "city": group["city"],
        "question": question,
        "raised_by": raised_by,
        "group": group,
    }


# The hotspot item is also `GET /hotspots`'s response model: pydantic reads only the
# typing_extensions TypedDict before Python 3.12.
class HotspotLabel(typing_extensions.TypedDict):
    """A hotspot's name: the category's in Chinese and English, or the term itself in both."""

    zh: str
    en: str


class HotspotItem(typing_extensions.TypedDict):
    """One hot issue, as `GET /hotspots` lists it and the `hotspot` frame carries it."""

    kind: Literal["category", "term"]
    key: str
    label: HotspotLabel
    count: int
    share: float
    baseline_share: float
    lift: float
    rise: float
    cities: list[str]
    province: bool


class HotspotFrame(TypedDict):
    """A hot issue appeared (or became hot in another city)."""

    type: Literal["hotspot"]
    at: str
    hotspot: HotspotItem


def hotspot(*, at: float, item: HotspotItem) -> HotspotFrame:
    """The `hotspot` frame."""
    return {"type": "hotspot", "at": iso(at), "hotspot": item}


AgentFrame = (
    Hello
    | State
    | Offer
    | OfferRevoked
    | CallConnected
    | CallCompleted
    | CallTransferred
    | CallbackDialing
    | CallbackUnreached
    | SurgeJoined
    | SurgeLeft
    | ScriptsUpdated
    | Notice
    | GapRecorded
    | GapAnswered
    | Error
)
"""Every frame an agent's console receives."""
CtiFrame = (
    CtiHello | CtiCallOffered | CtiCallConnected | CtiCallRequeued | CtiCallAbandoned
    | CtiCallTransferred | CtiCallCompleted | CtiCallbackRequested | CtiCallbackDial
    | CtiCallbackWithdrawn | CtiCallUnreached | Error
)  # fmt: skip
"""Every frame a telephony stream receives."""
AdminFrame = AdminHello | GapRaised | HotspotFrame | Error
"""Every frame an admin stream (a city admin's or the coordinator's console) receives."""
Frame = AgentFrame | CtiFrame | AdminFrame
"""Every frame the service sends."""
