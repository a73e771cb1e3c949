"""The caller key: a caller's number as a per-day salted hash, for counting repeat callers.

The daily report counts unique callers and repeat attempts without reading a number: each call
is stored at ingest with `caller_key`, HMAC-SHA256 of its number under the day's salt, its first
8 bytes as a signed 64-bit integer. The day's salt is HMAC-SHA256 of `SURGE_SECRET_KEY` over the
local date (the report's time zone) the call was received on, so one number has one key within a
day and unrelated keys on two days: the keys link a day's calls, never a caller across days, and
they cannot be reversed without the secret (a brute force over the 10^11 mobile numbers needs
it). Two numbers share a key with a probability of about n^2 / 2^65: 3 x 10^-8 for a million
callers in a day.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import date, datetime
from zoneinfo import ZoneInfo

_SALT_LABEL = b"surge.caller-day:"


@functools.lru_cache(maxsize=8)
def day_salt(secret: str, day: date) -> bytes:
    """The salt of one local day, derived from the secret key and the date."""
    message = _SALT_LABEL + day.isoformat().encode()
    return hmac.digest(secret.encode(), message, "sha256")


@functools.lru_cache(maxsize=8)
def _day_hmac(secret: str, day: date) -> hmac.HMAC:
    """HMAC-SHA256 keyed with the day's salt, copied for each number: `hmac.digest` would look
    the algorithm up by name in OpenSSL for every call taken."""
    return hmac.new(day_salt(secret, day), digestmod=hashlib.sha256)


def caller_key(*, secret: str, timezone: str, caller: str, received_at: datetime) -> int:
    """The caller's key for the local day `received_at` falls on (a signed 64-bit integer)."""
    day = received_at.astimezone(ZoneInfo(timezone)).date()
    mac = _day_hmac(secret, day).copy()
    mac.update(caller.encode())
    return int.from_bytes(mac.digest()[:8], "big", signed=True)
