"""`CallRow`, ingest's light row, names the call table's columns in the table's order."""

from __future__ import annotations

from surge.calls.models import Call
from surge.calls.service import CallRow


def test_call_row_has_the_call_tables_columns() -> None:
    assert CallRow._fields == tuple(Call.__table__.columns.keys())
