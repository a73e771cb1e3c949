"""Which users may use their tokens, held in memory by each instance and reread when they change.

A token is good while its user is active and still has the token version the token was issued
under (disabling a user or resetting its password raises it; nothing lowers it). Checking that
must not cost a database read per request, so each instance keeps every user's version and
whether it is active, and looks every `SURGE_USER_REFRESH_S` whether they changed (one row: a
fingerprint of every user's id, version and standing, which any creation, deletion, disabling,
enabling or new password changes), rereading them only then; the users may change in another
process (`surge users disable`); the instance that makes a change over HTTP learns it at once.
A token under an older version than the one read is withdrawn whenever it was signed. One newer
than the last reading that matches no active user's version cannot be judged by it (its user
may have been created, enabled or given a new password since), so it alone is looked up in the
database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.auth.models import User
from surge.auth.service import Principal
from surge.db import database_errors
from surge.loops import run_forever

# Tokens signed up to this long before a reading began are judged by it: room for the clocks of
# instances to differ a little (a token's `iat` comes from the instance that signed it).
CLOCK_SKEW_S = 2
WITHDRAWN = "this user has been disabled or deleted (or its tokens withdrawn): log in again"

Verdict = Callable[[Principal], bool | None]
Standing = tuple[int, bool]  # a user's token version and whether it is active
Fingerprint = tuple[int, int, int]  # how many users, the highest id, the sum of `_mark`s

# A user's part of the fingerprint's sum, the same in SQL and in Python: ids and versions are never
# negative, and the factors keep each part below 2**31, so the sum stays exact.
_ID_SPREAD, _VERSION_SPREAD = 997, 1_000_003


def _mark(user_id: int, version: int, active: bool) -> int:
    return (user_id % _ID_SPREAD + 1) * (version % _VERSION_SPREAD * 2 + int(active))


_FINGERPRINT = select(
    func.count(User.id),
    func.coalesce(func.max(User.id), 0),
    func.coalesce(
        func.sum(
            (User.id % _ID_SPREAD + 1)
            * (User.token_version % _VERSION_SPREAD * 2 + cast(User.is_active, Integer))
        ),
        0,
    ),
)


class UserDirectory:
    """Every user's token version and whether it is active, as of the last reading."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, refresh_s: float) -> None:
        self._sessions = sessions
        self._refresh_s = refresh_s
        self._users: dict[int, Standing] = {}
        # What this instance changed itself, numbered so that a reading keeps only the changes
        # it could not have seen (made while it ran).
        self._learned: dict[int, tuple[int, Standing]] = {}
        self._changes = 0
        self._read_since = 0  # tokens signed from then on are newer than the reading
        self._fingerprint: Fingerprint | None = None  # of the users as last read
        self._stopping = False

    def stop(self) -> None:
        """Ask the refresh loop to end."""
        self._stopping = True

    async def load(self) -> None:
        """Read every user's token version and whether it is active."""
        await self._read(fingerprint=None)

    async def refresh(self) -> None:
        """Read the users again if they changed since the last reading (one row if not)."""
        await self._read(fingerprint=self._fingerprint)

    async def _read(self, *, fingerprint: Fingerprint | None) -> None:
        began = int(time.time()) - CLOCK_SKEW_S
        seen = self._changes  # committed before the reading began, so in it
        async with database_errors(), self._sessions() as session:
            if fingerprint is not None:
                count, highest, total = (await session.execute(_FINGERPRINT)).one()
                if (count, highest, total) == fingerprint:
                    self._read_since = began  # what was read still stands
                    return
            rows = await session.execute(select(User.id, User.token_version, User.is_active))
            users = {user_id: (version, active) for user_id, version, active in rows.all()}
        self._fingerprint = (
            len(users),
            max(users, default=0),
            sum(_mark(user_id, *standing) for user_id, standing in users.items()),
        )
        self._learned = {user: change for user, change in self._learned.items() if change[0] > seen}
        users.update((user_id, standing) for user_id, (_, standing) in self._learned.items())
        self._users = users
        self._read_since = began

    def learn(self, user_id: int, *, version: int, active: bool) -> None:
        """A change this instance committed itself, known before the next reading."""
        self._changes += 1
        self._learned[user_id] = (self._changes, (version, active))
        self._users[user_id] = (version, active)

    def verdict(self, principal: Principal) -> bool | None:
        """Whether the principal's token is still good, or None when the reading is too old."""
        known = self._users.get(principal.user_id)
        if known is not None:
            version, active = known
            if principal.token_version == version and active:
                return True
            if principal.token_version < version:
                return False  # withdrawn: versions only rise
        if principal.issued_at >= self._read_since:
            return None
        return False

    async def admits(self, principal: Principal) -> bool:
        """Whether the principal's token is still good (a database read only for fresh tokens)."""
        verdict = self.verdict(principal)
        if verdict is not None:
            return verdict
        async with database_errors(), self._sessions() as session:
            version = await session.scalar(
                select(User.token_version).where(
                    User.id == principal.user_id, User.is_active.is_(True)
                )
            )
        if version is None:
            return False
        self._users[principal.user_id] = (version, True)
        return version == principal.token_version

    async def run(self, on_refresh: Callable[[Verdict], object]) -> None:
        """Look every `refresh_s` whether the users changed (reread them if so) and hand
        `on_refresh` the verdict (a task)."""

        async def step() -> None:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()
            on_refresh(self.verdict)

        await run_forever("user refresh", step, stopping=lambda: self._stopping)
