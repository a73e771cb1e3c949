"""`/metrics`: Prometheus text, no token, off by default; its counts move as calls flow."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import LiveService, run_service

NANJING = "320100"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: LiveService, http: httpx.AsyncClient | None = None) -> Samples:
    """Every sample of `/metrics` (through `http`, else the service's client), parsed by
    prometheus_client's own parser."""
    response = await (http or service.http).get("/metrics")  # no token
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a labelled counter not yet counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_off_unless_enabled(service: LiveService) -> None:
    assert (await service.http.get("/metrics")).status_code == 404


async def test_counts_and_live_figures_move_as_calls_flow(backend: Backend) -> None:
    async with run_service(backend.settings(metrics_enabled=True)) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        before = await scrape(service)
        async with service.console(agent) as console:
            on_break = await scrape(service)
            sockets = {"stream": "agent"}
            assert value(on_break, "surge_websocket_connections", **sockets) == (
                value(before, "surge_websocket_connections", **sockets) + 1
            )
            assert value(on_break, "surge_agents", city=NANJING, state="break") == 1

            call = await service.post_call(cti, NANJING)
            await asyncio.sleep(0.05)
            waiting = await scrape(service)
            assert value(waiting, "surge_calls_posted_total", city=NANJING) == (
                value(before, "surge_calls_posted_total", city=NANJING) + 1
            )
            assert value(waiting, "surge_calls_waiting", city=NANJING) == 1
            assert value(waiting, "surge_longest_wait_seconds", city=NANJING) > 0

            await console.available()
            offer = await console.expect("offer")
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("call.connected")
            connected = await scrape(service)
            for name in ("surge_offers_made_total", "surge_offers_accepted_total"):
                assert value(connected, name, city=NANJING) == value(before, name, city=NANJING) + 1
            for name in ("surge_offer_wait_seconds_count", "surge_accept_seconds_count"):
                assert value(connected, name) == value(before, name) + 1
            assert value(connected, "surge_calls_waiting", city=NANJING) == 0
            assert value(connected, "surge_agents", city=NANJING, state="busy") == 1
            assert value(connected, "surge_dispatch_cycle_seconds_count") > value(
                before, "surge_dispatch_cycle_seconds_count"
            )

            await console.send(
                type="complete", call_id=call["id"], disposition="answered", category_code="0101"
            )
            await console.expect("call.completed")
            await console.expect("state")
            second = await service.post_call(cti, NANJING)
            offer = await console.expect("offer")
            assert offer["call"]["id"] == second["id"]
            await console.send(type="decline", offer_id=offer["offer_id"])
            await console.expect("offer")  # the same call again: the only agent is still free
            declined = await scrape(service)
            assert value(declined, "surge_calls_completed_total", city=NANJING) == (
                value(before, "surge_calls_completed_total", city=NANJING) + 1
            )
            assert value(declined, "surge_offers_ended_total", reason="declined") == (
                value(before, "surge_offers_ended_total", reason="declined") + 1
            )
        await asyncio.sleep(0.05)
        after = await scrape(service)
        assert value(after, "surge_websocket_connections", **sockets) == value(
            before, "surge_websocket_connections", **sockets
        )
