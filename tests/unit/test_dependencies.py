"""`make run` installs `pip install -e .` alone: what src/surge imports must come with it.

Every module src/surge imports at run time (not only for the type checker) is either the
standard library's, the service's own, or installed by the runtime dependencies of
pyproject.toml (directly, or as what they require); and no test or lint tool is among them.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def imported(node: ast.AST) -> Iterator[str]:
    """The top-level names of the modules a module imports when it runs (absolute imports,
    outside `if TYPE_CHECKING:`)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
            yield from (name for part in child.orelse for name in imported(part))
            continue
        if isinstance(child, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in child.names)
        elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
            yield child.module.partition(".")[0]
        yield from imported(child)


def third_party_imports() -> dict[str, list[str]]:
    """Each third-party module src/surge imports, with the files importing it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src" / "surge").rglob("*.py")):
        for name in set(imported(ast.parse(path.read_text(encoding="utf-8")))):
            if name not in sys.stdlib_module_names and name != "surge":
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def installed_by(requirements: list[str]) -> set[str]:
    """The distributions `pip install` of these requirements brings, as installed here: each,
    and what each requires (with the extras asked for), to the end."""
    brought: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in brought:
            continue
        brought.update({key, name})
        for text in metadata.requires(name) or []:
            needed = Requirement(text)
            extras = {""} | requirement.extras
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                pending.append(needed)
    return {name for name in brought if "[" not in name}


def test_every_module_src_surge_imports_comes_with_the_runtime_dependencies() -> None:
    runtime = installed_by(PROJECT["dependencies"])
    providers = metadata.packages_distributions()
    imports = third_party_imports()
    assert {"fastapi", "sqlalchemy", "redis"} <= set(imports)  # the reader sees the imports

    missing = {
        module: files
        for module, files in imports.items()
        if not {canonicalize_name(dist) for dist in providers.get(module, [])} & runtime
    }

    assert missing == {}, "imported by src/surge, not installed by `pip install -e .`"


def test_no_test_or_lint_tool_is_a_runtime_dependency() -> None:
    runtime = installed_by(PROJECT["dependencies"])
    dev = {
        canonicalize_name(Requirement(text).name)
        for text in PROJECT["optional-dependencies"]["dev"]
    }

    assert dev & runtime == set()
