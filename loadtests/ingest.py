"""Surge's ingest against the floor, side by side: A B A B on one machine, in one run.

Run it (needs PostgreSQL on 127.0.0.1:5432, trust auth, and Redis on 127.0.0.1:6379)::

    .venv/bin/python -m loadtests.ingest                     # 3 pairs of full phases
    .venv/bin/python -m loadtests.ingest --short --pairs 1   # the quick version

The floor (`loadtests.floor`) is the least a call intake must do: a PyJWT check of the bearer
token, Surge's pydantic body model, one INSERT of the call and its arrival event through an
asyncpg pool, one Redis write, served by uvicorn with `surge serve`'s options.

Set-up: two databases of the run's own, each migrated and seeded by `surge migrate` and
`surge seed` (one for Surge, one for the floor; dropped at the end), two Redis key prefixes
(deleted at the end), and a province-wide CTI whose token both services accept (one secret).

A pair is one phase against Surge, then one against the floor. A phase starts its service,
posts the warm-up calls (not counted: they fill the pools and statement caches), then posts the
measured calls as fast as the service answers, 32 in flight, from the same lean keep-alive
client as `loadtests.bench`, and stops the service, so the idle one takes no CPU from the other.
Figures per phase: calls/s (accepted calls over the wall time), p50/p99 latency as the client
sees it, and the service's CPU (user + system) per call; per pair the ratios Surge/floor of
calls/s and of p99; then the medians over the pairs, against the targets (calls/s ratio >= 0.7,
p99 ratio no more than 1.5).

Exit status: 0 when the benchmark ran, whatever PASS or MISS it printed; 1 when it broke (a
service failed to start or refused calls, a call was not recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from loadtests.bench import Api, Figure, Out, call_body, percentile, post_all
from loadtests.stack import (
    HOST,
    Service,
    create_accounts,
    exit_code,
    ping_redis,
    prepare_stack,
)
from surge.cities.service import seed_data

RATE_RATIO = 0.7  # Surge's calls/s at least this share of the floor's
P99_RATIO = 1.5  # Surge's p99 at most this many times the floor's
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    """The size of one run."""

    name: str
    calls: int  # measured per phase
    warmup_calls: int  # posted (and not counted) at the start of every phase
    pairs: int
    concurrency: int = 32


FULL = Config(name="full", calls=4000, warmup_calls=400, pairs=3)
SHORT = Config(name="short", calls=300, warmup_calls=100, pairs=3)


class FloorService(Service):
    """`python -m loadtests.floor` as a subprocess, started and stopped like `surge serve`."""

    def _command(self) -> list[str]:
        """`python -m loadtests.floor` on this service's port."""
        args = [sys.executable, "-m", "loadtests.floor", "--host", HOST, "--port", str(self.port)]
        return [*args, "--log-level", "warning"]


@dataclass(frozen=True)
class Phase:
    """One phase's figures."""

    calls_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_call: float
    accepted: int
    failed: int
    first_error: str | None

    def __str__(self) -> str:
        """E.g. `512 calls/s, p50 55.1 ms, p99 98.2 ms, 1.90 ms CPU/call`."""
        return (
            f"{self.calls_per_s:.0f} calls/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"{self.cpu_ms_per_call:.2f} ms CPU/call"
        )


@dataclass(frozen=True)
class Pair:
    """Surge's phase and the floor's phase right after it."""

    surge: Phase
    floor: Phase

    @property
    def rate_ratio(self) -> float:
        """Surge's calls/s over the floor's."""
        return self.surge.calls_per_s / self.floor.calls_per_s

    @property
    def p99_ratio(self) -> float:
        """Surge's p99 over the floor's."""
        return self.surge.p99_ms / self.floor.p99_ms


@dataclass
class Report:
    """What a run measured and what went wrong."""

    config: Config
    pairs: list[Pair] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        """Whether the benchmark itself failed (as opposed to missing a target)."""
        return bool(self.problems)


@dataclass(frozen=True)
class Side:
    """One of the two services: how to start it and where its calls go."""

    name: str
    kind: type[Service]
    env: Mapping[str, str]
    database_url: str


async def run_phase(
    side: Side, *, config: Config, token: str, run_id: str, tag: str, workdir: Path
) -> Phase:
    """Start the service, warm it up, post the measured calls, stop it; return the figures."""
    cities = tuple(str(city["code"]) for city in seed_data())
    service = side.kind(env=side.env, cwd=workdir / side.name)
    await service.start()
    api = Api(HOST, service.port, token, config.concurrency)
    try:
        warmup = [
            call_body(run_id, f"warmup-{tag}", i, cities[i % len(cities)])
            for i in range(config.warmup_calls)
        ]
        await post_all(api, warmup, config.concurrency)
        bodies = [call_body(run_id, tag, i, cities[i % len(cities)]) for i in range(config.calls)]
        cpu_start = service.cpu_seconds()
        start = time.perf_counter()
        posted = await post_all(api, bodies, config.concurrency)
        wall = time.perf_counter() - start
        cpu_s = service.cpu_seconds() - cpu_start
        service.check_alive()
    finally:
        await api.aclose()
        await service.stop()
    accepted = [p for p in posted if p.call_id is not None]
    failed = [p for p in posted if p.call_id is None]
    latencies = [p.latency_s for p in accepted]
    return Phase(
        calls_per_s=len(accepted) / wall,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        cpu_ms_per_call=cpu_s * 1000 / max(len(accepted), 1),
        accepted=len(accepted),
        failed=len(failed),
        first_error=failed[0].error if failed else None,
    )


async def recorded(url: str) -> int:
    """How many calls the database holds."""
    engine = create_async_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(text('SELECT count(*) FROM "call"'))
            events = await connection.scalar(text("SELECT count(*) FROM call_event"))
    finally:
        await engine.dispose()
    return int(count) if count == events else -1


async def run(config: Config, *, out: Out = print) -> Report:
    """Run the pairs for `config`, print as it goes, and return the report."""
    report = Report(config)
    run_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out(
        f"ingest, Surge against the floor ({config.name}): run {run_id}, {config.pairs} pairs of "
        f"{config.calls} calls ({config.warmup_calls} warm-up), {config.concurrency} in flight"
    )
    out(f"  machine: {os.cpu_count()} cores, load average {load} (other work skews the figures)")
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="surge-ingest-")))
        await ping_redis()
        sides: list[Side] = []
        for name, kind in (("surge", Service), ("floor", FloorService)):
            db_name = f"surge_ingest_{run_id}_{name}"
            prefix = f"surge-ingest-{run_id}-{name}:"
            (workdir / name).mkdir()
            path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
            prepared = await prepare_stack(
                stack,
                db_name=db_name,
                prefix=prefix,
                secret=secret,
                cwd=workdir / name,
                more_env={"PYTHONPATH": path},
            )
            sides.append(Side(name, kind, prepared.env, prepared.url))
            settings = prepared.settings  # either side's mints the same tokens
        surge, floor = sides
        accounts = await create_accounts(
            surge.database_url, settings, agents=0, agent_city="320100", run_id=run_id
        )
        for index in range(1, config.pairs + 1):
            phases: list[Phase] = []
            for side in (surge, floor):
                phase = await run_phase(
                    side,
                    config=config,
                    token=accounts.cti_token,
                    run_id=run_id,
                    tag=f"{side.name}-{index}",
                    workdir=workdir,
                )
                if phase.failed:
                    report.problems.append(
                        f"pair {index}, {side.name}: {phase.failed} POSTs failed, "
                        f"e.g. {phase.first_error}"
                    )
                phases.append(phase)
            pair = Pair(*phases)
            report.pairs.append(pair)
            out(f"pair {index}: Surge {pair.surge}")
            out(f"        floor {pair.floor}")
            out(
                f"        Surge/floor: calls/s {pair.rate_ratio:.2f}, p99 {pair.p99_ratio:.2f}, "
                f"CPU/call {pair.surge.cpu_ms_per_call / pair.floor.cpu_ms_per_call:.2f}"
            )
        expected = (config.calls + config.warmup_calls) * config.pairs
        for side in sides:
            held = await recorded(side.database_url)
            if held != expected:
                report.problems.append(
                    f"{side.name}: the database holds {held} calls with their events "
                    f"(-1: calls and events differ), expected {expected}"
                )
    pairs = report.pairs

    def median(values: Sequence[float]) -> float:
        return statistics.median(values)

    out("")
    out(
        f"median of {len(pairs)}: Surge "
        f"{median([p.surge.calls_per_s for p in pairs]):.0f} calls/s, "
        f"p99 {median([p.surge.p99_ms for p in pairs]):.1f} ms, "
        f"{median([p.surge.cpu_ms_per_call for p in pairs]):.2f} ms CPU/call; floor "
        f"{median([p.floor.calls_per_s for p in pairs]):.0f} calls/s, "
        f"p99 {median([p.floor.p99_ms for p in pairs]):.1f} ms, "
        f"{median([p.floor.cpu_ms_per_call for p in pairs]):.2f} ms CPU/call"
    )
    report.figures = [
        Figure(
            "calls/s Surge/floor",
            median([p.rate_ratio for p in pairs]),
            "",
            RATE_RATIO,
            higher_is_better=True,
            digits=2,
        ),
        Figure(
            "p99 Surge/floor",
            median([p.p99_ratio for p in pairs]),
            "",
            P99_RATIO,
            higher_is_better=False,
            digits=2,
        ),
    ]
    out("ingest vs floor (median): " + "; ".join(str(f) for f in report.figures))
    missed = sum(not f.passed for f in report.figures)
    out(
        f"result: {len(report.figures) - missed} PASS, {missed} MISS, "
        f"{len(report.problems)} problems"
    )
    for problem in report.problems:
        out(f"  problem: {problem}")
    return report


def parse_args(argv: Sequence[str] | None) -> Config:
    """The run's size."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.ingest", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--short", action="store_true", help="the quick version")
    parser.add_argument("--pairs", type=int, help="Surge-then-floor pairs (default 3)")
    parser.add_argument("--calls", type=int, help="calls measured per phase")
    args = parser.parse_args(argv)
    config = SHORT if args.short else FULL
    for name in ("pairs", "calls"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive")
        if value is not None:
            config = replace(config, **{name: value})
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pairs; 0 when they ran (PASS or MISS), 1 when the benchmark broke."""
    config = parse_args(argv)

    def bench() -> Report:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run(config))

    return exit_code(bench)


if __name__ == "__main__":
    sys.exit(main())
