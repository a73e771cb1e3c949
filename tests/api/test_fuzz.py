"""Schemathesis fuzzes every route of `/openapi.json` on a live service: no 5xx, all as declared.

A short round runs in the suite (about 35 s per backend); `make bench` runs the long one (`slow`).
Each round is a coordinator over every route, then a province-wide CTI over the calls routes (the
only ones a coordinator may not use). The checks: no server error, every status and content type
declared, every body as its schema says.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from surge.auth.models import Role
from tests.helpers import LiveService

ST = str(Path(sys.executable).with_name("st"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# City codes are checked against the seeded cities: a random six-digit code is only ever a 422, so
# path cities are fixed to one real city for the fuzzer to reach the routes' logic.
CONFIG = '[parameters]\n"path.city" = "320100"\n'


@dataclass(frozen=True)
class Budget:
    """How much fuzzing a round does for each role."""

    max_examples: int
    coordinator_s: int
    cti_s: int


# The short round is bounded by time, so its budget leaves room for a slow day: 21 s gave 405
# and 459 cases under the suite on this machine's slowest day (2026-12-02); 35 s alone gave 1,871.
SHORT = Budget(max_examples=10, coordinator_s=25, cti_s=10)
LONG = Budget(max_examples=300, coordinator_s=240, cti_s=60)


async def schemathesis(
    service: LiveService, user: str, tmp_path: Path, *, budget: int, max_examples: int, **only: str
) -> dict[str, Any]:
    """Run `st run` as `user` against the live service and return its JSON report."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report = tmp_path / f"{user}.json"
    filters = [part for name, value in only.items() for part in (f"--{name}", value)]
    process = await asyncio.create_subprocess_exec(
        *(ST, "--no-color", "--config-file", str(config), "run"),
        f"{service.base_url}/openapi.json",
        *("--header", f"Authorization: Bearer {service.tokens[user]}"),
        *("--checks", ",".join(CHECKS), "--max-examples", str(max_examples)),
        *("--max-time", str(budget), "--workers", "1", "--seed", "11"),
        *("--report", "json", "--report-json-path", str(report), *filters),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # schemathesis keeps a cache of crashes in its working directory
    )
    output, _ = await process.communicate()
    assert report.exists(), output.decode()[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    assert result["complete"], output.decode()[-3000:]
    assert result["errors"] == [], output.decode()[-3000:]
    assert result["failures"] == [], output.decode()[-6000:]
    assert result["operations"]["tested"] == result["operations"]["selected"] > 0
    return result


async def fuzz(service: LiveService, tmp_path: Path, budget: Budget) -> int:
    """Fuzz as a coordinator, then as a CTI; return how many cases ran."""
    coordinator = await service.add_user(Role.COORDINATOR)
    everything = await schemathesis(
        service,
        coordinator,
        tmp_path,
        budget=budget.coordinator_s,
        max_examples=budget.max_examples,
    )
    cti = await service.add_user(Role.CTI)  # after: the coordinator's round may disable users
    calls = await schemathesis(
        service,
        cti,
        tmp_path,
        budget=budget.cti_s,
        max_examples=budget.max_examples,
        **{"include-tag": "calls"},
    )
    cases: int = everything["test_cases"]["generated"] + calls["test_cases"]["generated"]
    print(f"schemathesis: {cases} cases, 0 failures")  # the figure for the notes (-s)
    return cases


async def test_schemathesis_finds_no_server_error(service: LiveService, tmp_path: Path) -> None:
    assert await fuzz(service, tmp_path, SHORT) > 500


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_schemathesis_long_round(service: LiveService, tmp_path: Path) -> None:
    assert await fuzz(service, tmp_path, LONG) > 5000
