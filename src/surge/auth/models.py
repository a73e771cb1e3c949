"""The user table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from surge.db import Base, UTCDateTime, utcnow


class Role(StrEnum):
    """What a user may do; a token carries it."""

    COORDINATOR = "coordinator"
    CITY_ADMIN = "city_admin"
    AGENT = "agent"
    CTI = "cti"


class User(Base):
    """Someone (or some system) that logs in."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    city_code: Mapped[str | None] = mapped_column(ForeignKey("city.code"), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Tokens carry the version they were issued under; changing it withdraws them all.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
