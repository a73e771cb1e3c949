"""The call state machine: allowed moves, forbidden moves, sources and terminal statuses."""

from __future__ import annotations

import itertools

import pytest

from surge.calls.lifecycle import (
    MOVES,
    OPEN_STATUSES,
    CallStatus,
    IllegalMove,
    check_move,
    sources_of,
)

QUE, OFF, CON, DONE, ABN, DIAL, REDIAL, UNR = (
    CallStatus.QUEUED,
    CallStatus.OFFERED,
    CallStatus.CONNECTED,
    CallStatus.COMPLETED,
    CallStatus.ABANDONED,
    CallStatus.DIALING,
    CallStatus.REDIAL,
    CallStatus.UNREACHED,
)

# The contract, written out by hand so a change to MOVES has to be made twice, on purpose.
ALLOWED = {(QUE, OFF), (QUE, ABN), (OFF, QUE), (OFF, CON), (OFF, ABN), (CON, DONE)}
# Callbacks (回拨): an abandoned caller is called back; dialled, reached or not, redialled.
ALLOWED |= {(ABN, QUE), (OFF, DIAL), (DIAL, CON), (DIAL, REDIAL), (DIAL, UNR), (REDIAL, QUE)}
ALLOWED |= {(REDIAL, ABN)}  # the caller called again meanwhile
ALLOWED |= {(CON, QUE)}  # a transfer: the call in hand to a city's queue
ALL_PAIRS = list(itertools.product(CallStatus, repeat=2))
TERMINAL = {DONE, UNR}


def test_moves_match_the_contract() -> None:
    assert set(MOVES) == set(CallStatus)
    assert {(s, t) for s, targets in MOVES.items() for t in targets} == ALLOWED


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_allowed_move_passes(source: CallStatus, target: CallStatus) -> None:
    check_move(source, target)


@pytest.mark.parametrize(("source", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_any_other_move_is_illegal(source: CallStatus, target: CallStatus) -> None:
    with pytest.raises(IllegalMove, match=f"from {source} to {target}"):
        check_move(source, target)


@pytest.mark.parametrize("status", list(CallStatus))
def test_no_status_moves_to_itself(status: CallStatus) -> None:
    with pytest.raises(IllegalMove):
        check_move(status, status)


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        (QUE, {OFF, ABN, REDIAL, CON}),
        (OFF, {QUE}),
        (CON, {OFF, DIAL}),
        (DONE, {CON}),
        (ABN, {QUE, OFF, REDIAL}),
        (DIAL, {OFF}),
    ],
)
def test_sources_of(target: CallStatus, sources: set[CallStatus]) -> None:
    assert sources_of(target) == frozenset(sources)
    for source in sources_of(target):
        check_move(source, target)


@pytest.mark.parametrize("target", list(CallStatus))
def test_sources_of_agrees_with_check_move(target: CallStatus) -> None:
    legal: set[CallStatus] = set()
    for source in CallStatus:
        try:
            check_move(source, target)
        except IllegalMove:
            continue
        legal.add(source)
    assert sources_of(target) == legal


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_have_no_moves(status: CallStatus) -> None:
    assert MOVES[status] == frozenset()
    for target in CallStatus:
        with pytest.raises(IllegalMove):
            check_move(status, target)


def test_an_abandoned_call_moves_only_to_its_callback() -> None:
    assert MOVES[ABN] == frozenset({QUE})


def test_terminal_statuses_are_exactly_those_without_moves() -> None:
    assert {s for s, targets in MOVES.items() if not targets} == TERMINAL


def test_open_statuses_are_queued_and_offered() -> None:
    assert frozenset({QUE, OFF}) == OPEN_STATUSES
    assert not OPEN_STATUSES & TERMINAL


def test_every_status_is_reachable_from_queued_and_can_end() -> None:
    reachable = {QUE}
    frontier = [QUE]
    while frontier:
        for target in MOVES[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(CallStatus)
    for status in CallStatus:
        seen, stack = {status}, [status]
        while stack:
            for target in MOVES[stack.pop()] - seen:
                seen.add(target)
                stack.append(target)
        assert seen & TERMINAL, f"{status} can never end"


def test_a_status_without_sources_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every status has a source today; the guard in `sources_of` must still be an IllegalMove.
    monkeypatch.setitem(MOVES, DIAL, frozenset({CON, REDIAL}))  # nothing moves to UNREACHED
    with pytest.raises(IllegalMove, match="no status moves to unreached"):
        sources_of(UNR)
