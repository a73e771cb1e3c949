"""Lender protection in the simulator: helpers near their own target, with and without the guard.

Run: `python -m loadtests.protection [scenario.json]` (default
`loadtests/scenarios/lender_protection.json`: Nanjing at 3x its capacity for eight hours, Xuzhou
and Suzhou lending 4 of their 10 agents each while their own callers keep them near 80 %).

The scenario runs three ways: as written (its `protection` guard), without the guard (lending as
much as quotas allow, as in part 1) and without any surge (the host alone). Printed: each helper's
own service level over the day and while lending, with and without the guard, and the host's
calls answered against the host alone (its gain from the surge).
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
    alone = rows(simulate(scenario.model_copy(update={"surges": []})))
    target = scenario.protection.service_level
    print(
        f"lender protection: guard {target:.0%} within {scenario.service_level_s:g} s over "
        f"{scenario.protection.window_s:g} s"
    )
    helpers = [code for code, row in guarded.items() if "own_service_level_while_lending" in row]
    for code in helpers:
        on, off = guarded[code], unguarded[code]
        print(
            f"helper {code}: own service level while lending "
            f"{share(off['own_service_level_while_lending'])} without the guard, "
            f"{share(on['own_service_level_while_lending'])} with it (day: "
            f"{share(off['service_level'])} -> {share(on['service_level'])})"
        )
    for surge in scenario.surges:
        host = surge.host_city
        on, off, solo = guarded[host], unguarded[host], alone[host]
        print(
            f"host {host}: answered {solo['answered']} alone, {off['answered']} helped without "
            f"the guard (+{off['answered'] - solo['answered']}), {on['answered']} with it "
            f"(+{on['answered'] - solo['answered']}); by helpers {off['answered_by_helpers']} -> "
            f"{on['answered_by_helpers']}"
        )


if __name__ == "__main__":
    main()
