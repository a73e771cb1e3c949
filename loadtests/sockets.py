"""Idle agent sockets: what each connected console costs the service in memory and CPU.

`python -m loadtests.sockets` starts `surge serve` on PostgreSQL + Redis, reads the service's
RSS, connects N agent consoles (a fleet process, like browsers offering permessage-deflate)
that then stay idle (on break: no call is routed), reads the RSS again and prints the growth
per socket in KiB against the target (`TARGET_KIB`). Then it reads the CPU the service spends
on the idle sockets over `idle_s` (their keepalive pings, mostly) as % of one core.

The run alternates Surge with a baseline, A B A B, on the same database and accounts: the
baseline is the same `surge serve` with uvicorn's websocket settings as they were before
(`PREVIOUS_WS`: permessage-deflate on, uvicorn's default websocket implementation with a ping
timer and a pong timer per socket), so the ratio per pair holds however loaded the machine is.
`--short` is the small version the test suite runs (a few hundred sockets, one pair).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import secrets
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from loadtests.fleet import FleetProcess, FleetSpec
from loadtests.stack import (
    HOST,
    BenchError,
    Service,
    create_accounts,
    drop_prefix,
    exit_code,
    ping_redis,
    prepare_stack,
)

TARGET_KIB = 40.0  # per idle agent socket
AGENT_CITY = "320100"  # Nanjing: every agent of the run works here
SETTLE_S = 2.0  # after the last socket opened, before the RSS is read
# The uvicorn websocket options `surge serve` used before (uvicorn's defaults).
PREVIOUS_WS: Mapping[str, object] = {"ws": "auto", "ws_per_message_deflate": True}

# `surge serve` with `PREVIOUS_WS` forced into its uvicorn.Config (the baseline's launcher).
_BASELINE = """
import sys
import uvicorn
from surge import cli

class Previous(uvicorn.Config):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{{**kwargs, **{previous!r}}})

uvicorn.Config = Previous
sys.exit(cli.main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Config:
    """How big a run is."""

    name: str
    sockets: int
    pairs: int
    idle_s: float  # the idle CPU is read over this long, after the RSS


FULL = Config("full", sockets=5_000, pairs=2, idle_s=20.0)
SHORT = Config("short", sockets=200, pairs=1, idle_s=3.0)


class BaselineService(Service):
    """The same `surge serve`, with uvicorn's websocket options as they were (`PREVIOUS_WS`)."""

    def _command(self) -> list[str]:
        """`surge serve` through the shim that restores the previous websocket options."""
        code = _BASELINE.format(previous=dict(PREVIOUS_WS))
        args = ["serve", "--host", HOST, "--port", str(self.port), "--log-level", "warning"]
        return [sys.executable, "-c", code, *args]


@dataclass(frozen=True)
class Reading:
    """One service's RSS before and after its sockets opened."""

    variant: str
    sockets: int
    before_kib: int
    after_kib: int
    idle_cpu_pct: float  # % of one core with the sockets open and idle

    @property
    def per_socket_kib(self) -> float:
        """The growth per open socket."""
        return (self.after_kib - self.before_kib) / self.sockets


@dataclass
class Report:
    """Every reading, in run order, and what went wrong."""

    config: Config
    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        """The run could not measure what it set out to."""
        return bool(self.problems) or not self.readings

    def of(self, variant: str) -> list[float]:
        """The KiB per socket of each reading of `variant`."""
        return [r.per_socket_kib for r in self.readings if r.variant == variant]

    def cpu_of(self, variant: str) -> list[float]:
        """The idle CPU (% of a core) of each reading of `variant`."""
        return [r.idle_cpu_pct for r in self.readings if r.variant == variant]

    @property
    def surge_kib(self) -> float:
        """The figure: the median KiB per socket of Surge's readings."""
        return statistics.median(self.of("surge"))

    @property
    def passed(self) -> bool:
        """Surge's figure is within the target."""
        return self.surge_kib <= TARGET_KIB

    def lines(self) -> list[str]:
        """The result, one pair per line, then the verdict."""
        out = []
        surge, baseline = self.of("surge"), self.of("baseline")
        surge_cpu, baseline_cpu = self.cpu_of("surge"), self.cpu_of("baseline")
        # A broken run may lack its last baseline: the pairs run out with it.
        pairs = zip(surge, baseline, surge_cpu, baseline_cpu, strict=False)
        for n, (kib, base_kib, cpu, base_cpu) in enumerate(pairs, 1):
            out.append(
                f"  pair {n}: surge {kib:.1f} KiB/socket, baseline {base_kib:.1f} KiB/socket,"
                f" ratio {kib / base_kib:.2f}; idle cpu surge {cpu:.1f}%, baseline"
                f" {base_cpu:.1f}% of a core, ratio {cpu / max(base_cpu, 0.01):.2f}"
            )
        out.append(
            f"  idle cpu with {self.config.sockets} sockets (median): surge"
            f" {statistics.median(surge_cpu):.1f}%, baseline"
            f" {statistics.median(baseline_cpu):.1f}% of a core"
        )
        verdict = "PASS" if self.passed else "MISS"
        sockets = self.config.sockets
        out.append(
            f"sockets: {sockets} idle agent sockets at {self.surge_kib:.1f} KiB each"
            f" (median; target <= {TARGET_KIB:.0f} KiB) {verdict};"
            f" baseline {statistics.median(self.of('baseline')):.1f} KiB"
        )
        return out


def raise_open_files(needed: int) -> None:
    """Raise this process's soft limit on open files (the children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise BenchError(f"{needed} open files needed, the limit is {soft} (ulimit -Hn)")


def rss_kib(service: Service) -> int:
    """The service's resident set size in KiB (VmRSS)."""
    return round(service.memory_mb()[0] * 1024)


async def measure(
    variant: str,
    service: Service,
    tokens: tuple[str, ...],
    idle_s: float,
    out: Callable[[str], None],
) -> Reading:
    """Start the service, read its RSS, open one socket per token, read the RSS again, then
    the service's CPU over `idle_s` with the sockets idle."""
    await service.start()
    fleet = FleetProcess(FleetSpec(ws_url=service.ws_url, tokens=tokens[:1], handle_s=(1, 1)))
    try:  # one console first: what the first socket loads once is not a socket's cost
        opened = await fleet.ask("connect")
    finally:
        await fleet.stop()
    if opened["ok"] != 1:
        raise BenchError(f"{variant}: the first console did not connect: {opened['errors']}")
    await asyncio.sleep(SETTLE_S)
    before = rss_kib(service)
    fleet = FleetProcess(FleetSpec(ws_url=service.ws_url, tokens=tokens, handle_s=(1, 1)))
    try:
        opened = await fleet.ask("connect", timeout_s=600)
        if opened["ok"] != len(tokens):
            raise BenchError(f"{variant}: {opened['ok']} of {len(tokens)}: {opened['errors']}")
        await asyncio.sleep(SETTLE_S)
        service.check_alive()
        after = rss_kib(service)
        cpu_before = service.cpu_seconds()
        await asyncio.sleep(idle_s)
        idle_cpu_pct = (service.cpu_seconds() - cpu_before) / idle_s * 100
        if (await fleet.ask("progress"))["dropped"]:
            raise BenchError(f"{variant}: the service closed idle sockets")
    finally:
        await fleet.stop()
        await service.stop()
    reading = Reading(variant, len(tokens), before, after, idle_cpu_pct)
    out(
        f"  {variant}: RSS {before / 1024:.1f} MB -> {after / 1024:.1f} MB with"
        f" {len(tokens)} sockets: {reading.per_socket_kib:.1f} KiB/socket; idle cpu"
        f" {idle_cpu_pct:.1f}% of a core"
    )
    return reading


async def run(config: Config, *, out: Callable[[str], None] = print) -> Report:
    """Measure Surge and the baseline alternately; print the pairs and the verdict."""
    report = Report(config)
    raise_open_files(2 * config.sockets + 1_000)  # the service's sockets and the fleet's
    run_id = secrets.token_hex(4)
    db_name = f"surge_sockets_{run_id}"
    prefix = f"surge-sockets-{run_id}:"
    secret = secrets.token_urlsafe(32)
    out(
        f"idle sockets ({config.name}): run {run_id}, {config.sockets} sockets, A B x{config.pairs}"
    )
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="surge-sockets-")))
        await ping_redis()
        prepared = await prepare_stack(
            stack, db_name=db_name, prefix=prefix, secret=secret, cwd=workdir
        )
        url, env, settings = prepared.url, prepared.env, prepared.settings
        accounts = await create_accounts(
            url, settings, agents=config.sockets, agent_city=AGENT_CITY, run_id=run_id
        )
        for _ in range(config.pairs):
            for variant, kind in (("surge", Service), ("baseline", BaselineService)):
                service = kind(env=env, cwd=workdir)
                try:
                    reading = await measure(
                        variant, service, accounts.agent_tokens, config.idle_s, out
                    )
                except BenchError as exc:
                    report.problems.append(str(exc))
                    out(f"  {variant}: broke: {exc}\n{service.log_tail()}")
                    return report
                finally:
                    await service.stop()
                    await drop_prefix(prefix)  # each service starts on an empty hot state
                report.readings.append(reading)
    out("")
    for line in report.lines():
        out(line)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurement; 0 when it ran (PASS or MISS), 1 when it broke."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.sockets",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--short", action="store_true", help="the small version (< 30 s)")
    parser.add_argument("--sockets", type=int, help="idle agent sockets per service")
    parser.add_argument("--pairs", type=int, help="A B pairs (Surge, then the baseline)")
    args = parser.parse_args(argv)
    config = SHORT if args.short else FULL
    if args.sockets is not None or args.pairs is not None:
        config = Config(
            "custom", args.sockets or config.sockets, args.pairs or config.pairs, config.idle_s
        )
    if config.sockets <= 0 or config.pairs <= 0:
        parser.error("--sockets and --pairs must be positive")

    def measured() -> Report:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run(config))

    return exit_code(measured)


if __name__ == "__main__":
    sys.exit(main())
