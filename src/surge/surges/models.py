"""Surges, their waves, the helper cities of each wave, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from surge.db import Base, UTCDateTime, utcnow

LIVE_SURGE = text("status IN ('active', 'draining')")


class Surge(Base):
    """Many-help-one for one host city: `active` until the coordinator ends it, then `draining`
    while helpers finish the calls in hand, then `ended`."""

    __tablename__ = "surge"
    __table_args__ = (
        # One live surge per host, even when two coordinators click at once. A draining surge
        # still holds its host: the helpers' calls in hand count against its quotas.
        Index(
            "uq_surge_live_host",
            "host_city",
            unique=True,
            postgresql_where=LIVE_SURGE,
            sqlite_where=LIVE_SURGE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_city: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    status: Mapped[str] = mapped_column(String(8), index=True)
    overflow_after_s: Mapped[float] = mapped_column(Float)
    allow_shared_helpers: Mapped[bool] = mapped_column(Boolean, default=False)
    # Weighs its callers' waits against other hosts' when they share a helper.
    severity: Mapped[float] = mapped_column(Float, default=1.0, server_default=text("1.0"))
    # Every host call abandoned after the short-abandon threshold becomes a callback (回拨).
    callbacks: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(64), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    waves: Mapped[list[SurgeWave]] = relationship(
        back_populates="surge", order_by="SurgeWave.number", lazy="selectin"
    )


class SurgeWave(Base):
    """A group of helper cities, each lending `seats_per_city` agents once the wave is active.

    Each keeps `reserve` of its free agents for its own callers (the largest reserve of its
    active waves, see `router.policy.helper_reserves`).
    """

    __tablename__ = "surge_wave"
    __table_args__ = (UniqueConstraint("surge_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    surge_id: Mapped[int] = mapped_column(ForeignKey("surge.id"))
    number: Mapped[int] = mapped_column(Integer)
    seats_per_city: Mapped[int] = mapped_column(Integer)
    # Free agents each of its helpers keeps back for its own callers.
    reserve: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    surge: Mapped[Surge] = relationship(back_populates="waves")
    cities: Mapped[list[SurgeWaveCity]] = relationship(
        order_by="SurgeWaveCity.city_code", lazy="selectin"
    )


class SurgeWaveCity(Base):
    """A helper city in a wave."""

    __tablename__ = "surge_wave_city"

    wave_id: Mapped[int] = mapped_column(ForeignKey("surge_wave.id"), primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), primary_key=True)


class AuditEntry(Base):
    """Who (a user, or `system`) did what to a surge, when and why."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    surge_id: Mapped[int | None] = mapped_column(ForeignKey("surge.id"), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
