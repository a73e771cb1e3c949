"""`CallRow`, ingest's light row, names the call table's columns in the table's order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from surge.calls.models import Call
from surge.calls.service import CallRow, as_queued
from surge.state.base import TRANSFERRED_PRIORITY, queue_score


def test_call_row_has_the_call_tables_columns() -> None:
    assert CallRow._fields == tuple(Call.__table__.columns.keys())


def test_a_transferred_call_is_rebuilt_ahead_with_its_note() -> None:
    received = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    fields: dict[str, Any] = dict.fromkeys(CallRow._fields)
    fields.update(id=7, city_code="320100", caller="13812345678", channel="phone", priority=2,
                  status="queued", received_at=received, transfers=0)  # fmt: skip
    fresh = CallRow(**fields)
    handed = fresh._replace(transfers=1, transfer_note="请南京答复")

    assert (as_queued(fresh).priority, as_queued(fresh).note) == (2, None)
    rebuilt = as_queued(handed)
    assert (rebuilt.priority, rebuilt.note, rebuilt.transferred) == (2, "请南京答复", True)
    assert rebuilt.score == queue_score(TRANSFERRED_PRIORITY, 7)
    assert rebuilt.enqueued_at == received.timestamp()  # its original place by arrival
    assert rebuilt.score < as_queued(fresh._replace(id=1, priority=9)).score
