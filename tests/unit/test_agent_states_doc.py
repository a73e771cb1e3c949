"""docs/PROTOCOL.md's table of agent moves is `AGENT_RULES`, row for row."""

from __future__ import annotations

from surge.state.base import AGENT_RULES, AgentMove, agent_place
from tests.helpers import protocol_table

HEADER = "| from | to | by | when |"


def row(rule: AgentMove) -> str:
    """The rule as the document's table writes it."""
    sources = ", ".join(sorted(map(agent_place, rule.sources)))
    targets = ", ".join(sorted(map(agent_place, rule.targets)))
    by = ", ".join(f"`{operation}`" for operation in rule.by)
    return f"| {sources} | {targets} | {by} | {rule.when} |"


def test_the_document_lists_the_agent_moves_of_the_code() -> None:
    assert protocol_table(HEADER) == [row(rule) for rule in AGENT_RULES]
