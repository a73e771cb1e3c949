"""The scheduled export: yesterday's report written once a day, once in all, atomically."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.auth.models import Role
from surge.db import create_engine, create_sessionmaker
from surge.files import write_atomically
from surge.reports.models import ReportExport
from surge.reports.schedule import ScheduledExport
from surge.scripts.classification import Classification
from surge.settings import Settings
from tests.conftest import Backend
from tests.helpers import run_service, seed

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2021, 7, 25)
FILES = {
    "surge-daily-2021-07-25-province.json",
    "surge-daily-2021-07-25-province-summary.csv",
    "surge-daily-2021-07-25-province-helpers.csv",
    "surge-daily-2021-07-25-province-hourly.csv",
    "surge-daily-2021-07-25-province-staffing.csv",
    "surge-daily-2021-07-25-province.xlsx",
}


@pytest.fixture
async def sessions(backend: Backend) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await seed(backend.settings())
    engine = create_engine(backend.database_url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def exporter(
    backend: Backend,
    sessions: async_sessionmaker[AsyncSession],
    folder: Path,
    name: str,
    **overrides: object,
) -> ScheduledExport:
    settings = backend.settings(report_export_dir=folder, instance_id=name, **overrides)
    return ScheduledExport(
        settings=settings, sessions=sessions, classification=Classification.load()
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where reports are exported (made by the export itself)."""
    return tmp_path / "reports"


def listing(folder: Path) -> set[str]:
    """The names of the files in `folder`."""
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def put_file_at(path: Path) -> None:
    """A file where a folder should be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")


def read(path: Path) -> bytes:
    return path.read_bytes()


async def exports(sessions: async_sessionmaker[AsyncSession]) -> list[ReportExport]:
    async with sessions() as session:
        return list((await session.execute(select(ReportExport))).scalars())


async def test_two_instances_at_once_export_the_day_once(
    backend: Backend, sessions: async_sessionmaker[AsyncSession], folder: Path
) -> None:
    one, two = (exporter(backend, sessions, folder, name) for name in ("one", "two"))

    results = await asyncio.gather(one.export(DAY), two.export(DAY))

    assert sorted(results) == [False, True]
    assert listing(folder) == FILES  # no temporary file left
    [record] = await exports(sessions)
    assert record.day == DAY
    assert record.status == "done"
    assert record.instance == ("one" if results[0] else "two")
    assert set(record.files) == FILES
    assert record.finished_at is not None
    assert record.finished_at >= record.started_at
    report = json.loads(read(folder / "surge-daily-2021-07-25-province.json"))
    assert (report["date"], report["scope"]) == ("2021-07-25", "province")
    assert len(report["cities"]) == 13
    summary = read(folder / "surge-daily-2021-07-25-province-summary.csv")
    assert summary.startswith("\ufeff城市代码".encode())

    assert await one.export(DAY) is False  # done is done
    assert await two.export(DAY) is False


async def test_it_waits_for_the_hour_then_exports_yesterday(
    backend: Backend, sessions: async_sessionmaker[AsyncSession], folder: Path
) -> None:
    instance = exporter(backend, sessions, folder, "one")  # at 07:00 by default

    early = datetime(2021, 7, 26, 6, 59, tzinfo=SHANGHAI)
    assert await instance.due(early) is False
    assert listing(folder) == set()
    assert await exports(sessions) == []

    assert await instance.due(datetime(2021, 7, 26, 7, 0, tzinfo=SHANGHAI)) is True
    assert await instance.due(datetime(2021, 7, 26, 23, 0, tzinfo=SHANGHAI)) is False
    assert [record.day for record in await exports(sessions)] == [DAY]
    # The time zone is the report's: 23:30 UTC on the 25th is already 07:30 on the 26th there.
    assert await instance.due(datetime(2021, 7, 26, 23, 30, tzinfo=UTC)) is True
    assert [r.day for r in await exports(sessions)] == [DAY, DAY + timedelta(days=1)]


async def test_an_export_left_unfinished_is_taken_over_after_its_lease(
    backend: Backend, sessions: async_sessionmaker[AsyncSession], folder: Path
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            ReportExport(
                day=DAY,
                status="running",
                instance="crashed",
                started_at=datetime.now(UTC) - timedelta(seconds=60),
                files=[],
            )
        )
    patient = exporter(backend, sessions, folder, "patient", report_export_lease_s=3600)
    assert await patient.export(DAY) is False  # the other instance may still be at it

    successor = exporter(backend, sessions, folder, "successor", report_export_lease_s=30)

    assert await successor.export(DAY) is True
    [record] = await exports(sessions)
    assert (record.status, record.instance) == ("done", "successor")
    assert listing(folder) == FILES


async def test_a_failed_export_is_recorded_and_leaves_no_file(
    backend: Backend, sessions: async_sessionmaker[AsyncSession], folder: Path
) -> None:
    blocked = folder / "not-a-folder"
    put_file_at(blocked)
    instance = exporter(backend, sessions, blocked, "one")

    assert await instance.export(DAY) is False

    [record] = await exports(sessions)
    assert record.status == "failed"
    assert record.error is not None
    assert "Error" in record.error
    assert record.files == []
    assert listing(folder) == {"not-a-folder"}


def test_an_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"

    folder_in_the_way = tmp_path / "taken"
    folder_in_the_way.mkdir()
    with pytest.raises(OSError, match="Is a directory"):
        write_atomically(folder_in_the_way, b"cannot replace a folder")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.csv", "taken"]


async def test_running_services_export_once_and_list_it(backend: Backend, folder: Path) -> None:
    """Two real service instances on one database, both due: one writes, both see the record."""

    def settings(name: str) -> Settings:
        return backend.settings(
            instance_id=name,
            report_export_dir=folder,
            report_export_at="00:00",
            report_export_check_s=0.1,
        )

    yesterday = datetime.now(SHANGHAI).date() - timedelta(days=1)
    async with run_service(settings("one")) as one, run_service(settings("two")) as two:
        coordinator = await one.add_user(Role.COORDINATOR)
        two.tokens[coordinator] = one.tokens[coordinator]
        deadline = time.monotonic() + 20
        listed: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            response = await two.http.get("/api/v1/reports/exports", headers=two.auth(coordinator))
            assert response.status_code == 200, response.text
            listed = response.json()
            if listed and listed[0]["status"] == "done":
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # several more checks by both instances
        again = await one.http.get("/api/v1/reports/exports", headers=one.auth(coordinator))
        agent = await one.add_user(Role.AGENT, "320100")
        forbidden = await one.http.get("/api/v1/reports/exports", headers=one.auth(agent))

    assert len(listed) == 1
    assert listed[0]["day"] == yesterday.isoformat()
    assert listed[0]["instance"] in ("one", "two")
    assert again.json() == listed
    names = {name.replace("2021-07-25", yesterday.isoformat()) for name in FILES}
    assert set(listed[0]["files"]) == names
    assert listing(folder) == names
    assert forbidden.status_code == 403
