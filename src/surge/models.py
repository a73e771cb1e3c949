"""Every ORM model, imported in one place so metadata is complete (Alembic, tests)."""

from surge.auth.models import User
from surge.calls.models import Call, CallEvent
from surge.cities.models import City
from surge.db import Base
from surge.reports.models import ReportExport
from surge.scripts.models import ScriptAck, ScriptGap, ScriptGapGroup, ScriptVersion
from surge.seats.models import Agent
from surge.supervision.models import Notice
from surge.surges.models import AuditEntry, Surge, SurgeWave, SurgeWaveCity

__all__ = [
    "Agent",
    "AuditEntry",
    "Base",
    "Call",
    "CallEvent",
    "City",
    "Notice",
    "ReportExport",
    "ScriptAck",
    "ScriptGap",
    "ScriptGapGroup",
    "ScriptVersion",
    "Surge",
    "SurgeWave",
    "SurgeWaveCity",
    "User",
]
