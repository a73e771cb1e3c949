"""The call-transition table: every rule a move of `MOVES`, every move made by a rule, every
requeue reason given its frames, and docs/PROTOCOL.md's table the code's, row for row."""

from __future__ import annotations

import inspect
from collections import Counter
from typing import get_args

from surge.calls.lifecycle import MOVES, CallStatus
from surge.calls.transitions import AGENT_MOVES_ONLY, CALL_RULES, REQUEUES, CallRule, Transitions
from surge.seats.frames import RequeueReason
from tests.helpers import protocol_table

HEADER = "| by | from | to | reason | when |"


def test_every_rule_is_a_move_the_state_machine_allows() -> None:
    for rule in CALL_RULES:
        assert rule.sources, rule
        for source in rule.sources:
            assert rule.target in MOVES[source], (rule.by, source, rule.target)


def test_every_move_of_the_state_machine_is_made_by_a_rule() -> None:
    made = {(source, rule.target) for rule in CALL_RULES for source in rule.sources}
    allowed = {(source, target) for source, targets in MOVES.items() for target in targets}
    assert made == allowed


def test_the_rules_name_exactly_the_transitions() -> None:
    public = {
        name
        for name, member in inspect.getmembers(Transitions, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    assert {by for rule in CALL_RULES for by in rule.by} == public - AGENT_MOVES_ONLY
    assert public >= AGENT_MOVES_ONLY


def test_each_requeue_reason_has_one_rule_and_its_frames() -> None:
    # A requeue ends an offer; a callback queued (requested, or due again) is none.
    requeues = Counter(
        rule.reason
        for rule in CALL_RULES
        if rule.target is CallStatus.QUEUED and rule.sources == {CallStatus.OFFERED}
    )
    assert requeues == Counter(get_args(RequeueReason))  # each reason once
    assert set(REQUEUES) == set(get_args(RequeueReason))


def row(rule: CallRule) -> str:
    """The rule as the document's table writes it."""
    by = ", ".join(f"`{name}`" for name in rule.by)
    sources = ", ".join(sorted(source.value for source in rule.sources))
    reason = "-" if rule.reason is None else f"`{rule.reason}`"
    return f"| {by} | {sources} | {rule.target.value} | {reason} | {rule.when} |"


def test_the_document_lists_the_call_transitions_of_the_code() -> None:
    assert protocol_table(HEADER) == [row(rule) for rule in CALL_RULES]
