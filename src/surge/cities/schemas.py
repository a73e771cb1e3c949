"""City payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from surge.schemas import ReasonCode

CITY_CODE = r"^[0-9]{6}$"
r"""A city's six-digit code, ASCII digits only (`\d` would let full-width digits through)."""

CityCode = Annotated[str, StringConstraints(pattern=CITY_CODE)]


class PressureRead(BaseModel):
    """A city's pressure reading (`over`, `longest_wait_s`, agents extend the contract)."""

    code: str
    score: float
    over: bool
    waiting: int
    longest_wait_s: float
    predicted_wait_s: float
    arrival_ratio: float
    connection_rate: float | None
    agents_free: int
    agents_busy: int
    capacity_per_hour: float = Field(description="calls an hour its present agents can serve")
    demand_per_hour: float = Field(description="calls an hour arriving (last 15 minutes' rate)")
    shortfall_per_hour: float = Field(
        description="demand over its capacity that the province's free capacity cannot meet"
    )
    reasons: list[str]
    reason_codes: list[ReasonCode] = Field(
        description="the same reasons, in order, as codes with their figures"
    )


class ProvinceRead(BaseModel):
    """The province's totals (extension): what re-routing can and cannot cover."""

    waiting: int
    agents_free: int
    agents_busy: int
    capacity_per_hour: float = Field(description="calls an hour all present agents can serve")
    demand_per_hour: float = Field(description="calls an hour arriving in all cities")
    shortfall_per_hour: float = Field(
        description="the cities' shortfalls added up: the province's demand over its capacity"
    )
    cities_over: int = Field(description="cities over their pressure thresholds")


class PressureBoard(BaseModel):
    """Every city's reading, highest pressure first, the elected city, the province's totals."""

    at: datetime
    cities: list[PressureRead]
    elected: str | None
    province: ProvinceRead


class PressureSample(BaseModel):
    """A city's figures at one survey."""

    at: datetime
    waiting: int
    longest_wait_s: float
    agents_free: int
    agents_busy: int
    score: float


class PressureHistory(BaseModel):
    """A city's samples over the last minutes, oldest first (kept by the answering instance)."""

    city: str
    minutes: int
    samples: list[PressureSample]


class CityRead(BaseModel):
    """A city with its live queue figures (`name_en`, `agents_on_break` extend the contract)."""

    code: str
    name: str
    name_en: str
    seats: int
    waiting: int
    longest_wait_s: float
    agents_available: int
    agents_busy: int
    agents_on_break: int
