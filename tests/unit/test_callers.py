"""The caller key: one number, one key within a local day; unrelated keys across days."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from surge.calls.callers import caller_key

SECRET, ZONE, NUMBER = "a-secret-of-the-service", "Asia/Shanghai", "13812345678"


def key(at: datetime, number: str = NUMBER, secret: str = SECRET) -> int:
    return caller_key(secret=secret, timezone=ZONE, caller=number, received_at=at)


def test_a_number_has_one_key_a_day_and_another_the_next_local_day() -> None:
    morning = datetime(2021, 7, 24, 16, 5, tzinfo=UTC)  # 00:05 on the 25th in Shanghai
    evening = datetime(2021, 7, 25, 15, 55, tzinfo=UTC)  # 23:55 on the 25th
    next_day = datetime(2021, 7, 25, 16, 5, tzinfo=UTC)  # 00:05 on the 26th

    assert key(morning) == key(evening)
    assert key(next_day) != key(evening)
    assert key(evening, "13812345679") != key(evening)
    assert key(evening, secret="another-secret") != key(evening)


def test_the_key_is_the_hmac_of_the_number_under_the_days_salt() -> None:
    salt = hmac.new(SECRET.encode(), b"surge.caller-day:2021-07-25", hashlib.sha256).digest()
    digest = hmac.new(salt, NUMBER.encode(), hashlib.sha256).digest()

    got = key(datetime(2021, 7, 25, 2, 0, tzinfo=UTC))

    assert got == int.from_bytes(digest[:8], "big", signed=True)
    assert -(2**63) <= got < 2**63  # fits the BIGINT column
