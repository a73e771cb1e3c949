"""The README is true of today: what it names exists, and what exists is in it.

Files it names are files of the repository (not of a machine it was written on), its links
lead inside the repository or to one of its own headings, its settings are the `Settings`
fields and its commands the `surge` parser's and the Makefile's targets.
"""

from __future__ import annotations

import re
from pathlib import Path

from surge.cli import build_parser
from surge.settings import Settings
from tests.helpers import surge_commands

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CODE = re.findall(r"`([^`\n]+)`", README)
MADE_AT_RUN_TIME = {".venv/bin/surge", "./surge.db", "test-artifacts/screenshots/"}
"""Paths the README names that a run makes, not the repository."""


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, spaces to hyphens, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_file_the_readme_names_is_in_the_repository() -> None:
    named = {
        token.rstrip(".,:")
        for text in CODE
        for token in text.split()
        if "/" in token
        and not token.startswith(("/", "http", "$", "<", "sip:"))
        and re.search(r"(\.(py|md|json|conf|service|ini|toml)|/)$", token.rstrip(".,:"))
    }
    assert {"tests/integration/test_kill9.py", "src/surge/data/classification.json"} <= named
    missing = sorted(path for path in named - MADE_AT_RUN_TIME if not (ROOT / path).exists())
    assert missing == [], "named in README.md, not in the repository (give the path from its root)"


def test_every_link_leads_inside_the_repository() -> None:
    anchors = {anchor(line.lstrip("#")) for line in README.splitlines() if line.startswith("#")}
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", README):
        if target.startswith("#"):
            broken += [] if target[1:] in anchors else [target]
        elif "://" in target or target.startswith("/") or not (ROOT / target).exists():
            broken.append(target)
    assert broken == []


def test_every_setting_is_documented_and_every_variable_named_is_a_setting() -> None:
    settings = {f"SURGE_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"SURGE_[A-Z0-9_]*[A-Z0-9]", README))
    named = {name for name in named if not name.endswith("_")} - {"SURGE_DB"}  # SURGE_DB_*_S

    assert sorted(named - settings) == []
    assert sorted(settings - named) == []


def test_every_command_is_in_the_command_table_and_every_make_target_exists() -> None:
    table = " ".join(CODE)
    for command in surge_commands():
        assert re.search(rf"surge {command}\b|\b{command.split()[-1]} NAME", table), command
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    assert set(re.findall(r"`make ([a-z-]+)", README)) <= targets


def test_nothing_is_promised_for_later() -> None:
    assert not re.search(r"comes? next|not yet implemented|coming soon|\bTODO\b", README)


def test_the_architecture_names_every_part_of_the_service() -> None:
    tree = README.split("## Architecture", 1)[1].split("```")[1]
    parts = [
        path.name + ("/" if path.is_dir() else "")
        for path in sorted((ROOT / "src" / "surge").iterdir())
        if not path.name.startswith(("_", ".")) and path.name != "py.typed"
    ]
    assert len(parts) > 20
    assert [part for part in parts if not re.search(rf"(?<![\w/]){re.escape(part)}", tree)] == []


def test_every_file_a_commands_help_names_is_in_the_repository() -> None:
    helps = [build_parser().format_help()]
    helps += [command.format_help() for command in surge_commands().values()]
    named = set(re.findall(r"\b(?:docs|loadtests|deploy|src|tests)/[\w/.-]*\w/?", " ".join(helps)))
    assert {"docs/API.md", "loadtests/scenarios/"} <= named  # `surge simulate --help`
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


def test_the_benchmarks_section_names_every_benchmark_make_bench_runs() -> None:
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\nbench:", 1)[1]
    run = set(re.findall(r"-m (loadtests\.\w+)", recipe.split("\n\n", 1)[0]))
    section = README.split("## Benchmarks", 1)[1]
    assert len(run) > 10
    assert sorted(module for module in run if f"python -m {module}" not in section) == []
