"""The user directory looks each refresh whether the users changed: one row while they have not,
a full reading once they have (so a disabled user's token is refused, a new user's admitted)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event

from surge.auth import service as auth_service
from surge.auth.directory import UserDirectory
from surge.auth.models import Role, User
from surge.auth.service import Principal
from surge.db import create_engine, create_sessionmaker
from tests.conftest import Backend
from tests.helpers import seed

CITY = "320100"


async def test_an_unchanged_directory_costs_one_row_a_refresh(backend: Backend) -> None:
    await seed(backend.settings())
    engine = create_engine(backend.database_url)
    sessions = create_sessionmaker(engine)
    sent: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _statement(*args: Any) -> None:
        sent.append(str(args[2]))

    async def add(name: str) -> User:
        async with sessions() as session, session.begin():
            return await auth_service.create_user(
                session=session,
                actor=auth_service.CLI,
                username=name,
                password="password-123",
                role=Role.AGENT,
                city=CITY,
            )

    def token_of(user: User) -> Principal:
        return Principal(
            user.id, user.username, Role.AGENT, CITY, None, user.token_version, int(time.time())
        )

    try:
        users = [await add(f"agent-{n}") for n in range(3)]
        directory = UserDirectory(sessions, refresh_s=1.0)
        await directory.load()
        old = token_of(users[0])

        sent.clear()
        for _ in range(3):
            await directory.refresh()
        assert len(sent) == 3, sent  # the fingerprint alone
        assert "count" in sent[0].lower()
        assert directory.verdict(old) is True

        async with sessions() as session, session.begin():
            user = await session.get(User, users[0].id)
            assert user is not None
            await auth_service.change_user(
                session=session, actor=auth_service.CLI, user=user, disabled=True
            )
        newcomer = token_of(await add("agent-new"))
        sent.clear()
        await directory.refresh()
        assert len(sent) == 2  # the fingerprint, then every user
        assert directory.verdict(old) is False  # withdrawn
        assert directory.verdict(newcomer) is True
        sent.clear()
        await directory.refresh()
        assert len(sent) == 1  # read: unchanged again

        # Enabled again (its old tokens stay withdrawn): a change the fingerprint sees too.
        async with sessions() as session, session.begin():
            user = await session.get(User, users[0].id)
            assert user is not None
            await auth_service.change_user(
                session=session, actor=auth_service.CLI, user=user, disabled=False
            )
            again = token_of(user)
        sent.clear()
        await directory.refresh()
        assert len(sent) == 2
        assert directory.verdict(again) is True
        assert directory.verdict(old) is False
    finally:
        await engine.dispose()
