"""The routing benchmark's short version runs and prints its figures (the full one: make bench)."""

from __future__ import annotations

import asyncio
import sys

from tests.conftest import Backend


async def test_routing_bench_short_prints_its_figures() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadtests.routing",
        "--short",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert any(line.startswith("decision [steady state") and "median" in line for line in lines)
    assert any(line.startswith("simulator:") and "arrivals" in line for line in lines)


async def test_publish_bench_short_prints_its_figure(shared_backend: Backend) -> None:
    # shared_backend: this run needs (and checks for) the local Postgres + Redis.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.publish", "--short",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "script publish to 100 agents on two instances" in out.decode()


async def test_lender_protection_figures_print() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.protection",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert sum(line.startswith("helper ") and "with it" in line for line in lines) == 2
    assert any(line.startswith("host ") and "alone" in line for line in lines)
