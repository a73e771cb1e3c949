"""Access tokens: a token read before is answered from memory, and still dies at its expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from surge.auth.models import Role
from surge.auth.service import Principal, issue_token, read_token
from surge.errors import Unauthorized
from surge.settings import Settings

SECRET = "a-real-secret-0123456789abcdef-0123456789"
OTHER_SECRET = "another-real-secret-0123456789abcdef-01234"


def settings(secret: str = SECRET) -> Settings:
    return Settings(_env_file=None, secret_key=secret, environment="production")


def claims(*, expires_in_s: float) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "surge",
        "sub": "7",
        "name": "cti-1",
        "role": "cti",
        "city": None,
        "tv": 3,
        "iat": now,
        "exp": now + expires_in_s,
    }


def test_a_token_read_again_gives_the_same_principal() -> None:
    principal = Principal(user_id=7, username="cti-1", role=Role.CTI, city=None, token_version=3)
    token = issue_token(settings=settings(), principal=principal)
    first = read_token(settings=settings(), token=token)
    assert read_token(settings=settings(), token=token) == first
    assert (first.user_id, first.role, first.token_version) == (7, Role.CTI, 3)


def test_a_token_read_before_its_expiry_is_refused_after_it() -> None:
    token = jwt.encode(claims(expires_in_s=2), SECRET, algorithm="HS256")
    assert read_token(settings=settings(), token=token).user_id == 7
    time.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time())
    )
    with pytest.raises(Unauthorized, match="expired"):
        read_token(settings=settings(), token=token)


def test_a_token_good_under_one_key_is_refused_under_another() -> None:
    token = jwt.encode(claims(expires_in_s=60), SECRET, algorithm="HS256")
    assert read_token(settings=settings(), token=token).user_id == 7
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(Unauthorized, match="not valid"):
            read_token(settings=settings(OTHER_SECRET), token=token)
