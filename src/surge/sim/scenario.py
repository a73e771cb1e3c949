"""Scenario files for `surge simulate` (the format API.md gives), validated with clear errors."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from surge.cities.schemas import CityCode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArrivalWindow(_Strict):
    """Calls arrive as a Poisson stream at `per_hour` from `from_s` to `to_s`."""

    from_s: float = Field(ge=0)
    to_s: float
    per_hour: float = Field(ge=0)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Self:
        if self.to_s <= self.from_s:
            raise ValueError(f"an arrival window must end after it starts ({self.from_s}s)")
        return self


class CityPlan(_Strict):
    """A city: its agents, their mean handling time and wrap-up after each call, its arrivals
    and its callers' patience."""

    code: CityCode
    agents: int = Field(ge=0, le=100_000)
    aht_s: float = Field(gt=0)
    wrap_up_s: float = Field(
        default=0.0, ge=0, le=3600, description="Each of its agents' wrap-up after a call"
    )
    arrivals: list[ArrivalWindow] = Field(default_factory=list)
    patience_s: float | None = Field(default=None, gt=0, description="None: callers never hang up")


class WavePlan(_Strict):
    """A wave of helper cities joining a surge at `at_s`, each with `seats_per_city` seats."""

    at_s: float = Field(ge=0)
    cities: list[CityCode] = Field(min_length=1)
    seats_per_city: int = Field(ge=1)
    reserve: int = Field(
        default=0, ge=0, le=10_000, description="free agents each helper keeps for its own calls"
    )


class SurgePlan(_Strict):
    """A surge for `host_city` starting at `at_s` with its waves."""

    at_s: float = Field(ge=0)
    host_city: CityCode
    waves: list[WavePlan] = Field(min_length=1)
    overflow_after_s: float = Field(default=0.0, ge=0)
    severity: float = Field(default=1.0, gt=0, le=10, description="weighs its callers' waits")
    callbacks: bool = Field(
        default=False,
        description="from its start, the host's callers who give up after the short-abandon"
        " time are called back (回拨) at their place",
    )


class ProtectionPlan(_Strict):
    """The lender protection's guard: a helper under `service_level` over `window_s` lends none."""

    service_level: float = Field(gt=0, le=1)
    window_s: float = Field(default=900.0, gt=0)


class Scenario(_Strict):
    """A whole simulated day (or any span) of a province."""

    seed: int = 0
    duration_s: float = Field(gt=0, le=366 * 86_400)
    service_level_s: float = Field(default=20.0, gt=0)
    cities: list[CityPlan] = Field(min_length=1)
    surges: list[SurgePlan] = Field(default_factory=list)
    protection: ProtectionPlan | None = Field(default=None, description="None: no guard")
    callbacks: bool = Field(
        default=False,
        description="every city's callers who give up after the short-abandon time are called"
        " back (SURGE_CALLBACK_ON_ABANDON)",
    )

    @model_validator(mode="after")
    def _cities_are_consistent(self) -> Self:
        codes = [city.code for city in self.cities]
        if len(set(codes)) != len(codes):
            raise ValueError("each city may appear once in `cities`")
        for surge in self.surges:
            if surge.host_city not in codes:
                raise ValueError(f"surge host {surge.host_city} is not among the cities")
            helpers = [code for wave in surge.waves for code in wave.cities]
            if surge.host_city in helpers:
                raise ValueError(f"surge host {surge.host_city} cannot be its own helper")
            if len(set(helpers)) != len(helpers):
                raise ValueError(
                    f"a helper city appears in two waves of the {surge.host_city} surge"
                )
            unknown = sorted(set(helpers) - set(codes))
            if unknown:
                raise ValueError(f"helper cities {', '.join(unknown)} are not among the cities")
        return self
