"""Searching a script book, for agents on a call: Chinese (no spaces) as well as English.

A query is cut into terms: runs of CJK characters become overlapping character pairs (bigrams,
the usual way to index Chinese without a dictionary; a lone character stays itself), other text
becomes lower-cased words. An entry scores each term it contains, weighted by where: title and
tags 3, question 2, answer 1; the whole query found as written adds a bonus. Books are indexed once
per version and kept in memory.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+")
_WEIGHTS = (("title", 3), ("tags", 3), ("question", 2), ("answer", 1))
_PHRASE_BONUS = 5


def terms(text: str) -> list[str]:
    """The search terms of a text: CJK bigrams (or single characters) and lower-cased words."""
    lowered = text.lower()
    found: list[str] = []
    for run in _CJK.findall(lowered):
        found += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    found += _WORD.findall(_CJK.sub(" ", lowered))
    return list(dict.fromkeys(found))  # unique, in order


@dataclass(frozen=True, slots=True)
class _Indexed:
    entry: dict[str, Any]
    fields: tuple[tuple[str, int], ...]  # (lower-cased text, weight)


@dataclass(frozen=True, slots=True)
class Hit:
    """An entry that matched, and how well."""

    entry: dict[str, Any]
    score: int


def _prepare(entry: dict[str, Any]) -> _Indexed:
    fields = tuple(
        (" ".join(entry[name]) if name == "tags" else str(entry[name]), weight)
        for name, weight in _WEIGHTS
    )
    return _Indexed(entry, tuple((text.lower(), weight) for text, weight in fields))


class BookIndex:
    """Indexed script books, one per (city, version), the most recently used kept."""

    def __init__(self, *, keep: int = 64) -> None:
        self._books: OrderedDict[tuple[str, int], tuple[_Indexed, ...]] = OrderedDict()
        self._keep = keep

    def has(self, city: str, version: int) -> bool:
        """Whether this version is indexed already (no need to load its entries)."""
        return (city, version) in self._books

    def add(self, city: str, version: int, entries: list[dict[str, Any]]) -> None:
        """Index a version's entries."""
        self._books[(city, version)] = tuple(_prepare(entry) for entry in entries)
        while len(self._books) > self._keep:
            self._books.popitem(last=False)

    def search(self, city: str, version: int, query: str, *, limit: int) -> list[Hit]:
        """The best matches for `query` in an indexed version, best first (ties: book order)."""
        self._books.move_to_end((city, version))
        wanted = terms(query)
        phrase = query.strip().lower()
        hits: list[Hit] = []
        for item in self._books[(city, version)]:
            score = 0
            for text, weight in item.fields:
                score += weight * sum(1 for term in wanted if term in text)
                if phrase and phrase in text:
                    score += _PHRASE_BONUS * weight
            if score:
                hits.append(Hit(item.entry, score))
        hits.sort(key=lambda hit: -hit.score)
        return hits[:limit]
