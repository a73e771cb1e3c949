"""Script search: terms for Chinese and English, and ranking."""

from __future__ import annotations

from typing import Any

from surge.scripts.search import BookIndex, terms


def test_terms_cut_chinese_into_pairs_and_english_into_words() -> None:
    assert terms("核酸检测") == ["核酸", "酸检", "检测"]
    assert terms("码") == ["码"]
    assert terms("Health code 健康码 QR") == ["健康", "康码", "health", "code", "qr"]
    assert terms("  ") == []


def entry(key: str, title: str, answer: str = "请查看公告。", tags: list[str] | None = None
          ) -> dict[str, Any]:  # fmt: skip
    return {"key": key, "title": title, "question": title, "answer": answer,
            "category_code": "0101", "tags": tags or []}  # fmt: skip


def test_titles_and_whole_phrases_rank_first() -> None:
    index = BookIndex()
    index.add("320100", 1, [
        entry("vaccine", "疫苗接种点", answer="核酸检测不需要预约。"),
        entry("testing", "核酸检测点在哪里"),
        entry("codes", "健康码变黄怎么办", tags=["核酸"]),
        entry("english", "Where is the testing site", answer="Use the app."),
    ])  # fmt: skip
    ranked = [hit.entry["key"] for hit in index.search("320100", 1, "核酸检测", limit=10)]
    assert ranked[:2] == ["testing", "vaccine"]
    assert "codes" in ranked  # the tag 核酸 matches one pair
    assert [h.entry["key"] for h in index.search("320100", 1, "testing SITE", limit=5)] == [
        "english"
    ]
    assert index.search("320100", 1, "地铁", limit=5) == []


def test_the_index_keeps_recent_books_only() -> None:
    index = BookIndex(keep=2)
    for version in (1, 2, 3):
        index.add("320100", version, [entry("a", "核酸")])
    assert not index.has("320100", 1)
    assert index.has("320100", 3)
