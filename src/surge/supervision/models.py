"""The notice table: what a supervisor told the agents serving a surge or a city."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from surge.db import Base, UTCDateTime, utcnow


class Notice(Base):
    """One notice, for a surge (`surge_id`) or for a city (`city_code`): exactly one is set."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    surge_id: Mapped[int | None] = mapped_column(ForeignKey("surge.id"), default=None, index=True)
    city_code: Mapped[str | None] = mapped_column(ForeignKey("city.code"), default=None, index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
