"""The scheduled export: every day at a set local time, yesterday's report written to a folder.

Each instance looks every `report_export_check_s`; the first to insert the day's row in
`report_export` (its primary key is the day) writes the files, so one instance does it however
many run. A row left unfinished (an instance died mid-export, or the export failed) is taken over
after `report_export_lease_s`. Files are written to a temporary name beside their final one,
flushed to disk and renamed: a reader sees the whole file or none.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge.db import utcnow
from surge.files import write_atomically
from surge.loops import run_forever
from surge.reports import export
from surge.reports import service as reports_service
from surge.reports.models import ReportExport
from surge.reports.schemas import Part, ReportFormat
from surge.scripts.classification import Classification
from surge.settings import Settings

log = logging.getLogger(__name__)


class ExportStatus(StrEnum):
    """Where a day's export stands."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ScheduledExport:
    """Writes the previous day's report once a day, once across all instances."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        classification: Classification,
    ) -> None:
        if settings.report_export_dir is None:
            raise ValueError("the scheduled export needs SURGE_REPORT_EXPORT_DIR")
        self._settings = settings
        self._folder = settings.report_export_dir
        self._sessions = sessions
        self._classification = classification
        self._zone = ZoneInfo(settings.report_timezone)
        self._stopping = False

    def stop(self) -> None:
        """Ask the loop to end."""
        self._stopping = True

    async def run(self) -> None:
        """Check on the schedule until stopped."""

        async def step() -> None:
            await self.due(datetime.now(self._zone))
            await asyncio.sleep(self._settings.report_export_check_s)

        await run_forever("report export", step, stopping=lambda: self._stopping)

    async def due(self, now: datetime) -> bool:
        """Export yesterday's report if it is time and nobody has; True if this instance did."""
        local = now.astimezone(self._zone)
        if local.time() < self._settings.report_export_at:
            return False
        return await self.export(local.date() - timedelta(days=1))

    async def _claim(self, day: date) -> bool:
        """Take the day's export: insert its row, or take over one left unfinished too long."""
        now = utcnow()
        async with self._sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
            inserted = await session.execute(
                builder(ReportExport)
                .values(
                    day=day,
                    status=ExportStatus.RUNNING,
                    instance=self._settings.instance_id,
                    started_at=now,
                    files=[],
                )
                .on_conflict_do_nothing()
                .returning(ReportExport.day)
            )
            if inserted.scalar_one_or_none() is not None:
                return True
            stale = now - timedelta(seconds=self._settings.report_export_lease_s)
            taken = await session.execute(
                update(ReportExport)
                .where(
                    ReportExport.day == day,
                    ReportExport.status != ExportStatus.DONE,
                    ReportExport.started_at < stale,
                )
                .values(
                    status=ExportStatus.RUNNING,
                    instance=self._settings.instance_id,
                    started_at=now,
                    error=None,
                )
                .returning(ReportExport.day)
            )
            return taken.scalar_one_or_none() is not None

    async def export(self, day: date) -> bool:
        """Write `day`'s province report in every configured format, if no instance has."""
        if not await self._claim(day):
            return False
        log.info("exporting the daily report of %s to %s", day, self._folder)
        try:
            written = await self._write(day)
        except Exception as exc:
            log.exception("the daily report of %s could not be exported", day)
            error = f"{type(exc).__name__}: {exc}"
            await self._finish(day, ExportStatus.FAILED, files=[], error=error)
            return False
        await self._finish(day, ExportStatus.DONE, files=written, error=None)
        log.info("exported the daily report of %s: %s", day, ", ".join(written))
        return True

    async def _write(self, day: date) -> list[str]:
        async with self._sessions() as session:
            report = await reports_service.daily(
                session=session,
                day=day,
                city=None,
                settings=self._settings,
                classification=self._classification,
            )
        self._folder.mkdir(parents=True, exist_ok=True)
        written = []
        for format_name in self._settings.report_export_formats:
            fmt = ReportFormat(format_name)
            parts = list(Part) if fmt is ReportFormat.CSV else [Part.SUMMARY]
            for part in parts:
                name = export.file_name(report, fmt, part)
                content = export.render(report, fmt, part=part)
                await asyncio.to_thread(write_atomically, self._folder / name, content)
                written.append(name)
        return written

    async def _finish(
        self, day: date, status: ExportStatus, *, files: list[str], error: str | None
    ) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(ReportExport)
                .where(ReportExport.day == day, ReportExport.instance == self._settings.instance_id)
                .values(status=status, finished_at=utcnow(), files=files, error=error)
            )
