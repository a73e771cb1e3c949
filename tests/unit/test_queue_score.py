"""The queue sort key: priority first, then arrival, exact in a float."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.state.base import MAX_PRIORITY, QueuedCall, queue_score

MAX_ID = 2**40 - 1
PRIORITIES = st.integers(min_value=0, max_value=MAX_PRIORITY)
IDS = st.integers(min_value=0, max_value=MAX_ID)


@given(PRIORITIES, PRIORITIES, IDS, IDS)
def test_higher_priority_sorts_first_whatever_the_ids(p1: int, p2: int, id1: int, id2: int) -> None:
    if p1 > p2:
        assert queue_score(p1, id1) < queue_score(p2, id2)
    elif p1 < p2:
        assert queue_score(p1, id1) > queue_score(p2, id2)


@given(PRIORITIES, IDS, IDS)
def test_lower_id_sorts_first_within_a_priority(priority: int, id1: int, id2: int) -> None:
    if id1 < id2:
        assert queue_score(priority, id1) < queue_score(priority, id2)
    elif id1 > id2:
        assert queue_score(priority, id1) > queue_score(priority, id2)
    else:
        assert queue_score(priority, id1) == queue_score(priority, id2)


@given(PRIORITIES, IDS)
def test_score_is_exact(priority: int, call_id: int) -> None:
    score = queue_score(priority, call_id)
    exact = (MAX_PRIORITY - priority) * 2**40 + call_id
    assert score.is_integer()
    assert int(score) == exact
    assert score == float(exact)
    assert int(score) - (MAX_PRIORITY - priority) * 2**40 == call_id


@given(PRIORITIES, IDS, PRIORITIES, IDS)
def test_distinct_pairs_get_distinct_scores_in_tuple_order(
    p1: int, id1: int, p2: int, id2: int
) -> None:
    s1, s2 = queue_score(p1, id1), queue_score(p2, id2)
    assert (s1 == s2) == ((p1, id1) == (p2, id2))
    assert (s1 < s2) == ((-p1, id1) < (-p2, id2))


@given(st.lists(st.tuples(PRIORITIES, IDS), unique=True, max_size=50))
def test_sorting_by_score_is_priority_then_fifo(pairs: list[tuple[int, int]]) -> None:
    by_score = sorted(pairs, key=lambda pair: queue_score(*pair))
    assert by_score == sorted(pairs, key=lambda pair: (-pair[0], pair[1]))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((1, MAX_ID), (0, 0)),
        ((MAX_PRIORITY, MAX_ID), (MAX_PRIORITY - 1, 0)),
        ((MAX_PRIORITY, 0), (MAX_PRIORITY, 1)),
        ((0, MAX_ID - 1), (0, MAX_ID)),
        ((5, 2**39), (4, 0)),
    ],
)
def test_boundaries(first: tuple[int, int], second: tuple[int, int]) -> None:
    assert queue_score(*first) < queue_score(*second)


def test_extremes_stay_below_float_precision_limit() -> None:
    assert queue_score(MAX_PRIORITY, 0) == 0.0
    assert queue_score(0, MAX_ID) == float(MAX_PRIORITY * 2**40 + MAX_ID)
    assert queue_score(0, MAX_ID) < 2**53


@given(PRIORITIES, IDS)
def test_queued_call_score_is_queue_score(priority: int, call_id: int) -> None:
    call = QueuedCall(call_id, "330100", priority, 1_700_000_000.0, "13800000000", "phone")
    assert call.score == queue_score(priority, call_id)
