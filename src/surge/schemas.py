"""Shared by every request body and websocket message: no unknown field, no text no column holds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from surge.reasons import Reason

NO_NUL = r"^[^\x00]*$"
"""A pattern for text taken outside a body (query parameters): Postgres text cannot hold U+0000."""


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class RequestModel(BaseModel):
    """A request body or message: unknown fields and the character U+0000 anywhere are refused.

    Postgres text cannot hold U+0000 (SQLite can): refused here, bad input is a 422 on both
    backends instead of a database error.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _holds_nul(data):
            raise ValueError("text may not contain the character U+0000")
        return data


class ReasonCode(BaseModel):
    """A reason as a code and its figures, for a console to put in its own language."""

    code: str = Field(description='what the reason is (README, "Reason codes")')
    params: dict[str, int | float | str] = Field(description="the figures its wording needs")

    @classmethod
    def of(cls, reason: Reason) -> ReasonCode:
        """The code of a reason the service gave."""
        return cls(code=reason.code, params=dict(reason.params))
