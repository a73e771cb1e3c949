"""What this machine charges for the same work done at a low rate: the duty-cycle baseline.

`loadtests.bench` measures the service's CPU per completed call at 50 calls/s against its CPU per
call at saturation. Part of the difference is not the service's: a core that idles between short
bursts of work (caches and branch predictors cooled by the other processes, a clock that
slows down) spends more CPU on the same instructions than one kept busy. This runs one fixed unit
of Python work (building dicts, JSON both ways: about what a request costs) back to back, then
paced at the given rates, alternating (A B A B), and prints the CPU per unit and the ratio to
back to back per pair, and the median ratio::

    python -m loadtests.duty --rates 20 50 100 --pairs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence


def unit() -> None:
    """A fixed piece of interpreter work, a fraction of a millisecond."""
    data = {str(i): {"id": i, "pair": [i, i + 1], "text": "x" * (i % 7)} for i in range(300)}
    json.loads(json.dumps(data))


def cpu_ms_per_unit(rate: float | None, count: int) -> float:
    """Run `count` units, `rate` a second (None: back to back); the thread's CPU per unit, in ms."""
    spent = 0.0
    for _ in range(count):
        began = time.thread_time()
        unit()
        spent += time.thread_time() - began
        if rate is not None:
            time.sleep(1 / rate)
    return spent / count * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.duty", description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 50.0, 100.0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each paced run")
    args = parser.parse_args(argv)
    print("duty cycle: the same unit of work, back to back (A) and paced (B), CPU per unit")
    for rate in args.rates:
        ratios = []
        for pair in range(1, args.pairs + 1):
            busy = cpu_ms_per_unit(None, 2000)
            paced = cpu_ms_per_unit(rate, max(10, int(rate * args.seconds)))
            ratios.append(paced / busy)
            print(f"  {rate:g}/s pair {pair}: back to back {busy:.3f} ms, paced {paced:.3f} ms,"
                  f" ratio {paced / busy:.2f}")  # fmt: skip
        print(f"  {rate:g}/s: median ratio {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
