"""Surge's one error tree. Every error a client can cause maps to a status and a snake_case code.

SurgeError                      500 internal_error
├── BadRequest                  422 invalid_request
│   ├── UnknownCity             422 unknown_city
│   ├── UnknownCategory         422 unknown_category
│   ├── UnknownGap              422 unknown_gap
│   ├── InvalidCursor           422 invalid_cursor
│   ├── TextFramesOnly          422 text_frames_only
│   └── PayloadTooLarge         413 payload_too_large
├── Unauthorized                401 unauthorized
│   └── InvalidCredentials      401 invalid_credentials
├── Forbidden                   403 forbidden
├── NotFound                    404 not_found
├── Conflict                    409 conflict
│   ├── CallNotOpen             409 call_not_open
│   ├── OfferUnavailable        409 offer_unavailable
│   ├── AgentNotPresent         409 agent_not_present
│   ├── AgentEngaged            409 agent_engaged
│   ├── HostInSurge             409 host_in_surge
│   ├── HelperInSurge           409 helper_in_surge
│   ├── SurgeEnded              409 surge_ended
│   ├── StaleVersion            409 stale_version
│   ├── TransferRefused         409 transfer_refused
│   ├── CallNotConnected        409 call_not_connected
│   ├── FeedbackRecorded        409 feedback_recorded
│   ├── IdempotencyConflict     409 idempotency_conflict
│   ├── UsernameTaken           409 username_taken
│   ├── AgentStillPresent       409 agent_present
│   ├── CallbackNotDialing      409 callback_not_dialing
│   ├── CallNotInHand           409 call_not_in_hand
│   └── GapAnswered             409 gap_answered
├── TooManyAttempts             429 too_many_attempts
└── ServiceUnavailable          503 service_unavailable
    └── StateUnavailable        503 state_unavailable

HTTP responses and websocket `error` frames render the same body: {"code", "message"}.
Validation problems are put in words by `describe`, wherever they are found. `responses` declares
in the OpenAPI the error answers a router's routes give, with that body.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from pydantic_core import ErrorDetails


def describe(problem: ErrorDetails, *, whole: str) -> str:
    """One validation problem as "where: what"; `whole` names the thing when it is at fault."""
    where = ".".join(str(part) for part in problem["loc"] if part != "body") or whole
    context = problem.get("ctx", {})
    if problem["type"] == "json_invalid" and "error" in context:
        at = problem["loc"][-1] if problem["loc"] else None
        place = f" at character {at}" if isinstance(at, int) else ""
        return f"{whole}: not valid JSON{place} ({context['error']})"
    if problem["type"] == "value_error" and "error" in context:
        return f"{where}: {context['error']}"  # the validator's own words, without "Value error, "
    return f"{where}: {problem['msg']}"


class SurgeError(Exception):
    """Base of every error Surge raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        """The contract's error object."""
        return {"code": self.code, "message": self.message}


class BadRequest(SurgeError):
    code = "invalid_request"
    status = 422


class UnknownCity(BadRequest):
    code = "unknown_city"


class UnknownCategory(BadRequest):
    code = "unknown_category"


class UnknownGap(BadRequest):
    """A knowledge-gap group the city does not have (unknown, or another city's)."""

    code = "unknown_gap"


class InvalidCursor(BadRequest):
    """A page cursor this API did not give (or one altered since)."""

    code = "invalid_cursor"


class TextFramesOnly(BadRequest):
    """A binary websocket frame: the protocol is JSON in text frames."""

    code = "text_frames_only"


class PayloadTooLarge(BadRequest):
    code = "payload_too_large"
    status = 413


class Unauthorized(SurgeError):
    code = "unauthorized"
    status = 401


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class Forbidden(SurgeError):
    code = "forbidden"
    status = 403


class NotFound(SurgeError):
    code = "not_found"
    status = 404


class Conflict(SurgeError):
    code = "conflict"
    status = 409


class CallNotOpen(Conflict):
    code = "call_not_open"


class OfferUnavailable(Conflict):
    code = "offer_unavailable"


class AgentNotPresent(Conflict):
    code = "agent_not_present"


class AgentEngaged(Conflict):
    code = "agent_engaged"


class HostInSurge(Conflict):
    code = "host_in_surge"


class HelperInSurge(Conflict):
    code = "helper_in_surge"


class SurgeEnded(Conflict):
    code = "surge_ended"


class StaleVersion(Conflict):
    code = "stale_version"


class TransferRefused(Conflict):
    """A transfer that would not help: to the queue the call is already in, or once too often."""

    code = "transfer_refused"


class CallNotConnected(Conflict):
    code = "call_not_connected"


class AgentStillPresent(Conflict):
    code = "agent_present"


class CallbackNotDialing(Conflict):
    """A callback result for a call that is not a callback being dialled."""

    code = "callback_not_dialing"


class CallNotInHand(Conflict):
    """A knowledge gap for a call the agent is neither on nor wrapping up."""

    code = "call_not_in_hand"


class GapAnswered(Conflict):
    """A publish that would answer a knowledge-gap group a publish answered already."""

    code = "gap_answered"


class FeedbackRecorded(Conflict):
    code = "feedback_recorded"


class IdempotencyConflict(Conflict):
    """The key was used before for a different request (Stripe's rule: a key names one body)."""

    code = "idempotency_conflict"


class UsernameTaken(Conflict):
    code = "username_taken"


class TooManyAttempts(SurgeError):
    code = "too_many_attempts"
    status = 429


class ServiceUnavailable(SurgeError):
    code = "service_unavailable"
    status = 503


class StateUnavailable(ServiceUnavailable):
    code = "state_unavailable"


class ErrorDetail(BaseModel):
    """What went wrong: a stable snake_case code for programs, a sentence for people."""

    code: str = Field(examples=["not_found"])
    message: str


class ErrorRead(BaseModel):
    """The contract's error body, the same for every error (and in websocket `error` frames)."""

    error: ErrorDetail


ANY_ROUTE: tuple[type[SurgeError], ...] = (
    Unauthorized,
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    StateUnavailable,
)
"""What every API route may answer: no or a bad token, bad input, a body too large, an outage."""


def responses(*errors: type[SurgeError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for routes that may raise `errors` (and `ANY_ROUTE`'s), by status."""
    codes: dict[int, list[str]] = {}
    for error in (*ANY_ROUTE, *errors):
        if error.code not in codes.setdefault(error.status, []):
            codes[error.status].append(error.code)
    return {
        status: {
            "model": ErrorRead,
            "description": f"{HTTPStatus(status).phrase}: "
            + ", ".join(f"`{code}`" for code in codes[status]),
        }
        for status in sorted(codes)
    }
