"""The province-wide request classification (two levels; consultation or other)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator


class Kind(StrEnum):
    """Whether a request asks for information, or for something to be done."""

    CONSULTATION = "consultation"
    OTHER = "other"


class _Leaf(BaseModel):
    code: str = Field(pattern=r"^[0-9]{4}$")
    name: str = Field(min_length=1)
    name_en: str = ""
    kind: Kind


class _Branch(BaseModel):
    code: str = Field(pattern=r"^[0-9]{2}$")
    name: str = Field(min_length=1)
    name_en: str = ""
    children: list[_Leaf] = Field(min_length=1)

    @model_validator(mode="after")
    def _children_extend_the_code(self) -> _Branch:
        for leaf in self.children:
            if not leaf.code.startswith(self.code):
                raise ValueError(f"category {leaf.code} is not under {self.code}")
        return self


class _File(BaseModel):
    categories: list[_Branch] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Category:
    """A level-2 category: what tickets and script entries carry."""

    code: str
    name: str
    name_en: str
    kind: Kind
    parent: str
    parent_name: str


class Classification:
    """The loaded classification: look codes up, validate them."""

    def __init__(self, categories: dict[str, Category]) -> None:
        self.categories = categories

    @classmethod
    def load(cls, path: Path | None = None) -> Classification:
        """Read the operator's file, or the one shipped with Surge; refuse a malformed one."""
        text = (
            path.read_text(encoding="utf-8")
            if path is not None
            else resources.files("surge.data").joinpath("classification.json").read_text("utf-8")
        )
        try:
            parsed = _File.model_validate(json.loads(text))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"the classification file is not valid: {exc}") from exc
        categories: dict[str, Category] = {}
        for branch in parsed.categories:
            for leaf in branch.children:
                if leaf.code in categories:
                    raise ValueError(f"category {leaf.code} appears twice")
                categories[leaf.code] = Category(
                    leaf.code, leaf.name, leaf.name_en, leaf.kind, branch.code, branch.name
                )
        return cls(categories)

    def unknown(self, codes: set[str]) -> list[str]:
        """The codes that are not level-2 categories, sorted."""
        return sorted(code for code in codes if code not in self.categories)

    def under(self, code: str) -> frozenset[str]:
        """The level-2 codes a code names: itself, or a level-1 code's children (none: unknown)."""
        if code in self.categories:
            return frozenset({code})
        return frozenset(c.code for c in self.categories.values() if c.parent == code)

    def named(self, text: str) -> frozenset[str]:
        """The level-2 codes whose name, English name or parent's name holds `text` (any case)."""
        wanted = text.casefold()
        return frozenset(
            c.code
            for c in self.categories.values()
            if any(wanted in name.casefold() for name in (c.name, c.name_en, c.parent_name))
        )
