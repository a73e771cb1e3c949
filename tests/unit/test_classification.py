"""The request classification: the shipped file, an operator's replacement, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surge.scripts.classification import Classification, Kind


def test_the_shipped_classification_has_two_levels_and_both_kinds() -> None:
    loaded = Classification.load()
    testing = loaded.categories["0101"]
    assert (testing.parent, testing.kind) == ("01", Kind.CONSULTATION)
    assert {c.kind for c in loaded.categories.values()} == {Kind.CONSULTATION, Kind.OTHER}
    assert loaded.unknown({"0101", "7777", "01"}) == ["01", "7777"]


def test_an_operator_file_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "ours.json"
    tree = [{"code": "10", "name": "水电气", "children": [
        {"code": "1001", "name": "停水", "kind": "other"}]}]  # fmt: skip
    path.write_text(json.dumps({"categories": tree}, ensure_ascii=False), encoding="utf-8")
    loaded = Classification.load(path)
    assert list(loaded.categories) == ["1001"]
    assert loaded.categories["1001"].parent_name == "水电气"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "not valid"),
        ('{"categories": []}', "not valid"),
        (
            '{"categories": [{"code": "10", "name": "x", "children": '
            '[{"code": "2001", "name": "y", "kind": "other"}]}]}',
            "not under 10",
        ),
        (
            '{"categories": [{"code": "10", "name": "x", "children": '
            '[{"code": "1001", "name": "y", "kind": "gossip"}]}]}',
            "not valid",
        ),
        (
            '{"categories": [{"code": "10", "name": "x", "children": '
            '[{"code": "1001", "name": "y", "kind": "other"}]}, {"code": "10", "name": "z", '
            '"children": [{"code": "1001", "name": "y", "kind": "other"}]}]}',
            "twice",
        ),
    ],
)
def test_a_malformed_file_is_refused_with_a_reason(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=words):
        Classification.load(path)
