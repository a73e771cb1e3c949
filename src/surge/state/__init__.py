"""Hot state: the interface and its value types; import an adapter from its own module."""

from surge.state.base import (
    MAX_PRIORITY,
    AgentPresence,
    AgentState,
    CallLocation,
    CityView,
    HeldOffer,
    HotState,
    IdleAgent,
    Lend,
    OfferClaim,
    Outcome,
    QueuedCall,
    Reaped,
    Withdrawn,
    queue_score,
)

__all__ = [
    "MAX_PRIORITY",
    "AgentPresence",
    "AgentState",
    "CallLocation",
    "CityView",
    "HeldOffer",
    "HotState",
    "IdleAgent",
    "Lend",
    "OfferClaim",
    "Outcome",
    "QueuedCall",
    "Reaped",
    "Withdrawn",
    "queue_score",
]
