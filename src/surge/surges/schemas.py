"""Surge payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
)

from surge.cities.schemas import CityCode
from surge.schemas import ReasonCode, RequestModel


class WaveCreate(RequestModel):
    """A wave of helper cities, each lending `seats_per_city` agents."""

    cities: list[CityCode] = Field(min_length=1, description="helper cities (none may repeat)")
    seats_per_city: StrictInt = Field(ge=1, le=10_000)
    reserve: StrictInt = Field(
        default=0, ge=0, le=10_000, description="free agents each helper keeps for its own calls"
    )


class SurgeCreate(RequestModel):
    """What the coordinator asks for; wave 1 starts at once."""

    host_city: CityCode
    waves: list[WaveCreate] = Field(min_length=1, max_length=12)
    overflow_after_s: StrictFloat = Field(default=0.0, ge=0, le=3600)
    allow_shared_helpers: StrictBool = Field(
        default=False, description="let helpers already serving another surge serve this one too"
    )
    severity: StrictFloat = Field(
        default=1.0,
        gt=0,
        le=10,
        allow_inf_nan=False,
        description="weighs this host's waits against other hosts' on a shared helper",
    )
    callbacks: StrictBool = Field(
        default=False,
        description="every host call abandoned after the short-abandon threshold becomes a"
        " callback (回拨)",
    )
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class SurgeAction(RequestModel):
    """An optional reason for activating a wave or ending a surge (kept in the audit log)."""

    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class HelperRead(BaseModel):
    """A helper city of a wave, how many of its agents serve the host now and have answered."""

    city: str
    seats: int
    in_use: int
    answered: int = Field(
        description="calls of the host its agents answered since the surge began (until it ended)"
    )
    lending: bool | None = Field(
        default=None,
        description="whether its next free agent may serve the host now (null: wave not active)",
    )
    lending_reason: str | None = Field(
        default=None, description="why it lends no agent now (the lender protection's rule)"
    )


class WaveRead(BaseModel):
    """A wave and whether it is active."""

    number: int
    cities: list[str]
    seats_per_city: int
    reserve: int
    active: bool
    activated_at: datetime | None
    helpers: list[HelperRead]


class ReleaseRead(BaseModel):
    """Whether the host could let its helpers go now, and why (or why not)."""

    suggested: bool = Field(
        description="the host's pressure stayed under the release threshold for "
        "SURGE_RELEASE_AFTER_S (as this instance's surveys saw it)"
    )
    reasons: list[str]
    reason_codes: list[ReasonCode] = Field(
        description="the same reasons, in order, as codes with their figures"
    )


class SurgeRead(BaseModel):
    """A surge with its waves and live counts."""

    id: int
    host_city: str
    status: Literal["active", "draining", "ended"] = Field(
        description="draining: ended by the coordinator, helpers finishing the calls in hand"
    )
    overflow_after_s: float
    allow_shared_helpers: bool
    severity: float
    callbacks: bool
    created_by: str
    created_at: datetime
    ended_by: str | None
    ended_at: datetime | None
    host_waiting: int
    waves: list[WaveRead]
    release: ReleaseRead


class HelperOfferRead(BaseModel):
    """A city that could help and with how many agents."""

    city: str
    spare: int
    suggested_seats: int


class ProposedWave(BaseModel):
    """A suggested wave, ready to send in `POST /surges` (edit it first as you see fit)."""

    cities: list[str]
    seats_per_city: int
    helpers: list[HelperOfferRead]


class ProposalRead(BaseModel):
    """Helper cities for a host, most spare capacity first, grouped into waves."""

    host_city: str
    agents_short: int
    waves: list[ProposedWave]
    unavailable: dict[str, str]
    unavailable_codes: dict[str, ReasonCode] = Field(
        description="the same cities left out, each with its reason as a code"
    )


# What-if bounds: beyond them a figure is a typo, not a surge (the load itself is bounded too,
# by `sizing.MAX_ERLANGS`).
MAX_ARRIVALS_PER_HOUR = 100_000.0
MIN_ARRIVALS_PER_HOUR = 0.001  # above 0: fewer are too few to size (a call every six weeks)
MIN_AHT_S, MAX_AHT_S = 1.0, 3_600.0
MIN_PATIENCE_S, MAX_PATIENCE_S = 1.0, 86_400.0
MAX_WITHIN_S = 3_600.0
MAX_HELPER_SEATS = 20_000
MAX_SCENARIOS = 20


class WhatIfTarget(RequestModel):
    """The service level to size for: `service_level` of callers answered within `within_s`."""

    service_level: StrictFloat = Field(
        gt=0, le=1, allow_inf_nan=False, description="a share in (0, 1]; 1 is read as 1 - 1e-6"
    )
    within_s: StrictFloat = Field(ge=0, le=MAX_WITHIN_S, allow_inf_nan=False)


class WhatIfCreate(RequestModel):
    """A what-if: the host, the figures to use instead of its live readings, seats to try."""

    host_city: CityCode
    arrivals_per_hour: StrictFloat | None = Field(
        default=None, ge=0, le=MAX_ARRIVALS_PER_HOUR, allow_inf_nan=False
    )
    aht_s: StrictFloat | None = Field(default=None, ge=MIN_AHT_S, le=MAX_AHT_S, allow_inf_nan=False)
    patience_s: StrictFloat | None = Field(
        default=None, ge=MIN_PATIENCE_S, le=MAX_PATIENCE_S, allow_inf_nan=False
    )
    own_agents: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_HELPER_SEATS,
        description="the host's own agents (extension; default: those logged in now)",
    )
    helper_seats: list[Annotated[StrictInt, Field(ge=0, le=MAX_HELPER_SEATS)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SCENARIOS,
        description="helper seats per scenario, on top of the host's own agents",
    )
    target: WhatIfTarget | None = Field(
        default=None, description="default: SURGE_SERVICE_LEVEL_TARGET within SURGE_SERVICE_LEVEL_S"
    )

    @field_validator("arrivals_per_hour")
    @classmethod
    def _not_too_few(cls, value: float | None) -> float | None:
        if value is not None and 0 < value < MIN_ARRIVALS_PER_HOUR:
            raise ValueError(f"0, or at least {MIN_ARRIVALS_PER_HOUR:g} calls an hour")
        return value


class WhatIfInput(BaseModel):
    """A figure the what-if used and where it came from."""

    value: float | None
    source: Literal["given", "live", "default", "unknown"] = Field(
        description="given in the request; read live from the host; the default (no live "
        "reading); unknown (patience: Erlang C)"
    )


class WhatIfInputs(BaseModel):
    """The figures behind a what-if."""

    arrivals_per_hour: WhatIfInput
    aht_s: WhatIfInput
    patience_s: WhatIfInput
    own_agents: WhatIfInput
    service_level: float
    within_s: float


class WhatIfScenario(BaseModel):
    """The predicted service with the host's own agents and `helper_seats` more."""

    helper_seats: int
    service_level: float = Field(description="share of all callers answered within `within_s`")
    asa_s: float | None = Field(
        description="mean wait of the answered callers (null: infinite, the queue only grows)"
    )
    abandon_rate: float = Field(description="share of callers who hang up (0 under Erlang C)")


class WhatIfRead(BaseModel):
    """Agents the host needs for the target, the helper seats that makes, and each scenario."""

    host_city: str
    method: Literal["erlang_a", "erlang_c"]
    agents_needed: int
    helper_seats_needed: int
    scenarios: list[WhatIfScenario]
    inputs: WhatIfInputs


class AuditRead(BaseModel):
    """One entry of the audit log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    surge_id: int | None
    detail: dict[str, Any]
    reason: str | None
