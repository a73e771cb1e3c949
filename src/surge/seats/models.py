"""The agent table: a user who takes calls, and the telephony endpoint that reaches it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from surge.db import Base, UTCDateTime, utcnow


class Agent(Base):
    """An agent of a home city; a cloud seat when it serves another city's calls."""

    __tablename__ = "agent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), unique=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
