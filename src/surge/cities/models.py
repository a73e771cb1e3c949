"""The city table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from surge.db import Base, UTCDateTime, utcnow


class City(Base):
    """A city 12345 hotline, identified by its 6-digit administrative code."""

    __tablename__ = "city"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(32))
    seats: Mapped[int] = mapped_column(Integer)
    normal_rate_per_hour: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
