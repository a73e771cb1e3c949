"""Script book versions (each publish is a new immutable row with its whole content), the
agents' acknowledgements, and the knowledge gaps agents raise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from surge.calls.models import BigId
from surge.db import Base, UTCDateTime, utcnow


class ScriptAck(Base):
    """The newest script version of a city an agent's console confirmed it has loaded."""

    __tablename__ = "script_ack"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"), primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScriptVersion(Base):
    """One published version of a city's script book (never edited, never deleted)."""

    __tablename__ = "script_version"
    __table_args__ = (UniqueConstraint("city_code", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"))
    version: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    rolled_back_from: Mapped[int | None] = mapped_column(Integer, default=None)
    entry_count: Mapped[int] = mapped_column(Integer)
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Required: agents serving the city get none of its calls until they acknowledge it.
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class ScriptGapGroup(Base):
    """Questions agents found the host's scripts do not answer, grouped by similar wording.

    `question` is the first one raised (the group's representative: new gaps are compared with
    it); open until a publish names the group in `answers_gaps`.
    """

    __tablename__ = "script_gap_group"
    __table_args__ = (Index("ix_script_gap_group_city_code_status", "city_code", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"))
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    gaps: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_version: Mapped[int | None] = mapped_column(Integer, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ScriptGap(Base):
    """One question an agent raised on a call of the host `city_code` (its group's member)."""

    __tablename__ = "script_gap"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("script_gap_group.id"), index=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"))
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("call.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    agent_city: Mapped[str] = mapped_column(ForeignKey("city.code"))
    question: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
