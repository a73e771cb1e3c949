"""docs/PROTOCOL.md documents exactly the frames the code sends and the messages it accepts."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from surge.seats import frames, schemas

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
AGENT_SENT = "/ws/agent: frames the service sends"
AGENT_RECEIVED = "/ws/agent: messages the console sends"
CTI_SENT = "/ws/cti: frames the service sends"
ADMIN_SENT = "/ws/admin: frames the service sends"


def documented() -> dict[str, set[str]]:
    """The `### \\`type\\`` headings under each `## ` section of the protocol document."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), set())
        elif line.startswith("### ") and current is not None:
            heading = re.fullmatch(r"### `([a-z.]+)`", line.strip())
            if heading:
                current.add(heading.group(1))
    return sections


def tags(union: object) -> set[str]:
    """The `type` literal of each TypedDict or pydantic model in a union."""
    found: set[str] = set()
    for member in typing.get_args(union):
        hints = typing.get_type_hints(member)
        (tag,) = typing.get_args(hints["type"])
        found.add(tag)
    return found


def test_every_frame_union_member_has_one_type_literal() -> None:
    assert tags(frames.AgentFrame) >= {"hello", "offer", "surge.joined", "error"}
    assert tags(frames.CtiFrame) >= {"hello", "call.offered", "error"}
    assert tags(frames.AdminFrame) >= {"hello", "gap.raised", "hotspot", "error"}
    assert tags(frames.Frame) == (
        tags(frames.AgentFrame) | tags(frames.CtiFrame) | tags(frames.AdminFrame)
    )


@pytest.mark.parametrize(
    ("section", "union"),
    [
        (AGENT_SENT, frames.AgentFrame),
        (CTI_SENT, frames.CtiFrame),
        (ADMIN_SENT, frames.AdminFrame),
        (AGENT_RECEIVED, typing.get_args(schemas.AgentMessage)[0]),
    ],
)
def test_the_document_lists_exactly_what_the_code_sends_and_accepts(
    section: str, union: object
) -> None:
    sections = documented()
    assert section in sections, f"docs/PROTOCOL.md has no section '## {section}'"
    in_code = tags(union)
    in_doc = sections[section]
    assert in_code - in_doc == set(), f"undocumented in '{section}'"
    assert in_doc - in_code == set(), f"documented in '{section}' but not in the code"


def test_every_typeddict_frame_in_the_module_is_in_a_union() -> None:
    # A frame class left out of the unions would be sendable without being documented.
    classes = {
        obj
        for obj in vars(frames).values()
        if isinstance(obj, type)
        and typing.is_typeddict(obj)
        and "type" in typing.get_type_hints(obj)
    }
    assert classes == set(typing.get_args(frames.Frame))
