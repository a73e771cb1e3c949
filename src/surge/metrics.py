"""Prometheus metrics: counted where things happen, the live figures read at scrape time.

Counters and histograms are module-level `prometheus_client` objects, counted at the one place
each thing happens (the call transitions, the dispatcher's cycle, the boundaries that turn a
Redis or database failure into a 503). They always count (an increment is a lock and an
addition); `/metrics` shows them only when `SURGE_METRICS_ENABLED` is set.

The live figures (per city: calls waiting, the longest wait, agents by state) are not kept
here: the hot state holds them for the whole province, so each scrape reads them once, as the
dashboards do, and a scrape of any instance shows the same.

Several worker processes (`surge serve --workers N`) share one port, so a scrape reaches any
one of them: `prometheus_client`'s multiprocess mode keeps every process's counts in files of
a directory (`PROMETHEUS_MULTIPROC_DIR`, made by `surge serve` for its workers) and the scraped
worker adds them all up. Per-worker exposition would need a port per worker or an instance to
scrape them all; the files need neither, and counts of a restarted worker are kept.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from surge.state.base import CityView

CONTENT_TYPE = CONTENT_TYPE_LATEST

CALLS_POSTED = Counter(
    "surge_calls_posted", "Calls recorded by POST /calls (not repeats)", ["city"]
)
OFFERS_MADE = Counter("surge_offers_made", "Offers made and recorded, by the call's city", ["city"])
OFFERS_ACCEPTED = Counter("surge_offers_accepted", "Offers accepted, by the call's city", ["city"])
OFFERS_ENDED = Counter(
    "surge_offers_ended",
    "Offers ended unanswered, by reason: declined, expired, or revoked (any other reason)",
    ["reason"],
)
CALLS_COMPLETED = Counter(
    "surge_calls_completed", "Tickets closed by agents, by the call's city", ["city"]
)
OFFER_WAIT = Histogram(
    "surge_offer_wait_seconds",
    "From a call's arrival in its queue (its first, for a call offered again) to each offer",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
ACCEPT_TIME = Histogram(
    "surge_accept_seconds",
    "From an offer to the agent's accept",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60),
)
DISPATCH_CYCLE = Histogram(
    "surge_dispatch_cycle_seconds",
    "A dispatcher cycle: from waking up to the last offer recorded (or nothing to do)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
WEBSOCKETS = Gauge(
    "surge_websocket_connections",
    "Open websockets, by stream (agent consoles, telephony, admin consoles)",
    ["stream"],
    multiprocess_mode="livesum",
)
STATE_REBUILDS = Counter(
    "surge_state_rebuilds", "Hot-state rebuilds after it was lost (start-up's build not counted)"
)
BACKEND_ERRORS = Counter(
    "surge_backend_errors",
    "Redis (hot state) and database failures turned into the service's 503 errors",
    ["backend"],
)

_LIVE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def _multiprocess() -> bool:
    """True when the values live in files (PROMETHEUS_MULTIPROC_DIR was set at import)."""
    return values.ValueClass is not values.MutexValue


class _Figures(Collector):
    """Metric families already read (the live figures): yielded as they are."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


def live_figures(views: Mapping[str, CityView], *, now: float) -> list[GaugeMetricFamily]:
    """The gauge families of the hot state's figures of each city."""
    waiting = GaugeMetricFamily(
        "surge_calls_waiting", "Calls waiting in a city's queue", labels=["city"]
    )
    longest = GaugeMetricFamily(
        "surge_longest_wait_seconds", "How long the oldest waiting call has waited", labels=["city"]
    )
    agents = GaugeMetricFamily(
        "surge_agents",
        "Present agents of a city, by state (busy includes the wrap-up)",
        labels=["city", "state"],
    )
    for city, view in sorted(views.items()):
        waiting.add_metric([city], view.waiting)
        oldest = view.oldest_enqueued_at
        longest.add_metric([city], 0.0 if oldest is None else max(0.0, now - oldest))
        for state, count in (
            ("available", len(view.idle)),
            ("offered", view.offered),
            ("busy", view.busy),
            ("break", view.on_break),
        ):
            agents.add_metric([city, state], count)
    return [waiting, longest, agents]


def _forget_dead_processes(path: str) -> None:
    """Drop the live gauges (open sockets) of worker processes that have died."""
    for name in glob.glob(os.path.join(path, "gauge_live*.db")):
        found = _LIVE_FILE.search(name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def exposition(figures: list[GaugeMetricFamily]) -> bytes:
    """The text exposition: this process's (or every worker's) counts, then `figures`."""
    if _multiprocess():
        path = os.environ["PROMETHEUS_MULTIPROC_DIR"]  # prometheus_client's own variable
        _forget_dead_processes(path)
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted, path=path)  # type: ignore[no-untyped-call]
    else:
        counted = REGISTRY
    live = CollectorRegistry()
    live.register(_Figures(figures))
    return generate_latest(counted) + generate_latest(live)
