"""The call state machine: the statuses and the only moves allowed between them."""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """Where a call is in its life."""

    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    # Callbacks (回拨): a callback is queued and offered like a call; once its agent accepts, the
    # telephony dials the caller (`dialing`); not reached, it waits to be dialled again (`redial`),
    # until the attempts run out (`unreached`).
    DIALING = "dialing"
    REDIAL = "redial"
    UNREACHED = "unreached"


class Channel(StrEnum):
    """How the citizen reached the hotline."""

    PHONE = "phone"
    APP = "app"
    WECHAT = "wechat"
    WEB = "web"
    SMS = "sms"


class Disposition(StrEnum):
    """How a handled call ended: answered online, or transferred to the responsible office;
    `released` by a supervisor when its agent was gone (never an agent's own choice)."""

    ANSWERED = "answered"
    TRANSFERRED = "transferred"
    RELEASED = "released"


MOVES: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset({CallStatus.OFFERED, CallStatus.ABANDONED}),
    CallStatus.OFFERED: frozenset(
        {CallStatus.QUEUED, CallStatus.CONNECTED, CallStatus.ABANDONED, CallStatus.DIALING}
    ),
    CallStatus.CONNECTED: frozenset(
        {CallStatus.COMPLETED, CallStatus.QUEUED}
    ),  # QUEUED: transferred
    CallStatus.COMPLETED: frozenset(),
    CallStatus.ABANDONED: frozenset({CallStatus.QUEUED}),  # a callback of the caller who left
    CallStatus.DIALING: frozenset({CallStatus.CONNECTED, CallStatus.REDIAL, CallStatus.UNREACHED}),
    CallStatus.REDIAL: frozenset({CallStatus.QUEUED, CallStatus.ABANDONED}),
    CallStatus.UNREACHED: frozenset(),
}

OPEN_STATUSES = frozenset({CallStatus.QUEUED, CallStatus.OFFERED})
IN_HAND_STATUSES = frozenset({CallStatus.CONNECTED, CallStatus.DIALING})
"""An agent's call in hand: connected, or a callback its telephony is dialling."""
PENDING_CALLBACK_STATUSES = frozenset({CallStatus.QUEUED, CallStatus.OFFERED, CallStatus.REDIAL})
"""A callback not yet dialled: waiting for an agent, or for its next attempt."""


class IllegalMove(Exception):
    """A programming error: code tried a transition the state machine forbids."""


def sources_of(target: CallStatus) -> frozenset[CallStatus]:
    """Every status from which `target` may be reached."""
    sources = frozenset(s for s, targets in MOVES.items() if target in targets)
    if not sources:
        raise IllegalMove(f"no status moves to {target}")
    return sources


def check_move(source: CallStatus, target: CallStatus) -> None:
    """Raise `IllegalMove` unless `source` may move to `target`."""
    if target not in MOVES[source]:
        raise IllegalMove(f"a call cannot move from {source} to {target}")
