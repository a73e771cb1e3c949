"""Routing benchmarks: one policy decision at province scale, and a Nanjing-scale simulated day.

Run: `python -m loadtests.routing` (part of `make bench`; `--short` for a quick check).

1. Decision: 13 cities, 5,000 agents, 50,000 queued calls (40,000 of them Nanjing's), two active
   surges whose helpers already fill part of their quotas. Timed as the dispatcher calls it: the
   snapshot is built, `decide` is measured. Two shapes: the steady state of an overloaded
   province (1 % of agents free at a decision) against the target, and a burst (10 % free at
   once) for information.
2. Simulator: `loadtests/scenarios/nanjing_scale_day.json`, about 1,008,000 Nanjing arrivals in
   a day against 113 agents and 12 helper cities.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from surge.router.policy import CitySnapshot, Snapshot, SurgeView, decide
from surge.sim.engine import simulate
from surge.sim.scenario import Scenario
from surge.state.base import IdleAgent, QueuedCall

CITIES = [
    "320100", "320200", "320300", "320400", "320500", "320600", "320700",
    "320800", "320900", "321000", "321100", "321200", "321300",
]  # fmt: skip
NOW = 1_800_000_000.0
SCENARIO = Path(__file__).with_name("scenarios") / "nanjing_scale_day.json"


def province(*, agents: int, queued: int, free_share: float, seed: int = 1) -> Snapshot:
    """A snapshot of an overloaded province, as the hot state would give it."""
    rng = random.Random(seed)
    share = {code: 0.8 if code == "320100" else 0.2 / 12 for code in CITIES}
    ids = iter(range(1, 10**7))
    per_city_agents = agents // len(CITIES)
    free_per_city = max(1, round(per_city_agents * free_share))
    cities = {}
    for code in CITIES:
        count = round(queued * share[code])
        queue = tuple(
            QueuedCall(next(ids), code, 0, NOW - count + i, "13812345678", "phone")
            for i in range(count)
        )
        free = tuple(
            IdleAgent(next(ids), code, NOW - rng.uniform(0, 600)) for _ in range(free_per_city)
        )
        cities[code] = CitySnapshot(
            code=code,
            queue=queue,
            free_agents=tuple(sorted(free, key=lambda a: (a.idle_since, a.agent_id))),
            waiting=count,
            serving={"320100": rng.randint(0, 5), "321000": rng.randint(0, 3)},
        )
    helpers_nj = dict.fromkeys(CITIES[1:7], 10)
    helpers_yz = dict.fromkeys(CITIES[7:9] + CITIES[10:], 8)
    surges = (SurgeView(1, "320100", 0.0, helpers_nj), SurgeView(2, "321000", 10.0, helpers_yz))
    return Snapshot(now=NOW, cities=cities, surges=surges)


def time_decisions(snapshot: Snapshot, repeats: int) -> tuple[float, float, int]:
    """Median and p99 of `decide` in milliseconds, and how many offers one decision makes."""
    timings = []
    offers = 0
    for _ in range(repeats):
        started = time.perf_counter()
        offers = len(decide(snapshot))
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1], offers


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def main() -> None:
    """Run both benchmarks and print their figures against the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="small sizes, for the test suite")
    args = parser.parse_args()
    agents, queued, repeats = (500, 5_000, 50) if args.short else (5_000, 50_000, 500)

    for label, free_share in (("steady state, 1% free", 0.01), ("burst, 10% free", 0.10)):
        snapshot = province(agents=agents, queued=queued, free_share=free_share)
        median, p99, offers = time_decisions(snapshot, repeats)
        target = "" if "burst" in label else f" (target < 1 ms) {verdict(median < 1.0)}"
        print(
            f"decision [{label}]: {len(CITIES)} cities, {agents} agents, {queued} queued, "
            f"{offers} offers: median {median:.3f} ms, p99 {p99:.3f} ms{target}"
        )

    scenario = Scenario.model_validate_json(SCENARIO.read_bytes())
    if args.short:
        scenario = scenario.model_copy(update={"duration_s": 3600.0})
    started = time.perf_counter()
    result = simulate(scenario)
    elapsed = time.perf_counter() - started
    arrivals = sum(city["offered"] for city in result["cities"])
    target = "" if args.short else f" (target < 60 s) {verdict(elapsed < 60)}"
    print(
        f"simulator: {arrivals} arrivals ({result['decisions']} routing decisions) "
        f"in {elapsed:.1f} s, {arrivals / elapsed:,.0f} arrivals/s{target}"
    )


if __name__ == "__main__":
    main()
