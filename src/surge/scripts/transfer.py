"""Script books as files: JSON, and CSV that Excel opens with Chinese intact (UTF-8 with BOM).

CSV columns: key, title, question, answer, category_code, tags (tags separated by `;`).
Reading reports the row (as the spreadsheet numbers it, the header being row 1) and the field of
every problem, so an admin can find it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pydantic import ValidationError

from surge.errors import BadRequest, describe
from surge.scripts.schemas import ScriptEntry

COLUMNS = ("key", "title", "question", "answer", "category_code", "tags")
TAG_SEPARATOR = ";"


def to_csv(entries: list[dict[str, Any]]) -> bytes:
    """The book as CSV, UTF-8 with a byte-order mark so Excel reads it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for entry in entries:
        writer.writerow(
            [TAG_SEPARATOR.join(entry["tags"]) if c == "tags" else entry[c] for c in COLUMNS]
        )
    return out.getvalue().encode("utf-8-sig")


def to_json(entries: list[dict[str, Any]]) -> bytes:
    """The book as JSON (`{"entries": [...]}`), the same shape `POST /scripts` takes."""
    return json.dumps({"entries": entries}, ensure_ascii=False, indent=1).encode("utf-8")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            "the file is not UTF-8; in Excel save it as 'CSV UTF-8 (comma delimited)'"
        ) from exc


def _entry(row: dict[str, Any], where: str) -> ScriptEntry:
    try:
        return ScriptEntry.model_validate(row)
    except ValidationError as exc:
        raise BadRequest(f"{where}, {describe(exc.errors()[0], whole='entry')}") from exc


def from_csv(data: bytes) -> list[ScriptEntry]:
    """Read a CSV book; the header must name the columns (in any order)."""
    reader = csv.DictReader(io.StringIO(_decode(data)))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BadRequest(f"the CSV header lacks the columns: {', '.join(missing)}")
    entries = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise BadRequest(f"row {number}: more cells than columns (an unquoted comma?)")
        tags = [tag.strip() for tag in (row["tags"] or "").split(TAG_SEPARATOR) if tag.strip()]
        entries.append(_entry({c: row[c] for c in COLUMNS[:-1]} | {"tags": tags}, f"row {number}"))
    return entries


def from_json(data: bytes) -> list[ScriptEntry]:
    """Read a JSON book: `{"entries": [...]}` or a bare list of entries."""
    try:
        parsed = json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the file is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    rows = parsed.get("entries") if isinstance(parsed, dict) else parsed
    if not isinstance(rows, list):
        raise BadRequest('a JSON book is a list of entries or {"entries": [...]}')
    return [_entry(row, f"entry {n}") for n, row in enumerate(rows, start=1)]
