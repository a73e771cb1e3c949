"""A reason the service gives, in English words and as a code with its figures.

The contract's reason fields are English sentences (`reasons: [...]`). The consoles speak
Chinese and English, so each reason also travels as `{"code", "params"}`, which a console
translates. The words and the code are made together, by the rule that gives the reason, so
they cannot say different things.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

Param: TypeAlias = int | float | str


@dataclass(frozen=True, slots=True)
class Reason:
    """Why, as a code and its figures (`params`), and as the English sentence (`text`)."""

    code: str
    params: Mapping[str, Param]
    text: str
