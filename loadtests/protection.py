"""Lender protection in the simulator: helpers near their own target, with and without the guard.

Run: `python -m loadtests.protection [scenario.json]` (default
`loadtests/scenarios/lender_protection.json`: Nanjing at 3x its capacity for eight hours, Xuzhou
and Suzhou lending 4 of their 10 agents each while their own callers keep them near 80 %).

The scenario runs four ways: as written (its `protection` guard), without the guard (lending as
much as quotas allow, as in part 1), with the guard and a reserve of one more agent per wave, and
without any surge (the host alone). Printed: each helper's own service level over the day and
while lending in each, and the host's calls answered against the host alone (its gain).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from surge.sim.engine import simulate
from surge.sim.scenario import Scenario

SCENARIO = Path(__file__).with_name("scenarios") / "lender_protection.json"


def share(value: float | None) -> str:
    """A service level as a percentage ('-' when there was nothing to measure)."""
    return "-" if value is None else f"{value:.1%}"


def rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A result's cities by code."""
    return {row["code"]: row for row in result["cities"]}


def main() -> None:
    """Run the scenario with and without its guard (and without the surge) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", type=Path, default=SCENARIO)
    args = parser.parse_args()
    scenario = Scenario.model_validate_json(args.scenario.read_bytes())
    if scenario.protection is None:
        parser.error("the scenario has no `protection` to compare against")
    guarded = rows(simulate(scenario))
    unguarded = rows(simulate(scenario.model_copy(update={"protection": None})))
    data = scenario.model_dump()
    for surge in data["surges"]:
        for wave in surge["waves"]:
            wave["reserve"] += 1
    reserved = rows(simulate(Scenario.model_validate(data)))
    alone = rows(simulate(scenario.model_copy(update={"surges": []})))
    target = scenario.protection.service_level
    print(
        f"lender protection: guard {target:.0%} within {scenario.service_level_s:g} s over "
        f"{scenario.protection.window_s:g} s"
    )
    helpers = [code for code, row in guarded.items() if "own_service_level_while_lending" in row]
    for code in helpers:
        on, off, kept = guarded[code], unguarded[code], reserved[code]
        print(
            f"helper {code}: own service level while lending "
            f"{share(off['own_service_level_while_lending'])} without the guard, "
            f"{share(on['own_service_level_while_lending'])} with it, "
            f"{share(kept['own_service_level_while_lending'])} with it and one more reserve "
            f"(day: {share(off['service_level'])}, {share(on['service_level'])}, "
            f"{share(kept['service_level'])}; {share(alone[code]['service_level'])} not lending)"
        )
    for surge in scenario.surges:
        host = surge.host_city
        on, off, kept, solo = guarded[host], unguarded[host], reserved[host], alone[host]
        print(
            f"host {host}: answered {solo['answered']} alone, {off['answered']} helped without "
            f"the guard (+{off['answered'] - solo['answered']}), {on['answered']} with it "
            f"(+{on['answered'] - solo['answered']}), {kept['answered']} with it and one more "
            f"reserve (+{kept['answered'] - solo['answered']}); by helpers "
            f"{off['answered_by_helpers']}, {on['answered_by_helpers']}, "
            f"{kept['answered_by_helpers']}"
        )


if __name__ == "__main__":
    main()
