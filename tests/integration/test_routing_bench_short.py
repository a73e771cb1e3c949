"""The routing benchmark's short version runs and prints its figures (the full one: make bench)."""

from __future__ import annotations

import asyncio
import sys


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
