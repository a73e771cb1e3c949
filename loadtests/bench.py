"""The Surge benchmark: `surge serve` (one process, or `--workers N`) on PostgreSQL + Redis.

Run it (needs PostgreSQL on 127.0.0.1:5432, trust auth, and Redis on 127.0.0.1:6379)::

    make bench                                   # = .venv/bin/python -m loadtests.bench
    .venv/bin/python -m loadtests.bench --short  # the small version (under a minute)

Set-up: a database of its own (`surge_bench_<id>`, created, migrated with `surge migrate`,
seeded with `surge seed`, dropped at the end) and a Redis key prefix of its own (deleted at the
end); a province-wide CTI and N agents (all in Nanjing, 320100) inserted in bulk with tokens
minted directly; the service started as a subprocess on a free loopback port.
`SURGE_BENCH_POSTGRES_URL` and `SURGE_BENCH_REDIS_URL` point it at other servers.

Phases and figures (each printed with its target and PASS or MISS):

1. ingest -- POST /api/v1/calls as the CTI from a pool of concurrent keep-alive HTTP/1.1
   connections (full: 5,000 calls, 32 at a time, after 200 uncounted warm-up calls; no agent
   connected, the calls queue in the 12 cities other than Nanjing). *calls/s* is accepted calls
   over the phase's wall time (target >= 500); *p50/p95/p99* is each POST's latency as the
   client sees it (target p99 < 50 ms).
   The calls are then abandoned through the API (not measured) so the next phase starts clean.
2. end-to-end 50/s -- N agents connected over /ws/agent (full: 1,000), all available, run by a
   second process; calls posted to Nanjing at a rate well below saturation (full: 50/s for
   20 s). Each agent accepts its offer at once and completes the call 0.5-1 s later.
   *completed calls/s* counts `call.completed` frames over the steady window (after the first
   handling time, until the last POST; target >= 95 % of the posting rate); *offer p99* is from
   just before the POST is sent to the agent reading the `offer` frame for that call (both
   stamped with `time.time()`, in two processes on one machine; target < 50 ms); *service cpu
   per completed call* is the service's CPU over the phase and its drain divided by the calls
   completed (target <= 4 ms): what the service costs when it is not saturated; *not
   completed* is the number of these calls the database does not show as completed after
   draining (target 0).
3. end-to-end -- the same at a rate above what the service can take (full: 600/s for 10 s), to
   find its saturation: *completed calls/s* (target >= 200, or 95 % of a lower posting rate).
4. memory -- with the N agents still connected (available, but in another city), calls are
   queued in the other 12 cities until 10,000 wait (full); *RSS* is the service's VmRSS then,
   *peak* its VmHWM over the whole run (targets < 250 MB each).

`--workers 2` runs the service as `surge serve --workers 2` (CPU and memory are then the sums
over its processes): compare its end-to-end calls/s with a run of one (target: 1.4 times).

Info lines (indented) give the other percentiles, error counts, and the CPU each process used
in the phase (as % of one core): service, this process (HTTP load), the agent process, the
PostgreSQL and Redis servers, and the whole machine's busy share. The machine has few cores, so
a busy load generator shows there, and so does a saturation that is the machine's, not the
service's (one process already keeping a 2-core machine nearly busy leaves a second little to
add).

Exit status: 0 when the benchmark ran, whatever PASS or MISS it printed; 1 when it broke (the
service crashed or refused work, a call was lost or never completed, set-up failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from loadtests.fleet import FleetProcess, FleetSpec
from loadtests.http import HttpError, HttpPool
from loadtests.stack import (
    HOST,
    BenchError,
    Service,
    create_accounts,
    exit_code,
    machine_cpu_seconds,
    ping_redis,
    prepare_stack,
    servers_cpu_seconds,
)
from surge.cities.service import seed_data

AGENT_CITY = "320100"  # Nanjing: every benchmark agent works here
CHANNELS = ("phone", "app", "wechat", "web", "sms")
Out = Callable[[str], None]


@dataclass(frozen=True)
class Config:
    """The size of one benchmark run."""

    name: str
    ingest_calls: int
    ingest_concurrency: int
    agents: int
    e2e_rate: float  # calls posted per second: above what the service can take, to find it
    e2e_calls: int  # posted at e2e_rate (so the phase lasts e2e_calls / e2e_rate seconds)
    steady_rate: float  # calls posted per second in the steady phase, well below saturation
    steady_calls: int
    handle_s: tuple[float, float]
    queued_calls: int
    workers: int = 1  # `surge serve --workers`
    warmup_calls: int = 200  # posted (and not counted) before the ingest measurement
    fill_concurrency: int = 32
    e2e_max_in_flight: int = 64  # POSTs outstanding at once before the pacer waits
    drain_timeout_s: float = 60.0
    idle_s: float = 10.0  # service CPU read with every agent connected and no call


FULL = Config(
    name="full",
    ingest_calls=5000,
    ingest_concurrency=32,
    agents=1000,
    e2e_rate=600.0,
    e2e_calls=6000,
    steady_rate=50.0,
    steady_calls=1000,
    handle_s=(0.5, 1.0),
    queued_calls=10_000,
)
SHORT = Config(
    name="short",
    ingest_calls=200,
    ingest_concurrency=16,
    agents=50,
    e2e_rate=50.0,
    e2e_calls=100,
    steady_rate=50.0,
    steady_calls=50,
    handle_s=(0.2, 0.5),
    queued_calls=1000,
    warmup_calls=50,
    fill_concurrency=16,
    drain_timeout_s=30.0,
    idle_s=2.0,
)

INGEST_CALLS_PER_S = 500.0
INGEST_P99_MS = 50.0
E2E_CALLS_PER_S = 200.0  # at saturation, on one process (two: 1.4 times that)
STEADY_OFFER_P99_MS = 50.0
STEADY_CPU_MS_PER_CALL = 4.0  # service CPU per completed call at the steady rate
COMPLETED_SHARE = 0.95
MEMORY_MB = 250.0


# --- figures and the report -------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (NaN when there are no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def spread_ms(values: Sequence[float]) -> str:
    """p50/p95/p99/max of durations in seconds, as milliseconds."""
    parts = [f"p{p} {percentile(values, p) * 1000:.1f} ms" for p in (50, 95, 99)]
    top = max(values) * 1000 if values else math.nan
    return ", ".join([*parts, f"max {top:.1f} ms"])


@dataclass(frozen=True)
class Figure:
    """A measured figure against its target."""

    label: str
    value: float
    unit: str
    target: float
    higher_is_better: bool
    digits: int = 1

    @property
    def passed(self) -> bool:
        """Whether the value meets the target (NaN never does)."""
        if math.isnan(self.value):
            return False
        if self.higher_is_better:
            return self.value >= self.target
        return self.value < self.target if self.target > 0 else self.value <= self.target

    def __str__(self) -> str:
        """E.g. `p99 23.1 ms (target < 50) PASS`."""
        op = ">=" if self.higher_is_better else "<" if self.target > 0 else "="
        label = f"{self.label} " if self.label else ""
        unit = f" {self.unit}" if self.unit else ""
        verdict = "PASS" if self.passed else "MISS"
        return f"{label}{self.value:.{self.digits}f}{unit} (target {op} {self.target:g}) {verdict}"


@dataclass
class Report:
    """What a run measured and what went wrong."""

    config: Config
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    info: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lost_calls: int = 0

    @property
    def broken(self) -> bool:
        """Whether the benchmark itself failed (as opposed to missing a target)."""
        return bool(self.problems) or self.lost_calls > 0

    def lines(self) -> list[str]:
        """The figure lines, in phase order, then the verdict."""
        out = [
            f"{phase}: " + "; ".join(str(f) for f in figs) for phase, figs in self.figures.items()
        ]
        everything = [f for figs in self.figures.values() for f in figs]
        missed = sum(not f.passed for f in everything)
        out.append(
            f"result: {len(everything) - missed} PASS, {missed} MISS, "
            f"{self.lost_calls} lost calls, {len(self.problems)} problems"
        )
        out += [f"  problem: {p}" for p in self.problems]
        return out


# --- HTTP -------------------------------------------------------------------------------------


class Api:
    """The CTI's HTTP client: keep-alive HTTP/1.1 connections, JSON in and out."""

    def __init__(self, host: str, port: int, token: str, connections: int) -> None:
        """Set up the connection pool with the CTI's token."""
        self._pool = HttpPool(
            host,
            port,
            size=connections,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout_s=30.0,
        )

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return the status and the decoded body (None if not JSON)."""
        content = None if body is None else orjson.dumps(body)
        status, answer = await self._pool.request(method, path, content)
        try:
            return status, orjson.loads(answer)
        except orjson.JSONDecodeError:
            return status, None

    async def aclose(self) -> None:
        """Close the connections."""
        await self._pool.aclose()


@dataclass
class Posted:
    """One POST /calls: when it was sent (wall clock), how long it took, what came back."""

    sent_at: float
    latency_s: float
    status: int
    call_id: int | None
    error: str | None = None


async def post_call(api: Api, body: dict[str, Any]) -> Posted:
    """POST one call and time it."""
    sent_at = time.time()
    start = time.perf_counter()
    try:
        status, answer = await api.request("POST", "/api/v1/calls", body)
    except HttpError as exc:
        return Posted(sent_at, time.perf_counter() - start, 0, None, f"{type(exc).__name__}")
    latency = time.perf_counter() - start
    if status != 201 or not isinstance(answer, dict):
        return Posted(sent_at, latency, status, None, f"HTTP {status}: {str(answer)[:200]}")
    return Posted(sent_at, latency, status, int(answer["id"]))


def call_body(run_id: str, kind: str, index: int, city: str) -> dict[str, Any]:
    """A call as the telephony side would post it."""
    return {
        "city": city,
        "caller": f"1{38 + index % 2}{index % 100_000_000:08d}",
        "channel": CHANNELS[index % len(CHANNELS)],
        "external_id": f"bench-{run_id}-{kind}-{index}",
    }


async def post_all(api: Api, bodies: Sequence[dict[str, Any]], concurrency: int) -> list[Posted]:
    """POST every body, `concurrency` at a time, as fast as the service answers."""
    results: list[Posted | None] = [None] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def worker() -> None:
        """Post the next body until none is left."""
        for index in next_index:
            results[index] = await post_call(api, bodies[index])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [r for r in results if r is not None]


async def post_paced(
    api: Api, bodies: Sequence[dict[str, Any]], rate: float, max_in_flight: int
) -> list[Posted]:
    """POST the bodies at a steady `rate` per second (at most `max_in_flight` outstanding)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(max_in_flight)
    tasks: list[asyncio.Task[Posted]] = []

    async def one(body: dict[str, Any]) -> Posted:
        """Post one body and open the gate again."""
        try:
            return await post_call(api, body)
        finally:
            gate.release()

    start = loop.time()
    for index, body in enumerate(bodies):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.create_task(one(body)))
    return list(await asyncio.gather(*tasks))


# --- measuring CPU ----------------------------------------------------------------------------


class CpuMeter:
    """CPU used by the service, this process, the agent process, the PostgreSQL and Redis
    servers and the whole machine over one phase (on a machine of few cores, whether a figure
    is the service's own limit or the machine's shows there)."""

    def __init__(self, service: Service, fleet_cpu_s: float = 0.0) -> None:
        """Start measuring now."""
        self._service = service
        self._wall = time.perf_counter()
        self._service_cpu = service.cpu_seconds()
        self._own_cpu = time.process_time()
        self._fleet_cpu = fleet_cpu_s
        self._servers_cpu = servers_cpu_seconds()
        self._machine_cpu = machine_cpu_seconds()

    def line(self, fleet_cpu_s: float | None = None) -> str:
        """The phase's CPU as % of one core per process, and the machine's busy share."""
        wall = max(time.perf_counter() - self._wall, 1e-9)
        service = (self._service.cpu_seconds() - self._service_cpu) / wall * 100
        own = (time.process_time() - self._own_cpu) / wall * 100
        parts = [f"service {service:.0f}%", f"http load {own:.0f}%"]
        if fleet_cpu_s is not None:
            parts.append(f"agents {(fleet_cpu_s - self._fleet_cpu) / wall * 100:.0f}%")
        for server, used in servers_cpu_seconds().items():
            parts.append(f"{server} {(used - self._servers_cpu[server]) / wall * 100:.0f}%")
        busy, total = machine_cpu_seconds()
        share = (busy - self._machine_cpu[0]) / max(total - self._machine_cpu[1], 1e-9)
        cores = os.cpu_count() or 1
        parts.append(f"machine busy {share * 100 * cores:.0f}% of {cores * 100}%")
        return "cpu (% of one core): " + ", ".join(parts)


# --- the phases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """What one flow of calls to the agents measured."""

    completed_rate: float  # calls/s completed in the steady window
    offer_p99_ms: float
    cpu_ms_per_call: float  # service CPU over the flow and its drain, per completed call
    not_completed: int


@dataclass
class Bench:
    """One run's live resources."""

    config: Config
    report: Report
    run_id: str
    service: Service
    api: Api
    db: AsyncEngine
    out: Out
    other_cities: tuple[str, ...]

    def info(self, line: str) -> None:
        """Print and keep an indented info line."""
        self.report.info.append(line)
        self.out(f"  {line}")

    def problem(self, what: str) -> None:
        """Record something that breaks the benchmark."""
        self.report.problems.append(what)
        self.out(f"  PROBLEM: {what}")

    async def statuses(self, kind: str) -> dict[str, int]:
        """How many of this run's calls of `kind` the database holds, per status."""
        async with self.db.connect() as connection:
            rows = await connection.execute(
                text(
                    'SELECT status, count(*) FROM "call" WHERE external_id LIKE :pattern '
                    "GROUP BY status"
                ),
                {"pattern": f"bench-{self.run_id}-{kind}-%"},
            )
            return {str(status): int(count) for status, count in rows}

    async def waiting(self) -> dict[str, int]:
        """Calls waiting per city, as GET /cities says."""
        status, cities = await self.api.request("GET", "/api/v1/cities")
        if status != 200 or not isinstance(cities, list):
            raise BenchError(f"GET /cities answered {status}: {cities!r}")
        return {str(city["code"]): int(city["waiting"]) for city in cities}

    def check_posts(self, phase: str, posted: Sequence[Posted]) -> list[int]:
        """Record failed POSTs as problems; return the ids of the accepted calls."""
        failed = [p for p in posted if p.call_id is None]
        if failed:
            self.problem(f"{phase}: {len(failed)} POSTs failed, e.g. {failed[0].error}")
        ids = [p.call_id for p in posted if p.call_id is not None]
        if len(set(ids)) != len(ids):
            self.problem(f"{phase}: the service gave the same id to different calls")
        return ids

    async def ingest(self) -> list[int]:
        """Phase 1: POST calls as fast as the pool can; figures: calls/s and latency."""
        config = self.config
        cities = self.other_cities
        warmup = [
            call_body(self.run_id, "warmup", i, cities[i % len(cities)])
            for i in range(config.warmup_calls)
        ]
        # Fill the service's connection pools and statement caches first, as in a running one.
        warmed = self.check_posts(
            "warm-up", await post_all(self.api, warmup, config.ingest_concurrency)
        )
        bodies = [
            call_body(self.run_id, "ingest", i, cities[i % len(cities)])
            for i in range(config.ingest_calls)
        ]
        self.out(
            f"ingest: posting {len(bodies)} calls, {config.ingest_concurrency} at a time "
            f"(after {len(warmed)} warm-up calls) ..."
        )
        cpu = CpuMeter(self.service)
        start = time.perf_counter()
        posted = await post_all(self.api, bodies, config.ingest_concurrency)
        wall = time.perf_counter() - start
        self.service.check_alive()
        ids = self.check_posts("ingest", posted)
        latencies = [p.latency_s for p in posted if p.call_id is not None]
        rate = len(ids) / wall
        self.report.figures["ingest"] = [
            Figure("", rate, "calls/s", INGEST_CALLS_PER_S, higher_is_better=True, digits=0),
            Figure("p99", percentile(latencies, 99) * 1000, "ms", INGEST_P99_MS, False),
        ]
        self.info(f"ingest latency: {spread_ms(latencies)}")
        self.info(f"{len(ids)} accepted in {wall:.2f} s, {len(posted) - len(ids)} failed")
        self.info(cpu.line())
        statuses = await self.statuses("ingest")
        if statuses != {"queued": len(ids)}:
            self.report.lost_calls += abs(len(ids) - statuses.get("queued", 0))
            self.problem(f"ingest: expected {len(ids)} queued calls, the database has {statuses}")
        self.out("  " + self.report.lines()[0])
        return warmed + ids

    async def abandon(self, ids: Sequence[int]) -> None:
        """Abandon the ingest calls through the API so the next phases start with empty queues."""
        results: list[int] = []
        pending = iter(ids)

        async def worker() -> None:
            """Abandon the next call until none is left."""
            for call_id in pending:
                status, body = await self.api.request("POST", f"/api/v1/calls/{call_id}/abandon")
                ok = status == 200 and isinstance(body, dict) and body["status"] == "abandoned"
                results.append(1 if ok else 0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.config.ingest_concurrency)))
        self.service.check_alive()
        if sum(results) != len(ids):
            self.problem(f"abandon: {len(ids) - sum(results)} of {len(ids)} abandons failed")
        left = sum((await self.waiting()).values())
        if left:
            self.problem(f"abandon: {left} calls still wait after abandoning them all")
        took = time.perf_counter() - start
        self.info(f"abandoned the {len(ids)} warm-up and ingest calls in {took:.1f} s")

    async def connect_agents(self, fleet: FleetProcess) -> None:
        """Open every agent's console and make it available."""
        config = self.config
        start = time.perf_counter()
        connected = await fleet.ask("connect", timeout_s=120 + config.agents * 0.2)
        if connected["ok"] != config.agents:
            raise BenchError(
                f"only {connected['ok']} of {config.agents} agents connected: {connected}"
            )
        available = await fleet.ask("state", "available", timeout_s=120)
        if available["ok"] != config.agents:
            raise BenchError(f"only {available['ok']} agents went available: {available}")
        seen = await fleet.ask("collect")
        if seen["anomalies"]:
            self.info(f"while connecting: {seen['anomalies']}, e.g. {seen['samples'][:2]}")
        rss, _ = self.service.memory_mb()
        self.info(
            f"{config.agents} agents connected and available in "
            f"{time.perf_counter() - start:.1f} s; service RSS {rss:.1f} MB"
        )

    async def idle(self) -> None:
        """The service's CPU with every agent connected and no call: what the steady phase's
        CPU per call carries besides the calls (pings, heartbeats, the dispatcher's cycles)."""
        config = self.config
        before = self.service.cpu_seconds()
        await asyncio.sleep(config.idle_s)
        share = (self.service.cpu_seconds() - before) / config.idle_s
        self.info(
            f"idle with {config.agents} agents: service {share * 100:.1f}% of one core "
            f"({share * 1000 / config.steady_rate:.2f} ms per call at {config.steady_rate:g}/s)"
        )

    async def end_to_end(self, fleet: FleetProcess) -> None:
        """Phase 2: calls offered faster than the service can take them; figure: completed/s."""
        config = self.config
        figures = await self.calls_to_agents(fleet, "e2e", config.e2e_rate, config.e2e_calls)
        target = min(E2E_CALLS_PER_S, round(COMPLETED_SHARE * config.e2e_rate, 1))
        self.report.figures["end-to-end"] = [
            Figure("completed", figures.completed_rate, "calls/s", target, higher_is_better=True),
            Figure("not completed", figures.not_completed, "", 0, False, digits=0),
        ]
        self.out("  end-to-end: " + "; ".join(str(f) for f in self.report.figures["end-to-end"]))

    async def steady(self, fleet: FleetProcess) -> None:
        """Phase 3: calls at a rate well below saturation; figures: offer p99, CPU per call."""
        config = self.config
        phase = f"end-to-end {config.steady_rate:g}/s"
        figures = await self.calls_to_agents(
            fleet, "steady", config.steady_rate, config.steady_calls
        )
        self.report.figures[phase] = [
            Figure(
                "completed",
                figures.completed_rate,
                "calls/s",
                round(COMPLETED_SHARE * config.steady_rate, 1),
                higher_is_better=True,
            ),
            Figure("offer p99", figures.offer_p99_ms, "ms", STEADY_OFFER_P99_MS, False),
            Figure(
                "service cpu per completed call",
                figures.cpu_ms_per_call,
                "ms",
                STEADY_CPU_MS_PER_CALL,
                False,
            ),
            Figure("not completed", figures.not_completed, "", 0, False, digits=0),
        ]
        self.out(f"  {phase}: " + "; ".join(str(f) for f in self.report.figures[phase]))

    async def calls_to_agents(
        self, fleet: FleetProcess, kind: str, rate: float, count: int
    ) -> Flow:
        """Post `count` calls to the agents' city at `rate`; each agent accepts its offer at once
        and completes it after the handling time. Measured until every call is completed."""
        config = self.config
        bodies = [call_body(self.run_id, kind, i, AGENT_CITY) for i in range(count)]
        self.out(
            f"{kind}: posting {len(bodies)} calls at {rate:g}/s to {config.agents} agents "
            f"({self.service.workers} service process(es)) ..."
        )
        before = await fleet.ask("collect")
        cpu = CpuMeter(self.service, before["cpu_s"])
        service_cpu_s = self.service.cpu_seconds()
        posted = await post_paced(self.api, bodies, rate, config.e2e_max_in_flight)
        posting_s = max(p.sent_at for p in posted) - min(p.sent_at for p in posted)
        ids = self.check_posts(kind, posted)
        # Drain: every accepted call should be completed by its agent.
        done_before = len(before["completed"])
        deadline = time.monotonic() + config.drain_timeout_s
        while True:
            self.service.check_alive()
            progress = await fleet.ask("progress")
            if progress["completed"] - done_before >= len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        service_cpu_s = self.service.cpu_seconds() - service_cpu_s
        seen = await fleet.ask("collect")
        cpu_line = cpu.line(seen["cpu_s"])
        offers: dict[int, float] = seen["offers"]
        by_id = {p.call_id: p for p in posted if p.call_id is not None}
        completed = {i: t for i, t in seen["completed"].items() if i in by_id}
        latencies = [offers[i] - by_id[i].sent_at for i in ids if i in offers]
        first_sent = min(p.sent_at for p in posted)
        last_sent = max(p.sent_at for p in posted)
        window_start = first_sent + config.handle_s[1]
        in_window = [t for t in completed.values() if window_start <= t <= last_sent]
        if last_sent - window_start >= 1.0:
            completed_rate = len(in_window) / (last_sent - window_start)
        else:  # too short a run for a steady window: everything over the whole span
            span = max(completed.values(), default=last_sent) - first_sent
            completed_rate = len(completed) / span if span > 0 else math.nan
        statuses = await self.statuses(kind)
        not_completed = sum(n for status, n in statuses.items() if status != "completed")
        not_completed += len(ids) - sum(statuses.values())
        post_latencies = [p.latency_s for p in posted if p.call_id is not None]
        self.info(f"offer latency (POST sent -> offer read): {spread_ms(latencies)}")
        self.info(
            f"{len(ids)} calls posted in {posting_s:.1f} s "
            f"({(len(ids) - 1) / posting_s if posting_s else math.nan:.1f} calls/s); "
            f"POST latency {spread_ms(post_latencies)}"
        )
        if completed:
            span = max(completed.values()) - first_sent
            self.info(
                f"overall: {len(completed)} completed {span:.1f} s after the first POST "
                f"({len(completed) / span:.1f} calls/s including the start and the drain)"
            )
        self.info(
            f"{sum(i in offers for i in by_id)} offered, {len(completed)} completed by the "
            f"agents; {seen['reoffers'] - before['reoffers']} re-offers; database: {statuses}"
        )
        if seen["anomalies"] or seen["dropped"]:
            self.info(
                f"agent anomalies: {seen['anomalies']}, {seen['dropped']} sockets dropped; "
                f"e.g. {seen['samples'][:3]}"
            )
        cpu_ms_per_call = service_cpu_s * 1000 / len(completed) if completed else math.nan
        self.info(f"{cpu_line}; service {cpu_ms_per_call:.2f} ms per completed call")
        if not_completed:
            self.report.lost_calls += not_completed
            self.problem(f"{kind}: {not_completed} calls not completed after draining")
        if seen["dropped"] > before["dropped"]:
            self.problem(f"{kind}: the service closed {seen['dropped']} agent sockets")
        return Flow(
            completed_rate=completed_rate,
            offer_p99_ms=percentile(latencies, 99) * 1000,
            cpu_ms_per_call=cpu_ms_per_call,
            not_completed=not_completed,
        )

    async def memory(self) -> None:
        """Phase 3: fill the other cities' queues to the target depth; figure: the RSS."""
        config = self.config
        waiting = await self.waiting()
        fill = config.queued_calls - sum(waiting.values())
        bodies = [
            call_body(self.run_id, "queued", i, self.other_cities[i % len(self.other_cities)])
            for i in range(max(fill, 0))
        ]
        self.out(f"memory: queueing {len(bodies)} calls with {config.agents} agents connected ...")
        cpu = CpuMeter(self.service)
        start = time.perf_counter()
        posted = await post_all(self.api, bodies, config.fill_concurrency)
        wall = time.perf_counter() - start
        self.service.check_alive()
        ids = self.check_posts("memory", posted)
        self.info(
            f"queued {len(ids)} calls at {len(ids) / wall:.0f} calls/s with {config.agents} "
            f"idle agents in another city; POST latency "
            f"{spread_ms([p.latency_s for p in posted if p.call_id is not None])}"
        )
        self.info(cpu.line())
        await asyncio.sleep(1.0)  # let the dispatcher settle before reading the memory
        waiting = await self.waiting()
        queued = sum(waiting[city] for city in self.other_cities)
        if queued != config.queued_calls or waiting.get(AGENT_CITY, 0):
            self.report.lost_calls += max(0, config.queued_calls - queued)
            self.problem(f"memory: expected {config.queued_calls} waiting, GET /cities: {waiting}")
        rss, peak = self.service.memory_mb()
        self.report.figures["memory"] = [
            Figure(
                f"RSS with {queued} queued calls and {config.agents} agents",
                rss,
                "MB",
                MEMORY_MB,
                higher_is_better=False,
            ),
            Figure("peak", peak, "MB", MEMORY_MB, higher_is_better=False),
        ]
        self.out("  memory: " + "; ".join(str(f) for f in self.report.figures["memory"]))


def summarize_log(path: Path, *, keep: Path | None, out: Out) -> None:
    """Say what the service logged (it runs at log level warning); copy the log if asked."""
    try:
        content = path.read_text(errors="replace")
    except OSError:
        return
    if keep is not None:
        shutil.copyfile(path, keep)
        out(f"  service log copied to {keep}")
    # Count messages, not the lines of their tracebacks; numbers vary, so fold them.
    messages = [line for line in content.splitlines() if line.strip() and line[0] != " "]
    if not messages:
        out("  service log: nothing logged at warning level or above")
        return
    common = Counter(re.sub(r"\d+", "N", line)[:160] for line in messages).most_common(5)
    out(f"  service log: {len(messages)} messages; most frequent:")
    for line, count in common:
        out(f"    {count} x {line}")


async def run(config: Config, *, out: Out = print, service_log: Path | None = None) -> Report:
    """Run the whole benchmark for `config`, print as it goes, and return the report.

    Raises `BenchError` when set-up fails or the service dies; every resource is released
    either way (the service stopped, the database dropped, the Redis keys deleted). The
    service's log is summarised at the end and copied to `service_log` if given.
    """
    report = Report(config)
    run_id = secrets.token_hex(4)
    db_name = f"surge_bench_{run_id}"
    prefix = f"surge-bench-{run_id}:"
    secret = secrets.token_urlsafe(32)
    out(f"surge benchmark ({config.name}): run {run_id}, database {db_name}, redis prefix {prefix}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out(f"  machine: {os.cpu_count()} cores, load average {load} (other work skews the figures)")
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="surge-bench-")))
        log_path = workdir / "service.log"

        async def log_summary() -> None:
            """Summarise the log once the service has stopped (before the directory goes)."""
            summarize_log(log_path, keep=service_log, out=out)

        stack.push_async_callback(log_summary)
        await ping_redis()
        prepared = await prepare_stack(
            stack, db_name=db_name, prefix=prefix, secret=secret, cwd=workdir
        )
        url, env, settings = prepared.url, prepared.env, prepared.settings
        accounts = await create_accounts(
            url, settings, agents=config.agents, agent_city=AGENT_CITY, run_id=run_id
        )
        service = Service(env=env, cwd=workdir, workers=config.workers)
        stack.push_async_callback(service.stop)
        await service.start()
        rss, _ = service.memory_mb()
        out(f"  service pid {service.pid} on {service.base_url}; RSS at start {rss:.1f} MB")
        db = create_async_engine(url, pool_size=2)
        stack.push_async_callback(db.dispose)
        connections = max(config.ingest_concurrency, config.fill_concurrency, 64)
        api = Api(HOST, service.port, accounts.cti_token, connections)
        stack.push_async_callback(api.aclose)
        other_cities = tuple(str(c["code"]) for c in seed_data() if c["code"] != AGENT_CITY)
        bench = Bench(config, report, run_id, service, api, db, out, other_cities)

        ingested = await bench.ingest()
        await bench.abandon(ingested)
        fleet = FleetProcess(
            FleetSpec(ws_url=service.ws_url, tokens=accounts.agent_tokens, handle_s=config.handle_s)
        )
        stack.push_async_callback(fleet.stop)
        await bench.connect_agents(fleet)
        await bench.idle()
        await bench.steady(fleet)  # first: an overload leaves calls behind it for a while
        await bench.end_to_end(fleet)
        await bench.memory()
        service.check_alive()
    out("")
    for line in report.lines():
        out(line)
    return report


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None]:
    """The run's size (the full size unless told otherwise) and where to copy the service log."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--short", action="store_true", help="the small version (< 1 minute)")
    parser.add_argument("--ingest-calls", type=int, help="calls posted in the ingest phase")
    parser.add_argument("--concurrency", type=int, help="concurrent POSTs in the ingest phase")
    parser.add_argument("--agents", type=int, help="agents connected over /ws/agent")
    parser.add_argument("--rate", type=float, help="calls/s posted in the end-to-end phase")
    parser.add_argument("--e2e-calls", type=int, help="calls posted in the end-to-end phase")
    parser.add_argument("--steady-rate", type=float, help="calls/s posted in the steady phase")
    parser.add_argument("--steady-calls", type=int, help="calls posted in the steady phase")
    parser.add_argument("--queued", type=int, help="calls queued for the memory reading")
    parser.add_argument("--workers", type=int, help="service processes (surge serve --workers)")
    parser.add_argument("--idle-s", type=float, help="seconds the idle CPU is read over")
    parser.add_argument("--service-log", type=Path, help="copy the service's log to this file")
    args = parser.parse_args(argv)
    config = SHORT if args.short else FULL
    overrides = {
        "ingest_calls": args.ingest_calls,
        "ingest_concurrency": args.concurrency,
        "agents": args.agents,
        "e2e_rate": args.rate,
        "e2e_calls": args.e2e_calls,
        "steady_rate": args.steady_rate,
        "steady_calls": args.steady_calls,
        "queued_calls": args.queued,
        "workers": args.workers,
        "idle_s": args.idle_s,
    }
    for key, value in overrides.items():
        if value is not None and value <= 0:
            parser.error(f"--{key.replace('_', '-')} must be positive")
    sized = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return sized, args.service_log


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (PASS or MISS), 1 when it broke."""
    config, service_log = parse_args(argv)

    def bench() -> Report:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run(config, service_log=service_log))

    return exit_code(bench)


if __name__ == "__main__":
    sys.exit(main())
