"""GET /reports/daily (the report in JSON, CSV or XLSX), GET /reports/ledger (the reciprocity
ledger, the same formats) and GET /reports/exports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select

from surge import errors
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.cities.schemas import CITY_CODE
from surge.deps import RuntimeDep, SessionDep, require_city_access, require_role
from surge.reports import export
from surge.reports import ledger as ledger_service
from surge.reports import service as reports_service
from surge.reports.models import ReportExport
from surge.reports.schemas import (
    DailyReport,
    ExportRead,
    Lang,
    Ledger,
    LedgerPart,
    Part,
    ReportDay,
    ReportFormat,
    check_day,
    check_range,
)

router = APIRouter(
    tags=["reports"], responses=errors.responses(errors.Forbidden, errors.UnknownCity)
)


def _files(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of a route that also serves CSV and XLSX files."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {
        "text/csv": {"schema": {"type": "string"}},
        export.MEDIA_TYPES[ReportFormat.XLSX]: binary,
    }
    return {200: {"content": content, "description": description}}


Reader = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN))]
Coordinator = Annotated[Principal, Depends(require_role(Role.COORDINATOR))]


@router.get(
    "/reports/daily",
    response_model=DailyReport,
    responses=_files("The report: JSON, one part as CSV, or the whole as XLSX"),
)
async def daily_report(
    principal: Reader,
    session: SessionDep,
    runtime: RuntimeDep,
    day: Annotated[ReportDay, Query(alias="date", description="The local day, YYYY-MM-DD")],
    city: Annotated[
        str | None,
        Query(pattern=CITY_CODE, description="One city (default: the province, or your city)"),
    ] = None,
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
    part: Annotated[Part, Query(description="The table a CSV holds")] = Part.SUMMARY,
    lang: Annotated[Lang, Query(description="CSV and XLSX headers")] = Lang.ZH,
    *,
    response: Response,
) -> Response | DailyReport:
    """The daily data report: the coordinator any city or the province, a city admin its own."""
    city = city or principal.city
    if city is not None:
        require_city_access(principal, city)
    check_day(day, runtime.settings.report_timezone)
    report = await reports_service.daily(
        session=session,
        day=day,
        city=city,
        settings=runtime.settings,
        classification=runtime.classification,
    )
    name = export.file_name(report, fmt, part)
    if fmt is ReportFormat.JSON:
        response.headers["Content-Disposition"] = f'inline; filename="{name}"'
        return report
    return Response(
        export.render(report, fmt, part=part, lang=lang),
        media_type=export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/reports/ledger",
    response_model=Ledger,
    responses=_files("The ledger: JSON, one part as CSV, or the whole as XLSX"),
)
async def ledger(
    principal: Reader,
    session: SessionDep,
    runtime: RuntimeDep,
    first: Annotated[ReportDay, Query(alias="from", description="The first local day")],
    last: Annotated[ReportDay, Query(alias="to", description="The last local day (inclusive)")],
    city: Annotated[
        str | None,
        Query(pattern=CITY_CODE, description="The pairs one city is in (a city admin: its own)"),
    ] = None,
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
    part: Annotated[LedgerPart, Query(description="The table a CSV holds")] = LedgerPart.PAIRS,
    lang: Annotated[Lang, Query(description="CSV and XLSX headers")] = Lang.ZH,
    *,
    response: Response,
) -> Response | Ledger:
    """The reciprocity ledger: seat-hours lent and received per city pair over `from`..`to`."""
    city = city or principal.city
    if city is not None:
        require_city_access(principal, city)
        await runtime.cities.require(city)
    check_range(first, last, runtime.settings.report_timezone)
    book = await ledger_service.ledger(
        session=session, first=first, last=last, city=city, settings=runtime.settings
    )
    name = export.ledger_file_name(book, fmt, part)
    if fmt is ReportFormat.JSON:
        response.headers["Content-Disposition"] = f'inline; filename="{name}"'
        return book
    return Response(
        export.render_ledger(book, fmt, part=part, lang=lang),
        media_type=export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/reports/exports", response_model=list[ExportRead])
async def list_exports(
    _: Coordinator,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=366)] = 30,
) -> list[ExportRead]:
    """The scheduled exports, newest day first: which instance wrote which files, and when."""
    rows = await session.execute(
        select(ReportExport).order_by(ReportExport.day.desc()).limit(limit)
    )
    return [ExportRead.model_validate(row, from_attributes=True) for row in rows.scalars()]
