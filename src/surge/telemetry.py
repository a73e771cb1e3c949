"""The routing events operators watch: each counted (`surge.metrics`) and logged (`surge.logs`)
in one call from the one place it happens, with the call, agent and offer ids, never a caller's
number.

Called on the hot paths: a log line's fields are built only when its level is enabled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from surge import metrics
from surge.state.base import HeldOffer, QueuedCall

log = logging.getLogger("surge.routing")
_INFO = logging.INFO


class EndedOffer(Protocol):
    """An offer that ended: one the hot state held, or one only the database still had."""

    @property
    def offer_id(self) -> str: ...
    @property
    def call(self) -> QueuedCall: ...
    @property
    def agent_id(self) -> int | None: ...


def call_posted(*, call_id: int, city: str, channel: str, priority: int) -> None:
    """A new call was recorded and queued."""
    metrics.CALLS_POSTED.labels(city).inc()
    if log.isEnabledFor(_INFO):
        log.info(
            "call.posted",
            extra={"call_id": call_id, "city": city, "channel": channel, "priority": priority},
        )


def offers_made(offers: Sequence[HeldOffer], *, now: float) -> None:
    """A dispatch cycle's offers were recorded (`now`: when they were claimed)."""
    verbose = log.isEnabledFor(_INFO)
    for offer in offers:
        call = offer.call
        metrics.OFFERS_MADE.labels(call.city).inc()
        metrics.OFFER_WAIT.observe(max(0.0, now - call.enqueued_at))
        if verbose:
            log.info(
                "call.offered",
                extra={
                    "call_id": call.call_id,
                    "city": call.city,
                    "agent_id": offer.agent_id,
                    "offer_id": offer.offer_id,
                    "waited_s": round(now - call.enqueued_at, 3),
                },
            )


def offer_accepted(offer: HeldOffer, *, made_at: float, now: float) -> None:
    """The agent took the offer (made at `made_at`)."""
    metrics.OFFERS_ACCEPTED.labels(offer.call.city).inc()
    metrics.ACCEPT_TIME.observe(max(0.0, now - made_at))
    if log.isEnabledFor(_INFO):
        log.info(
            "call.accepted",
            extra={
                "call_id": offer.call.call_id,
                "city": offer.call.city,
                "agent_id": offer.agent_id,
                "offer_id": offer.offer_id,
            },
        )


def offers_ended(offers: Sequence[EndedOffer], *, reason: str) -> None:
    """Offers ended unanswered; their calls are queued again (`reason`: declined, expired, or
    why they were revoked)."""
    if not offers:
        return
    metrics.OFFERS_ENDED.labels(reason).inc(len(offers))
    if log.isEnabledFor(_INFO):
        event = "call.expired" if reason == "expired" else "call.requeued"
        for offer in offers:
            log.info(
                event,
                extra={
                    "call_id": offer.call.call_id,
                    "city": offer.call.city,
                    "agent_id": offer.agent_id,
                    "offer_id": offer.offer_id,
                    "reason": reason,
                },
            )


def call_completed(*, call_id: int, city: str, agent_id: int, disposition: str) -> None:
    """The agent closed the call's ticket."""
    metrics.CALLS_COMPLETED.labels(city).inc()
    if log.isEnabledFor(_INFO):
        log.info(
            "call.completed",
            extra={
                "call_id": call_id,
                "city": city,
                "agent_id": agent_id,
                "disposition": disposition,
            },
        )


def agent_connected(*, agent_id: int, city: str) -> None:
    """An agent's console connected here."""
    log.info("agent.connected", extra={"agent_id": agent_id, "city": city})


def agent_left(*, agent_id: int, city: str, lost: bool) -> None:
    """An agent's console went away: after a goodbye, or `lost` (it stopped answering)."""
    log.info(
        "agent.lost" if lost else "agent.disconnected", extra={"agent_id": agent_id, "city": city}
    )
