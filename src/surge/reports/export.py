"""The daily report and the reciprocity ledger written out: JSON, CSV (UTF-8 with BOM, for
Excel) and XLSX (the daily report's with charts).

Every part of the report (summary, helpers, hourly, staffing) or the ledger (pairs, cities) is
one table: a CSV file holds one part, an XLSX workbook one sheet per part plus the definitions.
Headers are Chinese by default (the catalogue's labels) or the figures' keys in English.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from surge.reports.definitions import LEDGER_SECTIONS, SECTIONS, Metric, Unit
from surge.reports.schemas import (
    CityDay,
    DailyReport,
    Lang,
    Ledger,
    LedgerPart,
    Part,
    ReportFormat,
)

MEDIA_TYPES = {
    ReportFormat.JSON: "application/json",
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SHEET_TITLES = {
    Part.SUMMARY: ("概要", "Summary"),
    Part.HELPERS: ("援助城市", "Helpers"),
    Part.HOURLY: ("分时", "Hourly"),
    Part.STAFFING: ("明日排班建议", "Staffing"),
}
LEDGER_SHEET_TITLES = {
    LedgerPart.PAIRS: ("城市互助", "Pairs"),
    LedgerPart.CITIES: ("城市收支", "Cities"),
}
DEFINITIONS_TITLE = ("指标说明", "Definitions")
PROVINCE = "province"  # the `code` of the province's rows in a table


def file_name(report: DailyReport, fmt: ReportFormat, part: Part | None = None) -> str:
    """`surge-daily-2021-07-25-province.json`, `...-320100-hourly.csv`."""
    suffix = f"-{part.value}" if fmt is ReportFormat.CSV and part is not None else ""
    return f"surge-daily-{report.date.isoformat()}-{report.scope}{suffix}.{fmt.value}"


def render(
    report: DailyReport, fmt: ReportFormat, *, part: Part = Part.SUMMARY, lang: Lang = Lang.ZH
) -> bytes:
    """The report as a file's bytes: all of it (JSON, XLSX) or one part (CSV)."""
    if fmt is ReportFormat.JSON:
        return orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2)
    if fmt is ReportFormat.CSV:
        return to_csv(report, part, lang)
    return to_xlsx(report, lang)


def _label(metric: Metric, lang: Lang) -> str:
    return metric.zh if lang is Lang.ZH else metric.key


def _places(report: DailyReport) -> list[CityDay]:
    """The rows of a part: the province's first (when there is one), then each city's."""
    return ([report.province] if report.province else []) + report.cities


def _name(row: CityDay, lang: Lang) -> str:
    return row.name if lang is Lang.ZH else row.name_en


def records(report: DailyReport, part: Part, lang: Lang) -> Iterator[dict[str, Any]]:
    """The part's rows as plain values (keyed like the part's catalogue)."""
    for place in _places(report):
        code = place.code or PROVINCE  # a table's rows all say whose they are
        if part is Part.SUMMARY:
            row = place.model_dump(include=set(SECTIONS["summary"]))
            yield row | {"code": code, "name": _name(place, lang)}
        elif part is Part.HELPERS and place.code is not None:
            for helper in place.helpers:
                yield helper.model_dump()
        elif part is Part.HOURLY:
            for hour in place.hourly:
                yield hour.model_dump() | {"code": code}
        elif part is Part.STAFFING and place.staffing is not None:
            for advice in place.staffing.hours:
                yield advice.model_dump() | {"code": place.code}


def _cell(value: Any, metric: Metric) -> Any:
    """A value as a table cell: hours as local times, lists joined, empty for none."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    if metric.unit is Unit.SHARE:
        return round(value, 4)
    if metric.unit in (Unit.SECONDS, Unit.HOURS):
        return round(value, 1)
    return value


def rows(report: DailyReport, part: Part, lang: Lang) -> tuple[list[str], list[list[Any]]]:
    """The part as a header and rows of cells."""
    catalogue = SECTIONS[part.value]
    header = [_label(metric, lang) for metric in catalogue.values()]
    body = [
        [_cell(record.get(key), metric) for key, metric in catalogue.items()]
        for record in records(report, part, lang)
    ]
    return header, body


def _csv(header: list[str], body: list[list[Any]]) -> bytes:
    """A table as CSV, UTF-8 with a byte-order mark so that Excel reads the Chinese right."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(["" if cell is None else cell for cell in line] for line in body)
    return text.getvalue().encode("utf-8-sig")


def to_csv(report: DailyReport, part: Part, lang: Lang) -> bytes:
    """One part of the report as CSV."""
    return _csv(*rows(report, part, lang))


def _new_book() -> Workbook:
    book = Workbook()
    empty = book.active  # a new workbook comes with one empty sheet; the parts replace it
    if empty is not None:
        book.remove(empty)
    return book


def _table_sheet(
    book: Workbook, title: str, header: list[str], body: list[list[Any]], catalogue: list[Metric]
) -> Any:
    """A sheet of one table: bold frozen header, shares as percentages."""
    sheet = book.create_sheet(title)
    sheet.append(header)
    for line in body:
        sheet.append(line)
    for column, metric in enumerate(catalogue, start=1):
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = max(10, min(28, len(header[column - 1]) * 2))
        if metric.unit is Unit.SHARE:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.number_format = "0.0%"
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    return sheet


def _definitions_sheet(
    book: Workbook, sections: dict[str, dict[str, Metric]], notes: list[str], pick: int
) -> None:
    definitions = book.create_sheet(DEFINITIONS_TITLE[pick])
    definitions.append(["部分 part", "指标 key", "名称", "name", "单位 unit", "定义 definition"])
    for section, metrics in sections.items():
        for metric in metrics.values():
            definitions.append(
                [section, metric.key, metric.zh, metric.en, metric.unit.value, metric.definition]
            )
    for note in notes:
        definitions.append(["notes", "", "", "", "", note])
    definitions.column_dimensions["F"].width = 100


def _saved(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def to_xlsx(report: DailyReport, lang: Lang) -> bytes:
    """The whole report as a workbook: a sheet per part, an hourly chart, the definitions."""
    pick = 0 if lang is Lang.ZH else 1
    book = _new_book()
    for part in Part:
        header, body = rows(report, part, lang)
        catalogue = list(SECTIONS[part.value].values())
        sheet = _table_sheet(book, SHEET_TITLES[part][pick], header, body, catalogue)
        if part is Part.HOURLY and body:
            _hourly_chart(sheet, report, catalogue, lang)
        if part is Part.STAFFING and body:
            _staffing_chart(sheet, catalogue, lang, hours=len(report.cities[0].hourly))
    _definitions_sheet(book, SECTIONS, report.metadata.notes, pick)
    return _saved(book)


def ledger_file_name(ledger: Ledger, fmt: ReportFormat, part: LedgerPart | None = None) -> str:
    """`surge-ledger-2021-07-01-2021-07-31-province.json`, `...-320500-pairs.csv`."""
    suffix = f"-{part.value}" if fmt is ReportFormat.CSV and part is not None else ""
    span = f"{ledger.from_date.isoformat()}-{ledger.to_date.isoformat()}"
    return f"surge-ledger-{span}-{ledger.scope}{suffix}.{fmt.value}"


def ledger_rows(ledger: Ledger, part: LedgerPart) -> tuple[list[Metric], list[dict[str, Any]]]:
    """The ledger part's figures (in catalogue order) and its rows as plain values."""
    records = ledger.pairs if part is LedgerPart.PAIRS else ledger.cities
    return list(LEDGER_SECTIONS[part.value].values()), [row.model_dump() for row in records]


def _ledger_table(ledger: Ledger, part: LedgerPart, lang: Lang) -> tuple[list[str], list[Any]]:
    catalogue, records = ledger_rows(ledger, part)
    header = [_label(metric, lang) for metric in catalogue]
    body = [[_cell(record[metric.key], metric) for metric in catalogue] for record in records]
    return header, body


def render_ledger(
    ledger: Ledger, fmt: ReportFormat, *, part: LedgerPart = LedgerPart.PAIRS, lang: Lang = Lang.ZH
) -> bytes:
    """The ledger as a file's bytes: all of it (JSON, XLSX: a sheet per part) or one part (CSV)."""
    if fmt is ReportFormat.JSON:
        return orjson.dumps(ledger.as_json(), option=orjson.OPT_INDENT_2)
    if fmt is ReportFormat.CSV:
        return _csv(*_ledger_table(ledger, part, lang))
    pick = 0 if lang is Lang.ZH else 1
    book = _new_book()
    for each in LedgerPart:
        header, body = _ledger_table(ledger, each, lang)
        catalogue, _ = ledger_rows(ledger, each)
        _table_sheet(book, LEDGER_SHEET_TITLES[each][pick], header, body, catalogue)
    _definitions_sheet(book, LEDGER_SECTIONS, [], pick)
    return _saved(book)


def _column(catalogue: list[Metric], key: str) -> int:
    return next(i for i, metric in enumerate(catalogue, start=1) if metric.key == key)


def _chart(
    sheet: Any, chart: LineChart | BarChart, catalogue: list[Metric], keys: list[str], hours: int
) -> None:
    """Plot the `keys` columns of the sheet's first `hours` rows by hour, right of the table."""
    chart.height, chart.width = 9, 22
    for key in keys:
        column = _column(catalogue, key)
        chart.add_data(
            Reference(sheet, min_col=column, min_row=1, max_row=hours + 1), titles_from_data=True
        )
    hour = _column(catalogue, "hour")
    chart.set_categories(Reference(sheet, min_col=hour, min_row=2, max_row=hours + 1))
    sheet.add_chart(chart, f"{get_column_letter(len(catalogue) + 2)}2")


def _hourly_chart(sheet: Any, report: DailyReport, catalogue: list[Metric], lang: Lang) -> None:
    """Received and answered by hour for the report's first place (the province or the city)."""
    chart = LineChart()
    chart.title = "分时呼入与接通" if lang is Lang.ZH else "Calls by hour"
    chart.y_axis.title = "呼入量" if lang is Lang.ZH else "calls"
    keys = ["received", "answered", "abandoned", "answered_by_helpers"]
    _chart(sheet, chart, catalogue, keys, hours=len(_places(report)[0].hourly))


def _staffing_chart(sheet: Any, catalogue: list[Metric], lang: Lang, *, hours: int) -> None:
    """Agents needed against own agents, by hour, for the first city of the sheet."""
    chart = BarChart()
    chart.title = "明日所需坐席" if lang is Lang.ZH else "Agents needed tomorrow"
    _chart(sheet, chart, catalogue, ["agents_needed", "own_agents", "helper_seats"], hours)
