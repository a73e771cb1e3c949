"""Bus events and frames: caller masking, ISO 8601 times and frame shapes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from surge.events import to_agent, to_cti
from surge.seats.frames import cti_call_connected, cti_call_offered, error, iso, mask_caller

DIGITS = "0123456789"


@pytest.mark.parametrize(
    ("caller", "masked"),
    [
        ("13812345678", "138****5678"),
        ("15900001111", "159****1111"),
    ],
)
def test_mask_caller_contract_examples(caller: str, masked: str) -> None:
    assert mask_caller(caller) == masked


@pytest.mark.parametrize("length", range(3, 33))
def test_mask_caller_hides_at_least_a_third_for_every_length(length: int) -> None:
    caller = (DIGITS * 4)[:length]
    masked = mask_caller(caller)
    assert len(masked) == length
    assert masked.count("*") >= math.ceil(length / 3), masked


@given(st.text(alphabet=DIGITS, min_size=3, max_size=32))
@example("4006001234")  # a 10-digit service number once showed 7 of its 10 digits
def test_mask_caller_hides_at_least_a_third(caller: str) -> None:
    masked = mask_caller(caller)
    assert len(masked) == len(caller)
    assert masked.count("*") >= math.ceil(len(caller) / 3), masked


@given(st.text(alphabet=DIGITS, min_size=0, max_size=32))
def test_mask_caller_shape(caller: str) -> None:
    masked = mask_caller(caller)
    assert len(masked) == len(caller)
    head = len(masked) - len(masked.lstrip(DIGITS))
    tail = len(masked) - len(masked.rstrip(DIGITS)) if head < len(masked) else 0
    # one run of shown head, one run of stars, one run of shown tail, nothing else
    assert (
        masked == caller[:head] + "*" * (len(caller) - head - tail) + caller[len(caller) - tail :]
    )
    assert tail <= 4
    assert head <= 3


@given(st.text(alphabet=DIGITS, min_size=1, max_size=32))
def test_mask_caller_never_shows_everything(caller: str) -> None:
    assert "*" in mask_caller(caller)


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_mask_caller_mobile_shows_three_and_four(caller: str) -> None:
    masked = mask_caller(caller)
    assert masked == caller[:3] + "****" + caller[-4:]


@given(st.from_regex(r"[0-9+\-*#() ]{1,32}", fullmatch=True))
def test_mask_caller_only_replaces_with_stars(caller: str) -> None:
    masked = mask_caller(caller)
    assert len(masked) == len(caller)
    assert all(m in (c, "*") for c, m in zip(caller, masked, strict=True))
    shown = sum(c == m != "*" for c, m in zip(caller, masked, strict=True))
    assert shown <= 7


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0, "1970-01-01T00:00:00+00:00"),
        (1_700_000_000, "2023-11-14T22:13:20+00:00"),
        (1_700_000_000.25, "2023-11-14T22:13:20.250000+00:00"),
    ],
)
def test_iso_examples(epoch: float, text: str) -> None:
    assert iso(epoch) == text


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_iso_is_utc_with_offset_and_round_trips(epoch: float) -> None:
    text = iso(epoch)
    assert text.endswith("+00:00")
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == timedelta(0)
    assert abs(parsed.timestamp() - epoch) <= 1e-6


def test_cti_frame() -> None:
    frame = cti_call_offered(call_id=42, at=1_700_000_000.5, agent_id=7, offer_id="o-1")
    assert frame == {
        "type": "call.offered",
        "call_id": 42,
        "at": "2023-11-14T22:13:20.500000+00:00",
        "agent_id": 7,
        "offer_id": "o-1",
    }


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_cti_frame_time_has_utc_offset(at: float) -> None:
    frame = cti_call_connected(call_id=1, at=at, agent="a", endpoint="sip:a")
    assert isinstance(frame["at"], str)
    assert frame["at"].endswith("+00:00")
    assert frame["at"] == iso(at)


def test_envelopes_and_error_frame() -> None:
    frame = error(code="offer_unavailable", message="gone")
    assert frame == {"type": "error", "code": "offer_unavailable", "message": "gone"}
    assert to_agent(7, frame) == {"to": "agent", "agent_id": 7, "frame": frame}
    assert to_cti("330100", frame) == {"to": "cti", "city": "330100", "frame": frame}
