"""Grouping knowledge gaps: the search's terms, minus filler, compared by their Dice coefficient."""

from __future__ import annotations

import pytest

from surge.scripts.gaps import SIMILARITY, closest, gap_terms, similarity


def score(a: str, b: str) -> float:
    return similarity(gap_terms(a), gap_terms(b))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # 核酸 酸检 检测 测点 点在 vs 最近 近的 的核 核酸 酸检 检测 测点 点在: 2·5 / (5 + 8)
        ("核酸检测点在哪里", "最近的核酸检测点在哪", 10 / 13),
        # only 点在 is shared once 在哪 and 哪里 are dropped: 2·1 / (5 + 5)
        ("核酸检测点在哪里", "疫苗接种点在哪里", 0.2),
        # {nearest, testing, site} vs {nearest, covid, testing, site, location}: 2·3 / (3 + 5)
        ("Where is the nearest testing site?", "nearest COVID testing site location", 0.75),
        # {vaccine, site} vs {testing, site}: 2·1 / 4
        ("where is the vaccine site", "Where is the testing site?", 0.5),
        # words and pairs in one question: {健康 康码 么办 yellow} vs {健康 康码 码变 变黄 yellow}
        ("健康码 yellow 怎么办", "健康码变黄 yellow", 2 * 3 / (4 + 5)),
        ("Refund for a cancelled trip", "退票", 0.0),
    ],
)
def test_similarity_of_chinese_and_english_questions(a: str, b: str, expected: float) -> None:
    assert score(a, b) == pytest.approx(expected)
    assert score(b, a) == pytest.approx(expected)


def test_filler_alone_still_matches_itself() -> None:
    assert gap_terms("在哪里") == {"在哪", "哪里"}
    assert score("在哪里", "在哪里") == 1.0
    assert similarity(frozenset(), frozenset()) == 0.0


def test_a_gap_joins_the_most_similar_group_above_the_threshold() -> None:
    groups = [(1, "疫苗接种点在哪里"), (2, "核酸检测点在哪里"), (3, "最近的核酸检测点在哪儿")]
    # 3 is an exact wording (1.0); 2 scores 10/13
    assert closest("最近的核酸检测点在哪", groups) == 3
    assert closest("核酸检测点在哪里？", groups) == 2
    assert closest("高速公路什么时候通行", groups) is None
    assert score("where is the vaccine site", "Where is the testing site?") < SIMILARITY
    # ties go to the older group
    assert closest("testing site", [(7, "testing site"), (5, "testing site")]) == 5
