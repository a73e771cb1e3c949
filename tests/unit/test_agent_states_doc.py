"""docs/PROTOCOL.md's table of agent moves is `AGENT_RULES`, row for row."""

from __future__ import annotations

from pathlib import Path

from surge.state.base import AGENT_RULES, AgentMove, agent_place

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
HEADER = "| from | to | by | when |"


def row(rule: AgentMove) -> str:
    """The rule as the document's table writes it."""
    sources = ", ".join(sorted(map(agent_place, rule.sources)))
    targets = ", ".join(sorted(map(agent_place, rule.targets)))
    by = ", ".join(f"`{operation}`" for operation in rule.by)
    return f"| {sources} | {targets} | {by} | {rule.when} |"


def documented_rows() -> list[str]:
    """The rows of the agent-moves table, in order."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # past the header and its rule
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_document_lists_the_agent_moves_of_the_code() -> None:
    assert documented_rows() == [row(rule) for rule in AGENT_RULES]
