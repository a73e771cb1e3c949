"""The daily report benchmark: a day like Nanjing's 2021-07-25 in PostgreSQL, then the report.

Run it (needs PostgreSQL on 127.0.0.1:5432, trust auth; `SURGE_BENCH_POSTGRES_URL` points it at
another server)::

    .venv/bin/python -m loadtests.report            # full size; keeps `surge_bench_report`
    .venv/bin/python -m loadtests.report --reuse    # the same, on the kept database if it fits
    .venv/bin/python -m loadtests.report --short    # small, on a database dropped at the end
    .venv/bin/python -m loadtests.report --reuse --baseline ../main   # and without the new figures

1. Generate: a database of its own, migrated and seeded with the 13 cities; every city's agents
   (Nanjing 113, the others their planned seats) and three Nanjing surges with their waves and
   audit trail; then the day 2021-07-25 (Asia/Shanghai) of calls and each call's `call_event`
   history, drawn server-side by `INSERT ... SELECT` over `generate_series` (two connections
   at once, secondary indexes built after, foreign keys checked once at the end). Full size:
   1,008,000 Nanjing calls on an outbreak-day hourly profile, about 18 % answered (15 % of
   those by helper-city agents during the surges), the rest abandoned, a quarter within 5 s;
   the other 12 cities an ordinary day (`normal_rate_per_hour` x 24), about 90 % answered; 30 %
   of completed calls with a follow-up answer; each call's `caller_key` (md5 of the number in
   place of the service's HMAC: the same distinctness, for `unique_callers`). That is about
   1.04 M calls and 2.6 M events (an abandoned call has two, an answered one four). Then
   VACUUM ANALYZE, so the report reads the tables as autovacuum would have left them.
2. Time: `surge report daily --date 2021-07-25 --format F --out FILE` as its own process, as an
   analyst runs it, for F in json, xlsx and csv. *province F* is the wall time from spawn to
   exit (interpreter start included; target < 10 s); *peak RSS* is the process's maximum
   resident set (target < 500 MB), read by a small parent interpreter (~10 MB, the floor of
   the figure). Each output is checked: Nanjing's `received` is the number of Nanjing calls
   generated, and the JSON's cities add up to every call generated.

3. The extra cost of the report's caller figures (`unique_callers`, `repeat_attempts`): their
   two `count(DISTINCT caller_key)` queries timed alone on the day, and, with `--baseline
   CHECKOUT` (a source tree without them, e.g. ``/work/main``), the JSON report by that tree's
   code and then by this one's, back to back, side by side.

Exit status: 0 when the benchmark ran, whatever PASS or MISS it printed; 1 when it broke.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from loadtests.bench import Figure
from loadtests.stack import (
    PG_ADMIN_URL,
    SURGE,
    BenchError,
    create_database,
    database_url,
    drop_database,
    exit_code,
    service_env,
)
from surge import migrate
from surge.auth.models import Role
from surge.auth.service import hash_password
from surge.cities import service as cities_service
from surge.db import create_sessionmaker
from surge.reports import service as reports_service
from surge.scripts.classification import Classification
from surge.settings import Settings
from surge.surges.models import AuditEntry, Surge, SurgeWave, SurgeWaveCity

Out = Callable[[str], None]

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2021, 7, 25)
DAY_START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=TZ)
DAY_END = DAY_START + timedelta(days=1)
HOST = "320100"  # Nanjing
HOST_AGENTS = 113
FORMATS = ("json", "xlsx", "csv")
TARGET_S = 10.0
TARGET_MB = 500.0
PARTS = 2  # calls and events are written by this many connections at once

# Calls per hour, relative. Nanjing on day 5 of the Lukou airport outbreak: quiet at night,
# a late-morning and an afternoon peak well into the evening.
OUTBREAK_PROFILE = (
    0.8, 0.5, 0.35, 0.3, 0.3, 0.5, 1.2, 2.8, 5.0, 6.8, 7.6, 7.2,
    5.6, 5.8, 6.8, 7.2, 6.9, 5.8, 4.6, 4.2, 3.8, 3.2, 2.2, 1.4,
)  # fmt: skip
# An ordinary day of a city hotline: office hours, a dip at lunch.
NORMAL_PROFILE = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 3.5, 4.6, 4.8, 4.2,
    2.8, 3.2, 4.3, 4.5, 4.2, 3.4, 2.2, 1.8, 1.5, 1.1, 0.7, 0.4,
)  # fmt: skip


@dataclass(frozen=True)
class Mix:
    """How one city's calls end: answer rate, waits and the share that hangs up at once."""

    answered: float
    answer_wait_mean_s: float  # exponential, capped at wait_cap_s
    abandon_wait_mean_s: float  # after the first 5 s
    quick_abandon: float  # of the abandoned: gone within 5 s
    wait_cap_s: float
    outbreak_categories: float  # share of calls about the epidemic (category 01xx)


HOST_MIX = Mix(0.18, 150.0, 75.0, 0.30, 1800.0, 0.70)
NORMAL_MIX = Mix(0.90, 20.0, 30.0, 0.30, 600.0, 0.10)
HELPER_SHARE = 0.15  # of Nanjing's answered calls, answered by agents of helper cities
OFFERED_ABANDON = 0.10  # of abandoned calls: hung up while an agent's phone was ringing
IN_PROGRESS_SHARE = 0.30  # of calls answered in the last 20 minutes: still connected
FEEDBACK_SHARE = 0.30  # of completed calls: the satisfaction follow-up was answered
RETRY_EVERY = 20  # every 20th answered call that waited > 40 s had an offer expire first


@dataclass(frozen=True)
class WaveSpec:
    """A wave of a generated surge: seats per helper city, when activated (local), cities."""

    seats_per_city: int
    activated: str | None
    cities: tuple[str, ...]


@dataclass(frozen=True)
class SurgeSpec:
    """A generated Nanjing surge, local times of the day."""

    created: str
    ended: str
    overflow_after_s: float
    waves: tuple[WaveSpec, ...]


SURGES = (
    SurgeSpec("07:40", "12:50", 30.0, (
        WaveSpec(10, "07:40", ("320200", "320400", "320500")),
        WaveSpec(8, "09:20", ("320600", "321000", "321100")),
    )),
    SurgeSpec("13:30", "18:45", 20.0, (
        WaveSpec(10, "13:30", ("320200", "320500", "321100", "321200")),
        WaveSpec(8, "15:00", ("320300", "320900", "321300")),
        WaveSpec(6, None, ("320700", "320800")),
    )),
    SurgeSpec("19:10", "23:20", 45.0, (
        WaveSpec(8, "19:10", ("320400", "320500", "320700", "320800")),
    )),
)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """The size of one run and what happens to its database."""

    name: str
    host_calls: int  # Nanjing's calls that day
    other_scale: float  # of each other city's ordinary day
    database: str | None  # a fixed name (kept for --reuse), or None: a fresh one, dropped
    report_timeout_s: float


FULL = Config("full", 1_008_000, 1.0, "surge_bench_report", 600.0)
SHORT = Config("short", 20_000, 0.1, None, 120.0)


@dataclass
class Generated:
    """What the generator wrote (or found, with --reuse) and how long it took."""

    calls: dict[str, int]
    events: int
    users: int
    agents: int
    surges: int
    waves: int
    wave_cities: int
    host_answered: int
    host_by_helpers: int
    host_quick_abandoned: int
    in_progress: int
    feedback: int | None  # None: the database has no feedback columns
    seconds: dict[str, float]
    revision: str
    reused: bool = False

    @property
    def total_calls(self) -> int:
        """Every city's calls."""
        return sum(self.calls.values())

    def lines(self) -> list[str]:
        """The generation summary."""
        host = self.calls.get(HOST, 0)
        answered = self.host_answered / host if host else math.nan
        helpers = self.host_by_helpers / self.host_answered if self.host_answered else math.nan
        quick = self.host_quick_abandoned / host if host else math.nan
        took = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        feedback = "no feedback columns" if self.feedback is None else f"{self.feedback:,} feedback"
        return [
            f"generate{' (reused)' if self.reused else ''}: {self.total_calls:,} calls "
            f"(Nanjing {host:,}), {self.events:,} call events, {self.agents:,} agents, "
            f"{self.surges} surges in {sum(self.seconds.values()):.1f} s",
            f"  Nanjing: {answered:.1%} answered ({helpers:.1%} of them by helper cities), "
            f"{quick:.1%} abandoned within 5 s; province: {self.in_progress:,} still connected, "
            f"{feedback}",
            f"  rows: call {self.total_calls:,}; call_event {self.events:,}; user {self.users:,}; "
            f"agent {self.agents:,}; surge {self.surges}; surge_wave {self.waves}; "
            f"surge_wave_city {self.wave_cities}; schema revision {self.revision}",
            f"  time: {took}",
        ]


@dataclass
class ReportRun:
    """One `surge report daily` process."""

    fmt: str
    seconds: float
    peak_rss_mb: float
    size_bytes: int
    host_received: int | None  # what the output says Nanjing received

    def figures(self) -> list[Figure]:
        """Wall time and peak memory against the targets."""
        return [
            Figure(f"province {self.fmt}", self.seconds, "s", TARGET_S, False, 2),
            Figure("peak RSS", self.peak_rss_mb, "MB", TARGET_MB, False, 0),
        ]


@dataclass
class Result:
    """What a run generated and measured, and what went wrong."""

    config: Config
    database: str
    generated: Generated | None = None
    runs: dict[str, ReportRun] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        """Whether the benchmark itself failed (as opposed to missing a target)."""
        return bool(self.problems) or self.generated is None

    def lines(self) -> list[str]:
        """The figure lines, then the verdict."""
        out = [f"report: {'; '.join(str(f) for f in r.figures())}" for r in self.runs.values()]
        everything = [f for r in self.runs.values() for f in r.figures()]
        missed = sum(not f.passed for f in everything)
        out.append(
            f"result: {len(everything) - missed} PASS, {missed} MISS, {len(self.problems)} problems"
        )
        out += [f"  problem: {p}" for p in self.problems]
        return out


# --- the plan of the day ----------------------------------------------------------------------


def spread(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into parts proportional to `weights` that add up exactly."""
    scale = total / sum(weights)
    parts = [math.floor(w * scale) for w in weights]
    remainders = sorted(
        range(len(weights)), key=lambda i: weights[i] * scale - parts[i], reverse=True
    )
    for i in remainders[: total - sum(parts)]:
        parts[i] += 1
    return parts


def local(clock: str) -> datetime:
    """A local time of the day ("HH:MM") as an aware datetime."""
    hours, minutes = (int(x) for x in clock.split(":"))
    return DAY_START + timedelta(hours=hours, minutes=minutes)


def city_calls(config: Config) -> dict[str, int]:
    """How many calls each city receives in the day."""
    return {
        str(city["code"]): config.host_calls
        if city["code"] == HOST
        else round(float(str(city["normal_rate_per_hour"])) * 24 * config.other_scale)
        for city in cities_service.seed_data()
    }


def city_agents() -> dict[str, int]:
    """How many agents each city has: Nanjing 113, the others their planned seats."""
    return {
        str(city["code"]): HOST_AGENTS if city["code"] == HOST else int(str(city["seats"]))
        for city in cities_service.seed_data()
    }


@dataclass(frozen=True)
class Segment:
    """A stretch of the day with one set of helper agents serving Nanjing."""

    start: datetime
    end: datetime
    agents: tuple[int, ...]


def helper_segments(pools: dict[str, list[int]]) -> list[Segment]:
    """Each surge cut where a wave comes in: the helper agents lent in each stretch."""
    segments = []
    for spec in SURGES:
        ended = local(spec.ended)
        starts = sorted({local(w.activated) for w in spec.waves if w.activated is not None})
        for begin, end in zip(starts, [*starts[1:], ended], strict=True):
            agents = tuple(
                agent
                for wave in spec.waves
                if wave.activated is not None and local(wave.activated) <= begin
                for city in wave.cities
                for agent in pools[city][: wave.seats_per_city]
            )
            segments.append(Segment(begin, end, agents))
    return segments


def share_of_day(segments: Sequence[Segment], profile: Sequence[float]) -> float:
    """The share of a day's calls (on `profile`, even within each hour) inside the segments."""
    covered = 0.0
    for segment in segments:
        t = segment.start
        while t < segment.end:
            hour_end = t.replace(minute=0, second=0) + timedelta(hours=1)
            stop = min(hour_end, segment.end)
            covered += profile[t.hour] * (stop - t).total_seconds() / 3600
            t = stop
    return covered / sum(profile)


# --- generation -------------------------------------------------------------------------------


async def fetch_int(connection: AsyncConnection, sql: str, **params: Any) -> int:
    """One integer from one query."""
    return int((await connection.execute(text(sql), params)).scalar_one())


async def feedback_columns(connection: AsyncConnection) -> bool:
    """Whether `call` has the satisfaction follow-up columns (migration 0005)."""
    found = await fetch_int(
        connection,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'call'"
        " AND column_name IN ('satisfied', 'feedback_score', 'feedback_at')",
    )
    return found == 3


async def seed_people(connection: AsyncConnection) -> dict[str, list[int]]:
    """A coordinator and every city's agents (user + agent rows); each city's agent ids."""
    # One real hash for all: nobody logs in with these accounts, but the rows stay valid.
    password_hash = await hash_password(secrets.token_hex(16))
    counts = city_agents()
    await connection.execute(
        text(
            'INSERT INTO "user" (username, password_hash, role, city_code, is_active, created_at)'
            " VALUES ('coordinator', :hash, :role, NULL, true, :at)"
        ),
        {"hash": password_hash, "role": Role.COORDINATOR.value, "at": DAY_START},
    )
    await connection.execute(
        text(
            'INSERT INTO "user" (username, password_hash, role, city_code, is_active, created_at)'
            " SELECT 'agent-' || c.code || '-' || lpad(g::text, 3, '0'), :hash, :role, c.code,"
            "  true, :at"
            " FROM unnest(CAST(:codes AS text[]), CAST(:counts AS integer[])) AS c(code, n)"
            " CROSS JOIN LATERAL generate_series(1, c.n) AS g ORDER BY c.code, g"
        ),
        {
            "hash": password_hash,
            "role": Role.AGENT.value,
            "at": DAY_START,
            "codes": list(counts),
            "counts": list(counts.values()),
        },
    )
    await connection.execute(
        text(
            "INSERT INTO agent (user_id, city_code, name, endpoint, created_at)"
            " SELECT id, city_code, username, 'sip:' || username || '@' || city_code"
            "  || '.12345.local', created_at FROM \"user\" WHERE role = :role ORDER BY id"
        ),
        {"role": Role.AGENT.value},
    )
    rows = await connection.execute(
        text("SELECT city_code, array_agg(id ORDER BY id) FROM agent GROUP BY city_code")
    )
    return {str(code): list(ids) for code, ids in rows.all()}


async def seed_surges(connection: AsyncConnection) -> None:
    """The day's Nanjing surges, their waves and helper cities, and the audit trail."""
    reason = "禄口机场疫情：南京 12345 来电激增"
    for spec in SURGES:
        created, ended = local(spec.created), local(spec.ended)
        surge_id = (
            await connection.execute(
                insert(Surge)
                .values(
                    host_city=HOST,
                    status="ended",
                    overflow_after_s=spec.overflow_after_s,
                    allow_shared_helpers=False,
                    created_by="coordinator",
                    created_at=created,
                    ended_by="coordinator",
                    ended_at=ended,
                )
                .returning(Surge.id)
            )
        ).scalar_one()
        for number, wave in enumerate(spec.waves, start=1):
            activated = None if wave.activated is None else local(wave.activated)
            wave_id = (
                await connection.execute(
                    insert(SurgeWave)
                    .values(
                        surge_id=surge_id,
                        number=number,
                        seats_per_city=wave.seats_per_city,
                        activated_at=activated,
                    )
                    .returning(SurgeWave.id)
                )
            ).scalar_one()
            await connection.execute(
                insert(SurgeWaveCity), [{"wave_id": wave_id, "city_code": c} for c in wave.cities]
            )
            if number > 1 and activated is not None:
                detail = {"wave": number, "cities": list(wave.cities)}
                await connection.execute(
                    insert(AuditEntry).values(
                        at=activated,
                        actor="coordinator",
                        action="wave.activated",
                        surge_id=surge_id,
                        detail=detail,
                    )
                )
        created_detail = {
            "host_city": HOST,
            "waves": [{"cities": list(w.cities), "seats_per_city": w.seats_per_city}
                      for w in spec.waves],
            "overflow_after_s": spec.overflow_after_s,
            "allow_shared_helpers": False,
        }  # fmt: skip
        await connection.execute(
            insert(AuditEntry),
            [
                {"at": created, "actor": "coordinator", "action": "surge.created",
                 "surge_id": surge_id, "detail": created_detail, "reason": reason},
                {"at": ended, "actor": "coordinator", "action": "surge.ended",
                 "surge_id": surge_id, "detail": {}, "reason": None},
            ],
        )  # fmt: skip


# Calls are drawn in layers: `r` holds one row per call with its random numbers (a subquery
# with volatile columns is never flattened, so each is drawn once); the layers above decide the
# outcome, the seat, the times and the ticket from them. Each part (a run of hours) goes in in
# time order with ids given in that order, as the service would have written them.
CALLS_SQL = """
INSERT INTO call (id, city_code, caller, channel, priority, status, agent_id, received_at,
                  connected_at, ended_at, disposition, category_code{feedback_columns},
                  caller_key)
SELECT :first_id - 1 + row_number() OVER (ORDER BY received_at), city_code, caller, channel,
       0, status, agent_id, received_at, connected_at, ended_at, disposition,
       category_code{feedback_values},
       ('x' || substr(md5(caller), 1, 16))::bit(64)::bigint
FROM (
  SELECT s.*,
    CASE WHEN s.r_channel < 0.80 THEN 'phone' WHEN s.r_channel < 0.88 THEN 'app'
         WHEN s.r_channel < 0.94 THEN 'wechat' WHEN s.r_channel < 0.98 THEN 'web' ELSE 'sms'
    END AS channel,
    CASE s.status
      WHEN 'completed' THEN s.connected_at + (120 + s.r_handle * 280) * interval '1 second'
      WHEN 'abandoned' THEN s.received_at + s.wait_s * interval '1 second'
    END AS ended_at,
    CASE WHEN s.status = 'completed' THEN
      CASE WHEN s.r_disposition < 0.85 THEN 'answered' ELSE 'transferred' END
    END AS disposition,
    CASE WHEN s.status = 'completed' THEN
      CASE WHEN s.r_category < s.outbreak_share
        THEN (CAST(:outbreak_codes AS text[]))[1 + floor(s.r_code * :n_outbreak)::int]
        ELSE (CAST(:codes AS text[]))[1 + floor(s.r_code * :n_codes)::int]
      END
    END AS category_code,
    CASE WHEN s.status = 'completed' AND s.r_feedback < :feedback_share AND s.r_scored < 0.8
      THEN CAST(CASE WHEN s.r_score < 0.10 THEN 1 WHEN s.r_score < 0.18 THEN 2
                     WHEN s.r_score < 0.30 THEN 3 WHEN s.r_score < 0.55 THEN 4 ELSE 5
                END AS smallint)
    END AS feedback_score,
    CASE WHEN s.status = 'completed' AND s.r_feedback < :feedback_share THEN
      CASE WHEN s.r_scored < 0.8 THEN s.r_score >= 0.30 ELSE s.r_satisfied < 0.7 END
    END AS satisfied,
    CASE WHEN s.status = 'completed' AND s.r_feedback < :feedback_share
      THEN s.connected_at + (120 + s.r_handle * 280 + 300 + s.r_feedback_at * 43200)
           * interval '1 second'
    END AS feedback_at
  FROM (
    SELECT w.*,
      CASE WHEN NOT w.answered THEN 'abandoned'
           WHEN w.received_at >= :in_progress_from AND w.r_progress < :in_progress_share
             THEN 'connected'
           ELSE 'completed'
      END AS status,
      CASE WHEN w.answered THEN w.received_at + w.wait_s * interval '1 second' END
        AS connected_at,
      CASE
        WHEN w.answered AND w.by_helper
          THEN (CAST(:pool AS integer[]))[w.helper_start + floor(w.r_agent * w.helper_len)::int]
        WHEN w.answered OR w.r_offered < :offered_abandon
          THEN (CAST(:pool AS integer[]))[w.own_start + floor(w.r_agent * w.own_len)::int]
      END AS agent_id
    FROM (
      SELECT r.*, g.start AS helper_start, g.len AS helper_len,
        r.r_answer < r.p_answer AS answered,
        g.start IS NOT NULL AND r.r_helper < :p_helper AS by_helper,
        CASE
          WHEN r.r_answer < r.p_answer
            THEN least(r.wait_cap, -ln(1 - r.r_wait) * r.answer_mean)
          WHEN r.r_quick < r.quick_share THEN r.r_wait * 5
          ELSE least(r.wait_cap, 5 - ln(1 - r.r_wait) * r.abandon_mean)
        END AS wait_s
      FROM (
        SELECT p.city_code, p.p_answer, p.answer_mean, p.abandon_mean, p.quick_share,
          p.wait_cap, p.outbreak_share, p.own_start, p.own_len,
          CAST(:day_start AS timestamptz) + (p.hour + random()) * interval '1 hour'
            AS received_at,
          '1' || (ARRAY['38','39','37','36','58','59','88','87','51','52'])
            [1 + floor(random() * 10)::int] || lpad(floor(random() * 1e8)::bigint::text, 8, '0')
            AS caller,
          random() AS r_channel, random() AS r_answer, random() AS r_wait, random() AS r_quick,
          random() AS r_helper, random() AS r_agent, random() AS r_offered, random() AS r_progress,
          random() AS r_handle, random() AS r_disposition, random() AS r_category,
          random() AS r_code, random() AS r_feedback, random() AS r_feedback_at,
          random() AS r_scored, random() AS r_score, random() AS r_satisfied
        FROM unnest(
          CAST(:plan_city AS text[]), CAST(:plan_hour AS integer[]),
          CAST(:plan_n AS integer[]), CAST(:plan_answer AS float8[]),
          CAST(:plan_answer_mean AS float8[]), CAST(:plan_abandon_mean AS float8[]),
          CAST(:plan_quick AS float8[]), CAST(:plan_cap AS float8[]),
          CAST(:plan_outbreak AS float8[]), CAST(:plan_own_start AS integer[]),
          CAST(:plan_own_len AS integer[])
        ) AS p(city_code, hour, n, p_answer, answer_mean, abandon_mean, quick_share, wait_cap,
               outbreak_share, own_start, own_len)
        CROSS JOIN LATERAL generate_series(1, p.n) AS i
      ) AS r
      LEFT JOIN unnest(
        CAST(:seg_start_at AS timestamptz[]), CAST(:seg_end_at AS timestamptz[]),
        CAST(:seg_start AS integer[]), CAST(:seg_len AS integer[])
      ) AS g(start_at, end_at, start, len)
        ON r.city_code = :host AND r.received_at >= g.start_at AND r.received_at < g.end_at
    ) AS w
  ) AS s
) AS f
ORDER BY received_at
"""

# Each call's history, derived from the call row: queued; for an answered call perhaps an
# offer that expired, then offered, connected and (unless still connected) completed; for an
# abandoned call, abandoned from the queue or while ringing. Offer ids and the service
# instance are derived from the call id so they stay the same between the rows of one call.
EVENTS_SQL = """
INSERT INTO call_event (call_id, at, from_status, to_status, agent_id, offer_id, reason,
                        instance)
SELECT e.call_id, e.at, e.from_status, e.to_status, e.agent_id, e.offer_id, e.reason,
       e.instance
FROM (
  SELECT c.id AS call_id, v.at, v.from_status, v.to_status, v.agent_id, v.offer_id, v.reason,
         c.instance
  FROM (
    SELECT c.*,
      'surge-' || (1 + c.id % 2) AS instance,
      substr(md5(c.id::text), 1, 16) AS oid,
      substr(md5(c.id::text), 17, 16) AS first_oid,
      greatest(c.received_at, coalesce(c.connected_at, c.ended_at)
               - (2 + c.id % 7) * interval '1 second') AS offered_at,
      c.connected_at IS NOT NULL AND c.id % :retry_every = 0
        AND c.connected_at - c.received_at > interval '40 seconds' AS retried
    FROM call AS c
    WHERE c.id BETWEEN :first_id AND :last_id
  ) AS c
  CROSS JOIN LATERAL (VALUES
    (true, c.received_at, NULL, 'queued', NULL::integer, NULL, NULL),
    (c.retried, c.received_at + (c.connected_at - c.received_at) * 0.3,
     'queued', 'offered', c.agent_id, c.first_oid, NULL),
    (c.retried, c.received_at + (c.connected_at - c.received_at) * 0.3 + interval '15 seconds',
     'offered', 'queued', c.agent_id, c.first_oid, 'expired'),
    (c.agent_id IS NOT NULL, c.offered_at, 'queued', 'offered', c.agent_id, c.oid, NULL),
    (c.connected_at IS NOT NULL, c.connected_at, 'offered', 'connected', c.agent_id,
     c.oid, NULL),
    (c.status = 'completed', c.ended_at, 'connected', 'completed', c.agent_id, NULL, NULL),
    (c.status = 'abandoned', c.ended_at,
     CASE WHEN c.agent_id IS NULL THEN 'queued' ELSE 'offered' END, 'abandoned', c.agent_id,
     CASE WHEN c.agent_id IS NOT NULL THEN c.oid END, 'caller_hung_up')
  ) AS v(keep, at, from_status, to_status, agent_id, offer_id, reason)
  WHERE v.keep
) AS e
ORDER BY e.at, e.call_id
"""


PLAN_KEYS = (
    "plan_city", "plan_hour", "plan_n", "plan_answer", "plan_answer_mean", "plan_abandon_mean",
    "plan_quick", "plan_cap", "plan_outbreak", "plan_own_start", "plan_own_len",
)  # fmt: skip


def calls_params(
    config: Config, pools: dict[str, list[int]], codes: dict[str, str], *, parts: int
) -> list[dict[str, Any]]:
    """The bind parameters of CALLS_SQL, one set per part: `parts` runs of hours of about the
    same number of calls, ids numbered on in time order across them.
    """
    pool: list[int] = []
    starts: dict[str, tuple[int, int]] = {}
    for city, ids in pools.items():
        starts[city] = (len(pool) + 1, len(ids))  # PostgreSQL arrays count from 1
        pool += ids
    segments = helper_segments(pools)
    seg_start = []
    for segment in segments:
        seg_start.append(len(pool) + 1)
        pool += segment.agents
    rows: list[tuple[Any, ...]] = []
    for city, total in city_calls(config).items():
        mix = HOST_MIX if city == HOST else NORMAL_MIX
        profile = OUTBREAK_PROFILE if city == HOST else NORMAL_PROFILE
        rows += [
            (
                city, hour, n, mix.answered, mix.answer_wait_mean_s, mix.abandon_wait_mean_s,
                mix.quick_abandon, mix.wait_cap_s, mix.outbreak_categories, *starts[city],
            )
            for hour, n in enumerate(spread(total, profile))
            if n > 0
        ]  # fmt: skip
    outbreak = sorted(code for code, parent in codes.items() if parent == "01")
    everything = sorted(codes)
    in_surges = share_of_day(segments, OUTBREAK_PROFILE)
    shared = {
        "pool": pool,
        "seg_start_at": [s.start for s in segments],
        "seg_end_at": [s.end for s in segments],
        "seg_start": seg_start,
        "seg_len": [len(s.agents) for s in segments],
        "host": HOST,
        "p_helper": min(1.0, HELPER_SHARE / in_surges) if in_surges else 0.0,
        "day_start": DAY_START,
        "in_progress_from": DAY_END - timedelta(minutes=20),
        "in_progress_share": IN_PROGRESS_SHARE,
        "offered_abandon": OFFERED_ABANDON,
        "feedback_share": FEEDBACK_SHARE,
        "outbreak_codes": outbreak,
        "n_outbreak": len(outbreak),
        "codes": everything,
        "n_codes": len(everything),
    }
    total = sum(row[2] for row in rows)
    before = list(itertools.accumulate(
        (sum(row[2] for row in rows if row[1] == hour) for hour in range(24)), initial=0
    ))  # fmt: skip
    # An hour goes to the part its first call falls in: contiguous runs of hours, ~even sizes.
    part_of = [min(parts - 1, parts * before[hour] // total) for hour in range(24)]
    out: list[dict[str, Any]] = []
    first_id = 1
    for part in range(parts):
        chosen = [row for row in rows if part_of[row[1]] == part]
        if chosen:
            columns = {key: [row[i] for row in chosen] for i, key in enumerate(PLAN_KEYS)}
            out.append({**shared, **columns, "first_id": first_id})
            first_id += sum(row[2] for row in chosen)
    return out


async def load(
    engine: AsyncEngine, table: str, parts: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    """Run the INSERTs of `parts` into `table` at once, one connection each, the fast way.

    The table's secondary indexes are dropped first and built again after (faster than keeping
    them up to date row by row); as a superuser the foreign keys are not checked row by row
    either (`session_replication_role = replica`): the generator only writes ids it read from
    the referenced tables, and `check` verifies them afterwards.
    """
    async with engine.begin() as connection:
        superuser = bool(
            await fetch_int(
                connection,
                "SELECT CAST(rolsuper AS integer) FROM pg_roles WHERE rolname = current_user",
            )
        )
        rows = await connection.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index AS x"
                " JOIN pg_class AS i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = CAST(:table AS regclass) AND NOT EXISTS"
                "  (SELECT FROM pg_constraint AS c WHERE c.conindid = x.indexrelid)"
            ),
            {"table": table},
        )
        indexes = [(str(name), str(ddl)) for name, ddl in rows.all()]
        for name, _ in indexes:
            await connection.execute(text(f'DROP INDEX "{name}"'))

    async def insert_part(sql: str, params: dict[str, Any]) -> None:
        """One part, in a transaction of its own."""
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL work_mem = '256MB'"))
            await connection.execute(text("SET LOCAL synchronous_commit = off"))
            if superuser:
                await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(text(sql), params)

    try:
        await asyncio.gather(*(insert_part(sql, params) for sql, params in parts))
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            for _, ddl in indexes:
                await connection.execute(text(ddl))


async def check(engine: AsyncEngine) -> None:
    """Every foreign key the generator filled points at a row (they were not checked on load)."""
    async with engine.connect() as connection:
        dangling = await fetch_int(
            connection,
            "SELECT (SELECT count(*) FROM call AS c WHERE c.agent_id IS NOT NULL"
            "  AND NOT EXISTS (SELECT FROM agent AS a WHERE a.id = c.agent_id))"
            " + (SELECT count(*) FROM call AS c"
            "  WHERE NOT EXISTS (SELECT FROM city AS y WHERE y.code = c.city_code))"
            " + (SELECT count(*) FROM call_event AS e"
            "  WHERE NOT EXISTS (SELECT FROM call AS c WHERE c.id = e.call_id))"
            " + (SELECT count(*) FROM call_event AS e WHERE e.agent_id IS NOT NULL"
            "  AND NOT EXISTS (SELECT FROM agent AS a WHERE a.id = e.agent_id))",
        )
    if dangling:
        raise BenchError(f"the generator wrote {dangling} dangling references")


async def generate(engine: AsyncEngine, config: Config, out: Out) -> Generated:
    """Fill a migrated, empty database with the day; return what was written."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        """Record the time since the previous lap."""
        nonlocal started
        now = time.perf_counter()
        seconds[name] = now - started
        started = now

    async with create_sessionmaker(engine)() as session, session.begin():
        await cities_service.seed(session=session)
    async with engine.begin() as connection:
        pools = await seed_people(connection)
        await seed_surges(connection)
        with_feedback = await feedback_columns(connection)
    lap("seed")
    codes = {c.code: c.parent for c in Classification.load().categories.values()}
    columns = ", satisfied, feedback_score, feedback_at" if with_feedback else ""
    sql = CALLS_SQL.format(feedback_columns=columns, feedback_values=columns)
    parts = calls_params(config, pools, codes, parts=PARTS)
    await load(engine, "call", [(sql, params) for params in parts])
    async with engine.begin() as connection:  # ids were given: move the sequence past them
        await connection.execute(
            text("SELECT setval(pg_get_serial_sequence('call', 'id'), max(id)) FROM call")
        )
    lap("calls")
    out(f"  calls written in {seconds['calls']:.1f} s")
    ranges = [*(p["first_id"] for p in parts), sum(city_calls(config).values()) + 1]
    await load(
        engine,
        "call_event",
        [
            (EVENTS_SQL, {"first_id": first, "last_id": after - 1, "retry_every": RETRY_EVERY})
            for first, after in itertools.pairwise(ranges)
        ],
    )
    lap("events")
    out(f"  call events written in {seconds['events']:.1f} s")
    await check(engine)
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM (ANALYZE) call, call_event"))
        await autocommit.execute(text("ANALYZE"))
    lap("check, vacuum analyze")
    return await count(engine, seconds=seconds, reused=False)


async def count(engine: AsyncEngine, *, seconds: dict[str, float], reused: bool) -> Generated:
    """Count what the database holds for the day."""
    async with engine.connect() as connection:
        window = {"day_start": DAY_START, "day_end": DAY_END}
        day = "received_at >= :day_start AND received_at < :day_end"
        rows = await connection.execute(
            text(f"SELECT city_code, count(*) FROM call WHERE {day} GROUP BY city_code"), window
        )
        calls = {str(code): int(n) for code, n in sorted(rows.all())}
        with_feedback = await feedback_columns(connection)
        host = (
            await connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE c.connected_at IS NOT NULL),"
                    " count(*) FILTER (WHERE c.connected_at IS NOT NULL"
                    "  AND a.city_code <> c.city_code),"
                    " count(*) FILTER (WHERE c.status = 'abandoned'"
                    "  AND c.ended_at - c.received_at < interval '5 seconds')"
                    " FROM call AS c LEFT JOIN agent AS a ON a.id = c.agent_id"
                    " WHERE c.city_code = :host AND c.received_at >= :day_start"
                    "  AND c.received_at < :day_end"
                ),
                {**window, "host": HOST},
            )
        ).one()
        return Generated(
            calls=calls,
            events=await fetch_int(connection, "SELECT count(*) FROM call_event"),
            users=await fetch_int(connection, 'SELECT count(*) FROM "user"'),
            agents=await fetch_int(connection, "SELECT count(*) FROM agent"),
            surges=await fetch_int(connection, "SELECT count(*) FROM surge"),
            waves=await fetch_int(connection, "SELECT count(*) FROM surge_wave"),
            wave_cities=await fetch_int(connection, "SELECT count(*) FROM surge_wave_city"),
            host_answered=int(host[0]),
            host_by_helpers=int(host[1]),
            host_quick_abandoned=int(host[2]),
            in_progress=await fetch_int(
                connection,
                f"SELECT count(*) FROM call WHERE status = 'connected' AND {day}",
                **window,
            ),
            feedback=await fetch_int(
                connection,
                f"SELECT count(*) FROM call WHERE feedback_at IS NOT NULL AND {day}",
                **window,
            )
            if with_feedback
            else None,
            seconds=seconds,
            revision=await revision(connection),
            reused=reused,
        )


async def revision(connection: AsyncConnection) -> str:
    """The database's Alembic revision."""
    return str((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar())


# --- the database -----------------------------------------------------------------------------


async def admin_scalar(sql: str, **params: Any) -> Any:
    """One value from the maintenance database."""
    engine = create_async_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()
    finally:
        await engine.dispose()


async def kept_generation(name: str, config: Config) -> Generated | None:
    """The kept database's generation, if it exists, is complete and matches `config`."""
    comment = await admin_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name",
        name=name,
    )
    if not comment:
        return None
    try:
        recorded = json.loads(comment)
    except ValueError:
        return None
    if (
        recorded.get("host_calls") != config.host_calls
        or recorded.get("other_scale") != config.other_scale
    ):
        return None
    url = database_url(name)
    await asyncio.to_thread(migrate.upgrade, url)  # a migration added since: regenerate
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            if await revision(connection) != recorded.get("revision"):
                return None
        return await count(engine, seconds=recorded.get("seconds", {}), reused=True)
    finally:
        await engine.dispose()


async def remember(name: str, config: Config, generated: Generated) -> None:
    """Note the generation on the database, for --reuse."""
    note = json.dumps(
        {
            "host_calls": config.host_calls,
            "other_scale": config.other_scale,
            "revision": generated.revision,
            "seconds": generated.seconds,
        }
    ).replace("'", "''")
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{note}'"))
    finally:
        await engine.dispose()


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """A finished child process: exit code, wall time, peak RSS, output."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    stderr: str


# Runs the command and writes its wall time and peak RSS. A child's ru_maxrss starts from the
# resident size of the process that forked it (the memory map it execs from is counted), so
# the command is started from this small interpreter (~10 MB), not from the benchmark's own.
MEASURE = """\
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as out:
    json.dump({"returncode": code, "seconds": seconds, "maxrss_kib": peak}, out)
"""


def run_child(args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout_s: float) -> Child:
    """Run a command to its end and measure it, from spawn to exit (blocking)."""
    err_path, usage_path = cwd / "stderr.txt", cwd / "usage.json"
    usage_path.unlink(missing_ok=True)
    with open(err_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", MEASURE, str(usage_path), *args],
            env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,  # its own process group: a timeout kills both
        )  # fmt: skip
        timed_out = False
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            timed_out = True
    stderr = err_path.read_text(errors="replace")[-3000:]
    if timed_out or not usage_path.exists():
        note = f"killed after {timeout_s:.0f} s" if timed_out else "no measurement written"
        return Child(process.returncode or -1, math.nan, math.nan, f"{note}\n{stderr}")
    usage = json.loads(usage_path.read_text())
    return Child(
        returncode=int(usage["returncode"]),
        seconds=float(usage["seconds"]),
        peak_rss_mb=int(usage["maxrss_kib"]) / 1024,  # KiB on Linux
        stderr=stderr,
    )


def received_in_json(path: Path) -> tuple[dict[str, int], list[str]]:
    """Each city's `received` in the JSON report; what is wrong with the file."""
    document = json.loads(path.read_bytes())
    cities = document.get("cities") if isinstance(document, dict) else None
    if not isinstance(cities, list):
        return {}, ["the JSON report has no `cities` list"]
    received = {
        str(c["code"]): int(c["received"])
        for c in cities
        if isinstance(c, dict) and "code" in c and "received" in c
    }
    return received, [] if received else ["no city in the JSON report has `code` and `received`"]


RECEIVED = ("received", "呼入量")  # the summary's `received` header, in either language


def received_in_table(rows: Sequence[Sequence[object]]) -> int | None:
    """Nanjing's `received` in a summary table: its row (the code first) under the header."""
    column = None
    for row in rows:
        cells = ["" if cell is None else str(cell).strip() for cell in row]
        headers = [i for i, cell in enumerate(cells) if cell.lower() in RECEIVED]
        if headers:
            column = headers[0]
        elif column is not None and cells and cells[0] == HOST and column < len(cells):
            value = cells[column]
            return int(value) if value.isdigit() else None
    return None


def received_in_csv(path: Path) -> int | None:
    """Nanjing's `received` in the CSV report (the summary part, by default)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return received_in_table(list(csv.reader(handle)))


def received_in_xlsx(path: Path) -> int | None:
    """Nanjing's `received` on the workbook's first sheet (the summary)."""
    workbook = load_workbook(path, read_only=True)
    try:
        return received_in_table(list(workbook.worksheets[0].iter_rows(values_only=True)))
    finally:
        workbook.close()


def check_output(fmt: str, path: Path, generated: Generated) -> tuple[int | None, list[str]]:
    """Nanjing's `received` as the output gives it, and what is wrong with the output."""
    expected = generated.calls.get(HOST, 0)
    if not path.exists() or path.stat().st_size == 0:
        return None, [f"{fmt}: no output written to {path.name}"]
    if fmt == "json":
        received, problems = received_in_json(path)
        host = received.get(HOST)
        total = sum(received.values())
        if received and total != generated.total_calls:
            problems.append(f"json: the cities received {total} calls, not {generated.total_calls}")
    else:
        host = received_in_csv(path) if fmt == "csv" else received_in_xlsx(path)
        problems = [] if host is not None else [f"{fmt}: no Nanjing row with `received`"]
    if host is not None and host != expected:
        problems.append(f"{fmt}: Nanjing received {host}, but {expected} calls were generated")
    return host, problems


async def time_caller_figures(url: str, out: Out) -> float:
    """The caller figures' own queries, alone: what they add to the report's database work."""
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            day = reports_service.Day.of(DAY, "Asia/Shanghai")
            settings = Settings(_env_file=None, database_url=url)
            query = reports_service._Query(session=session, day=day, city=None, settings=settings)
            started = time.perf_counter()
            callers = await query.unique_callers()
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    out(
        f"  unique_callers queries alone: {seconds:.2f} s (Nanjing {callers.get(HOST, 0):,} "
        f"callers, province {callers.get(None, 0):,}); in the report they run on a connection "
        "of their own beside the other six"
    )
    return seconds


async def time_baseline(url: str, baseline: Path, config: Config, out: Out) -> None:
    """The JSON report by `baseline`'s code (without the caller figures), then by this tree's."""
    runs: dict[str, Child] = {}
    with tempfile.TemporaryDirectory(prefix="surge-report-baseline-") as workdir:
        for label, source in (
            ("without", baseline / "src"),
            ("with", Path(__file__).parents[1] / "src"),
        ):
            env = service_env({"SURGE_DATABASE_URL": url}) | {"PYTHONPATH": str(source)}
            target = Path(workdir) / f"{label}.json"
            args = [str(SURGE), "report", "daily", "--date", DAY.isoformat(), "--format", "json"]
            runs[label] = await asyncio.to_thread(
                run_child, [*args, "--out", str(target)], env=env, cwd=Path(workdir),
                timeout_s=config.report_timeout_s,
            )  # fmt: skip
            if runs[label].returncode != 0:
                child = runs[label]
                out(f"  baseline {label}: exited with {child.returncode}: {child.stderr}")
                return
    without, with_ = runs["without"], runs["with"]
    out(
        f"  json without the caller figures ({baseline}): {without.seconds:.2f} s, peak RSS "
        f"{without.peak_rss_mb:.0f} MB; with them: {with_.seconds:.2f} s, "
        f"{with_.peak_rss_mb:.0f} MB; extra {with_.seconds - without.seconds:+.2f} s, "
        f"{with_.peak_rss_mb - without.peak_rss_mb:+.0f} MB"
    )


async def time_reports(
    url: str, generated: Generated, config: Config, result: Result, out: Out
) -> None:
    """Run `surge report daily` once per format; record the figures and any problem."""
    env = service_env({"SURGE_DATABASE_URL": url})
    with tempfile.TemporaryDirectory(prefix="surge-report-bench-") as workdir:
        cwd = Path(workdir)
        probe = await asyncio.to_thread(
            run_child, [str(SURGE), "report", "daily", "--help"], env=env, cwd=cwd, timeout_s=60
        )
        if probe.returncode != 0:
            result.problems.append(f"`surge report daily` is not available: {probe.stderr}")
            return
        for fmt in FORMATS:
            target = cwd / f"report-{DAY.isoformat()}.{fmt}"
            args = [str(SURGE), "report", "daily", "--date", DAY.isoformat(), "--format", fmt]
            child = await asyncio.to_thread(
                run_child, [*args, "--out", str(target)], env=env, cwd=cwd,
                timeout_s=config.report_timeout_s,
            )  # fmt: skip
            if child.returncode != 0:
                result.problems.append(
                    f"`surge report daily --format {fmt}` exited with {child.returncode}: "
                    f"{child.stderr}"
                )
                continue
            host, problems = await asyncio.to_thread(check_output, fmt, target, generated)
            result.problems += problems
            run = ReportRun(fmt, child.seconds, child.peak_rss_mb, target.stat().st_size, host)
            result.runs[fmt] = run
            out(
                f"  {fmt}: {run.seconds:.2f} s, peak RSS {run.peak_rss_mb:.0f} MB, "
                f"{run.size_bytes:,} bytes; Nanjing received {host if host is not None else '?'}"
            )


# --- the whole run ----------------------------------------------------------------------------


async def prepare(name: str, config: Config, *, reuse: bool, out: Out) -> Generated:
    """The database `name` holding the day: kept from an earlier run, or generated now."""
    if reuse:
        kept = await kept_generation(name, config)
        if kept is not None:
            out(f"  reusing database {name}")
            return kept
        out(f"  database {name} cannot be reused (missing, partial or older): generating")
    await drop_database(name)
    url = await create_database(name)
    started = time.perf_counter()
    await asyncio.to_thread(migrate.upgrade, url)  # it runs an event loop of its own
    migrated = time.perf_counter() - started
    engine = create_async_engine(url)
    try:
        generated = await generate(engine, config, out)
    finally:
        await engine.dispose()
    generated.seconds = {"migrate": migrated, **generated.seconds}
    return generated


async def run(
    config: Config, *, reuse: bool = False, baseline: Path | None = None, out: Out = print
) -> Result:
    """Generate the day (or reuse it), time the report in each format; print as it goes.

    A fixed-name database (`config.database`) is kept for `--reuse`; a fresh one is dropped at
    the end, whatever happens.
    """
    name = config.database or f"surge_test_report_short_{secrets.token_hex(4)}"
    result = Result(config=config, database=name)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out(f"daily report benchmark ({config.name}): database {name}, day {DAY.isoformat()}")
    out(f"  machine: {os.cpu_count()} cores, load average {load} (other work skews the figures)")
    try:
        generated = await prepare(name, config, reuse=reuse, out=out)
        result.generated = generated
        for line in generated.lines():
            out(line)
        if config.database is not None and not generated.reused:
            await remember(name, config, generated)
        expected = city_calls(config)
        if generated.calls != expected:
            result.problems.append(f"calls per city {generated.calls}, expected {expected}")
        await time_reports(database_url(name), generated, config, result, out)
        await time_caller_figures(database_url(name), out)
        if baseline is not None:
            await time_baseline(database_url(name), baseline, config, out)
    finally:
        if config.database is None:
            await drop_database(name)
    out("")
    for line in result.lines():
        out(line)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (PASS or MISS), 1 when it broke."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.report",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--short", action="store_true", help="the small version (< 1 minute)")
    parser.add_argument(
        "--reuse", action="store_true", help="use the kept database when it holds the same day"
    )
    parser.add_argument("--nanjing-calls", type=int, help="Nanjing's calls in the day")
    parser.add_argument(
        "--baseline", type=Path, help="a source checkout without the caller figures, to compare"
    )
    parser.add_argument("--database", help="the kept database's name (default surge_bench_report)")
    args = parser.parse_args(argv)
    config = SHORT if args.short else FULL
    if args.nanjing_calls is not None:
        if args.nanjing_calls <= 0:
            parser.error("--nanjing-calls must be positive")
        config = replace(config, host_calls=args.nanjing_calls)
    if args.database:
        config = replace(config, database=args.database)
    return exit_code(lambda: asyncio.run(run(config, reuse=args.reuse, baseline=args.baseline)))


if __name__ == "__main__":
    sys.exit(main())
