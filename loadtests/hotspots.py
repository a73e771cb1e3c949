"""The hot issues benchmark: `GET /hotspots`'s read and verdict on a big day, in PostgreSQL.

Run it (needs PostgreSQL on 127.0.0.1:5432, trust auth; `SURGE_BENCH_POSTGRES_URL` points it at
another server)::

    .venv/bin/python -m loadtests.hotspots            # 100,000 tickets in the window
    .venv/bin/python -m loadtests.hotspots --short    # 5,000, for the suite

1. Generate, in a database of its own (dropped at the end), migrated and seeded with the 13
   cities, by `INSERT ... SELECT` over `generate_series`: `--tickets` completed tickets spread
   evenly over the hour and its 6-hour baseline (Nanjing half of them, the rest over the other
   cities), each with a category and a summary drawn from a dozen ordinary ones (a third of
   them made unique by a house number, as free text is); in the last
   hour one Nanjing ticket in eight is about the metro stopping (0201, 地铁停运). Beside them,
   ten times as much history (completed in the days before: the table of a service that has
   run for a while) and as many calls that never completed (abandoned, today), which the read
   must not touch. Then VACUUM ANALYZE.
2. Time, with the service's own functions, as `GET /hotspots` and the minute's check run them:
   the read (the SQL and its rows), the verdict (`detection.detect`, terms cut per ticket), both
   province-wide and for Nanjing; the plan must use `ix_call_completed_ended_at`. Each verdict
   is checked: 0201 and 停运 hot in Nanjing and in the province, nothing else.

Target: the province-wide read and verdict under 5 s (a check runs once a minute on one
instance; a coordinator's panel reads it once a minute).

Exit status: 0 when the benchmark ran, whatever PASS or MISS it printed; 1 when it broke.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from loadtests.bench import Figure
from loadtests.stack import BenchError, create_database, drop_database, exit_code
from surge import migrate
from surge.cities import service as cities_service
from surge.db import create_sessionmaker
from surge.hotspots import service as hotspots_service
from surge.hotspots.detection import Rules, detect

Out = Callable[[str], None]
RULES = Rules()
NANJING = "320100"
TARGET_S = 5.0
CATEGORIES = ("0101", "0102", "0103", "0301", "0302", "0401", "0501", "0601")
SUMMARIES = (
    "社保卡补办需要什么材料", "公积金提取流程咨询", "小区噪音扰民投诉", "医保报销比例",
    "路灯损坏请求维修", "学校招生政策", "居住证办理地点", "垃圾清运不及时",
    "Where to renew an ID card", "water supply interrupted", "新能源车补贴申请", "燃气费缴纳方式",
)  # fmt: skip
HOT_CATEGORY, HOT_SUMMARY, HOT_EVERY = "0201", "地铁停运", 16  # 1 Nanjing ticket in 8


@dataclass
class Result:
    """What a run measured."""

    tickets: int
    figures: list[Figure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        """A wrong verdict or plan breaks the benchmark; a slow one is a MISS."""
        return bool(self.problems)


def _array(values: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]"


_INSERT = """
INSERT INTO call (city_code, caller, channel, priority, status, received_at, connected_at,
                  ended_at, disposition, category_code, summary, transfers, callback_attempts)
SELECT city, '13800000000', 'phone', 0, status, ended - interval '5 minutes',
       CASE WHEN status = 'completed' THEN ended - interval '4 minutes' END, ended,
       CASE WHEN status = 'completed' THEN 'answered' END,
       CASE WHEN status <> 'completed' THEN NULL WHEN hot THEN '{hot_category}'
            ELSE ({categories})[1 + g % {n_categories}] END,
       CASE WHEN status <> 'completed' THEN NULL WHEN hot THEN '{hot_summary}'
            WHEN g % 3 = 0 THEN ({summaries})[1 + (g / 7) % {n_summaries}] || ' 门牌 ' || g
            ELSE ({summaries})[1 + (g / 7) % {n_summaries}] END,
       0, 0
FROM (
    SELECT g, city, status, ended,
           status = 'completed' AND CAST(:hot AS boolean) AND city = '{nanjing}'
           AND g % {hot_every} = 0 AND ended > to_timestamp(:now) - interval '1 hour' AS hot
    FROM (
        SELECT g,
               CASE WHEN g % 2 = 0 THEN '{nanjing}'
                    ELSE (SELECT array_agg(code ORDER BY code) FROM city
                          WHERE code <> '{nanjing}')[1 + (g / 2) % 12] END AS city,
               CAST(:status AS varchar) AS status,
               to_timestamp(:now) - make_interval(secs => :back)
               - make_interval(secs => (g * 7919 % CAST(:span_s AS integer))::float) AS ended
        FROM generate_series(1, CAST(:n AS integer)) AS g
    ) spread
) drawn
"""


async def generate(
    engine: AsyncEngine, tickets: int, now: float, out: Out, *, history_days: int = 10
) -> None:
    """The window's tickets, history before it and calls that never completed."""
    statement = text(
        _INSERT.format(
            hot_category=HOT_CATEGORY, hot_summary=HOT_SUMMARY, hot_every=HOT_EVERY,
            nanjing=NANJING, categories=_array(CATEGORIES), n_categories=len(CATEGORIES),
            summaries=_array(SUMMARIES), n_summaries=len(SUMMARIES),
        )
    )  # fmt: skip
    window_s = int(RULES.window_s + RULES.baseline_s)
    started = time.perf_counter()
    for what, status, back_s, hot in (
        ("window", "completed", 1, True),
        *(
            (f"history, {day} days before", "completed", day * 86_400, False)
            for day in range(1, 11)
        ),
        ("never completed", "abandoned", 1, False),
    ):
        async with engine.begin() as connection:
            await connection.execute(
                statement,
                {
                    "n": tickets, "status": status, "now": now, "hot": hot,
                    "back": float(back_s), "span_s": window_s - 2,
                },
            )  # fmt: skip
        out(f"  generated {tickets:,} calls: {what}")
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE call"))
    out(f"  generation {time.perf_counter() - started:.1f} s")


async def plan(engine: AsyncEngine, now: float) -> str:
    """The query plan of the province-wide read."""
    since = now - RULES.window_s - RULES.baseline_s
    sql = (
        "EXPLAIN SELECT city_code, ended_at, category_code, summary FROM call "
        "WHERE status = 'completed' AND ended_at >= to_timestamp(:since) "
        "AND ended_at <= to_timestamp(:now)"
    )
    async with engine.connect() as connection:
        rows = await connection.execute(text(sql), {"since": since, "now": now})
        return "\n".join(row[0] for row in rows)


async def measure(engine: AsyncEngine, now: float, result: Result, out: Out) -> None:
    """Time the read and the verdict, province-wide and for Nanjing; check both."""
    sessions = create_sessionmaker(engine)
    since = now - RULES.window_s - RULES.baseline_s
    for scope in (None, NANJING):
        async with sessions() as session:
            started = time.perf_counter()
            read = await hotspots_service.tickets(
                session=session, since=since, until=now, city=scope
            )
            read_s = time.perf_counter() - started
        started = time.perf_counter()
        spots = detect(read, now=now, rules=RULES, city=scope)
        detect_s = time.perf_counter() - started
        name = "province" if scope is None else "Nanjing"
        out(f"  {name}: {len(read):,} tickets read in {read_s:.2f} s, verdict {detect_s:.2f} s")
        out(f"    hot: {', '.join(f'{s.key} (x{s.lift:.1f}, {s.count})' for s in spots)}")
        found = {(s.kind.value, s.key) for s in spots}
        wanted = {("category", HOT_CATEGORY), ("term", "停运")}
        if found != wanted:
            result.problems.append(f"{name}: hot {sorted(found)}, expected {sorted(wanted)}")
        if scope is None and len(read) != result.tickets:  # the window's, none of the others
            result.problems.append(f"read {len(read)} tickets, expected {result.tickets}")
        result.figures.append(
            Figure(f"{name} read + verdict", read_s + detect_s, "s", TARGET_S, False, 2)
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out(f"  peak RSS of this process {peak_mb:.0f} MB")


async def run(tickets: int, out: Out = print, *, history_days: int = 10) -> Result:
    """Generate, measure, drop; print as it goes."""
    name = f"surge_bench_hotspots_{secrets.token_hex(4)}"
    result = Result(tickets=tickets)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out(f"hot issues benchmark: {tickets:,} tickets in the window, database {name}")
    out(f"  machine: {os.cpu_count()} cores, load average {load} (other work skews the figures)")
    url = await create_database(name)
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        async with create_sessionmaker(engine)() as session, session.begin():
            await cities_service.seed(session=session)
        now = time.time()
        await generate(engine, tickets, now, out, history_days=history_days)
        explained = await plan(engine, now)
        if "ix_call_completed_ended_at" not in explained:
            result.problems.append(f"the read does not use the index:\n{explained}")
        out("  plan: " + explained.splitlines()[0].strip())
        await measure(engine, now, result, out)
    finally:
        await engine.dispose()
        await drop_database(name)
    out("")
    for figure in result.figures:
        out(str(figure))
    for problem in result.problems:
        out(f"problem: {problem}")
    if result.problems:
        raise BenchError("; ".join(result.problems))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (PASS or MISS), 1 when it broke."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.hotspots",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--short", action="store_true", help="5,000 tickets (seconds)")
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets in the window")
    parser.add_argument(
        "--history-days", type=int, default=10, help="days of as many tickets before the window"
    )
    args = parser.parse_args(argv)
    tickets = 5_000 if args.short else args.tickets
    if tickets <= 0 or args.history_days < 0:
        parser.error("--tickets must be positive, --history-days not negative")
    return exit_code(lambda: asyncio.run(run(tickets, history_days=args.history_days)))


if __name__ == "__main__":
    sys.exit(main())
