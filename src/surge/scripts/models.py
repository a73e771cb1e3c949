"""Script book versions: each publish is a new immutable row with its whole content."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

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
