"""City payloads."""

from __future__ import annotations

from pydantic import BaseModel


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
