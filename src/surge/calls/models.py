"""The call table and its event history (every status change with its time, seat and reason)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from surge.db import Base, UTCDateTime, utcnow

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Call(Base):
    """A citizen's call (or app, WeChat, web or SMS request) and, once handled, its ticket."""

    __tablename__ = "call"
    __table_args__ = (
        Index("ix_call_city_code_received_at", "city_code", "received_at"),
        # The province-wide daily report reads one day of every city's calls.
        Index("ix_call_received_at", "received_at"),
        CheckConstraint("feedback_score BETWEEN 1 AND 5", name="feedback_score_range"),
        # A telephony key names one call of one city: two cities' CTIs may use the same keys.
        UniqueConstraint("city_code", "external_id", name="uq_call_city_code_external_id"),
        # A caller calling again is matched to its pending callback: only callbacks are indexed,
        # so a plain call's insert does not pay for it.
        Index(
            "ix_call_callback_caller",
            "city_code",
            "caller",
            postgresql_where=text("callback_requested_at IS NOT NULL"),
            sqlite_where=text("callback_requested_at IS NOT NULL"),
        ),
        # Hot issues read the tickets completed in the last hours: only completed calls are
        # indexed, so an arriving call (queued) does not pay for it.
        Index(
            "ix_call_completed_ended_at",
            "ended_at",
            postgresql_where=text("status = 'completed'"),
            sqlite_where=text("status = 'completed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), default=None)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"))
    caller: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    status: Mapped[str] = mapped_column(String(12), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), index=True, default=None)
    offer_id: Mapped[str | None] = mapped_column(String(32), default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    disposition: Mapped[str | None] = mapped_column(String(16), default=None)
    category_code: Mapped[str | None] = mapped_column(String(16), default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    script_version: Mapped[int | None] = mapped_column(Integer, default=None)
    script_key: Mapped[str | None] = mapped_column(String(64), default=None)
    # The satisfaction follow-up (回访), once per connected call: satisfied or not, and the 1-5
    # score when the citizen gave one (4 and 5 count as satisfied).
    satisfied: Mapped[bool | None] = mapped_column(Boolean, default=None)
    feedback_score: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The end of its agent's wrap-up (话后整理) after the ticket closed, by itself or by the agent:
    # the handling time runs to it. None without one (off, cut short by a disconnect or a lost
    # hot state), and then the handling time ends with the ticket.
    wrapped_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Transfers (an agent sent the call in hand to a city's queue): how many so far (bounded by
    # `SURGE_TRANSFER_LIMIT`), and the last one's note for the next agent. A transferred call
    # waits ahead of the fresh calls, for the city's own agents.
    transfers: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    transfer_note: Mapped[str | None] = mapped_column(Text, default=None)
    # A callback (回拨): when it was requested (None: a plain call), how many dial-outs did not
    # reach the caller, and, while it waits to be dialled again (`redial`), when it is due back
    # in its queue (at its original place).
    callback_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    callback_attempts: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default=text("0")
    )
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The host's script version when the offer was accepted and when the ticket was completed,
    # read by the server in the same statement (what the agent cited is `script_version`): a
    # ticket is stale when either of the first two is older than the last.
    script_version_at_accept: Mapped[int | None] = mapped_column(Integer, default=None)
    script_version_at_complete: Mapped[int | None] = mapped_column(Integer, default=None)
    # The caller's number as the day's salted hash (`calls.callers`): the daily report counts
    # unique and repeat callers by it and never reads the number. None: received before it was
    # recorded (each such call counts as a caller of its own). Not indexed: nothing looks a key
    # up, and the report reads the day's rows through the received_at index anyway.
    caller_key: Mapped[int | None] = mapped_column(BigInteger, default=None)


class CallEvent(Base):
    """One status change of a call: when, from what to what, which seat, why, where."""

    __tablename__ = "call_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(12), default=None)
    to_status: Mapped[str] = mapped_column(String(12))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), default=None)
    offer_id: Mapped[str | None] = mapped_column(String(32), default=None)
    reason: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)  # a person's words: why
    instance: Mapped[str | None] = mapped_column(String(64), default=None)
