"""The error tree: codes, statuses, bodies, and the docstring that documents them."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from surge import errors
from surge.errors import SurgeError, describe

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
TREE_LINE = re.compile(
    r"^(?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w*)\s+(?P<status>\d{3})\s+(?P<code>\S+)$"
)


def all_errors() -> list[type[SurgeError]]:
    found: list[type[SurgeError]] = []
    pending: list[type[SurgeError]] = [SurgeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


def documented_tree() -> dict[str, tuple[int, str, str | None]]:
    """Each class in the docstring tree: (status, code, parent name or None)."""
    assert errors.__doc__ is not None
    tree: dict[str, tuple[int, str, str | None]] = {}
    stack: list[str] = []  # the ancestors of the current line, by depth
    for line in errors.__doc__.splitlines():
        match = TREE_LINE.match(line)
        if match is None:
            continue
        indent = match["indent"]
        assert len(indent) % 4 == 0, f"misaligned tree line: {line!r}"
        depth = len(indent) // 4
        assert depth <= len(stack), f"tree line skips a level: {line!r}"
        del stack[depth:]
        name = match["name"]
        assert name not in tree, f"{name} documented twice"
        tree[name] = (int(match["status"]), match["code"], stack[-1] if stack else None)
        stack.append(name)
    return tree


ERRORS = all_errors()


def test_every_error_lives_in_errors_module() -> None:
    assert all(cls.__module__ == "surge.errors" for cls in ERRORS)
    assert {cls.__name__ for cls in ERRORS} == {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, SurgeError)
    }


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_code_and_status(cls: type[SurgeError]) -> None:
    assert SNAKE_CASE.match(cls.code), cls.code
    assert 400 <= cls.status <= 599


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_body(cls: type[SurgeError]) -> None:
    error = cls("something went wrong")
    assert error.body() == {"code": cls.code, "message": "something went wrong"}
    assert error.message == "something went wrong"
    assert str(error) == "something went wrong"


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in ERRORS]
    assert len(codes) == len(set(codes))


def test_every_subclass_defines_its_own_code() -> None:
    for cls in ERRORS:
        assert "code" in vars(cls), f"{cls.__name__} inherits its parent's code"


def test_docstring_tree_lists_every_class() -> None:
    assert set(documented_tree()) == {cls.__name__ for cls in ERRORS}


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_docstring_tree_matches_class(cls: type[SurgeError]) -> None:
    status, code, parent = documented_tree()[cls.__name__]
    assert (status, code) == (cls.status, cls.code)
    base = cls.__bases__[0]
    assert parent == (None if cls is SurgeError else base.__name__)


def test_docstring_tree_parser_sees_the_whole_tree() -> None:
    tree = documented_tree()
    assert tree["SurgeError"] == (500, "internal_error", None)
    assert tree["UnknownCity"] == (422, "unknown_city", "BadRequest")
    assert tree["StateUnavailable"] == (503, "state_unavailable", "ServiceUnavailable")
    assert len(tree) >= 16


class _Answer(BaseModel):
    score: int = Field(ge=1, le=5)

    @field_validator("score")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("the score must be odd")
        return value


def problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _Answer.model_validate_json(text)
    return [describe(problem, whole="answer") for problem in caught.value.errors()]


def test_validation_problems_say_where_and_what() -> None:
    assert problems('{"score": 9}') == ["score: Input should be less than or equal to 5"]
    assert problems("{}") == ["score: Field required"]
    # A validator's own words come without pydantic's "Value error, " in front.
    assert problems('{"score": 2}') == ["score: the score must be odd"]
    # Broken JSON names the thing and the reason, not a bare "JSON decode error".
    [broken] = problems('{"score": ')
    assert broken.startswith("answer: not valid JSON ("), broken


def test_a_request_body_problem_names_its_place() -> None:
    details: ErrorDetails = {
        "type": "json_invalid",
        "loc": ("body", 9),
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": "Expecting value"},
    }
    assert describe(details, whole="body") == (
        "body: not valid JSON at character 9 (Expecting value)"
    )
