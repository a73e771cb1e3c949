"""Script search benchmark: one query over a 5,000-entry book (target: under 50 ms).

Run: `python -m loadtests.scripts` (part of `make bench`).
"""

from __future__ import annotations

import random
import statistics
import time

from surge.scripts.search import BookIndex

TOPICS = ["核酸检测", "健康码", "隔离政策", "疫苗接种", "物资保障", "交通出行", "社保医保",
          "住房公积金", "消费维权", "办事指南"]  # fmt: skip
PLACES = ["鼓楼区", "玄武区", "秦淮区", "建邺区", "江宁区", "浦口区", "栖霞区", "雨花台区"]


def book(size: int, seed: int = 1) -> list[dict[str, object]]:
    """A city's book of `size` entries in Chinese, with some English."""
    rng = random.Random(seed)
    entries: list[dict[str, object]] = []
    for i in range(size):
        topic, place = rng.choice(TOPICS), rng.choice(PLACES)
        entries.append({
            "key": f"k{i}", "title": f"{place}{topic}问题{i}",
            "question": f"请问{place}的{topic}怎么办理？需要带什么材料？",
            "answer": f"{place}{topic}请通过“我的南京”App办理，或拨打12345转接。" * 3,
            "category_code": "0101", "tags": [topic, place, "faq"],
        })  # fmt: skip
    return entries


def main() -> None:
    """Index a 5,000-entry book, then time queries."""
    index = BookIndex()
    started = time.perf_counter()
    index.add("320100", 1, book(5000))
    indexed_ms = (time.perf_counter() - started) * 1000
    timings = []
    for query in ["核酸检测", "江宁区健康码", "隔离", "公积金 materials", "faq"] * 20:
        started = time.perf_counter()
        index.search("320100", 1, query, limit=20)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    median, p99 = statistics.median(timings), timings[int(len(timings) * 0.99) - 1]
    verdict = "PASS" if p99 < 50 else "MISS"
    print(
        f"script search: 5000 entries (indexed once in {indexed_ms:.0f} ms): "
        f"median {median:.1f} ms, p99 {p99:.1f} ms (target < 50 ms) {verdict}"
    )


if __name__ == "__main__":
    main()
