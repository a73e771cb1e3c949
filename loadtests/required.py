"""Required script versions under load: what a required publish costs in offers and in time.

Run: `python -m loadtests.required` (part of `make bench`; `--short` for the suite's quick run).

One `surge serve` on Postgres + Redis, N agents of one city with consoles simulated over
websockets, calls posted at a steady rate by the telephony side. Each console does what the
browser console does: goes available, accepts every offer and completes it after a talk time;
on a `scripts.updated` it loads the book (`GET /cities/{code}/scripts`, the display) and then
sends `scripts.ack`; a required version it acknowledges only after that display, plus a reading
time drawn per agent (the agent has to look at the banner). The admin publishes one required
version mid-run. Figures:

- seconds from the publish (the POST sent) to each console's ack: median and max;
- offers delayed: calls that waited, at some moment between their arrival and their offer, while
  a held-back agent was free (it would have been offered the call without the hold), of all
  calls; and the median wait of those calls against the others'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from loadtests.stack import (
    REDIS_URL,
    Service,
    create_accounts,
    create_database,
    drop_database,
    drop_prefix,
    ping_redis,
    run_cli,
    service_env,
)
from surge.settings import Settings

CITY = "320100"
ENTRY = {"key": "testing", "title": "核酸检测点", "question": "在哪里做核酸？",
         "answer": "见官方公告。", "category_code": "0101", "tags": []}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    """A run's size: agents, calls per second, seconds before and after the publish."""

    agents: int
    rate: float
    before_s: float
    after_s: float
    talk_s: float
    reading_s: tuple[float, float]  # each agent's reading time after display, drawn uniformly


FULL = Plan(agents=200, rate=40.0, before_s=10.0, after_s=20.0, talk_s=3.0, reading_s=(0.5, 8.0))
SHORT = Plan(agents=10, rate=4.0, before_s=2.0, after_s=4.0, talk_s=1.0, reading_s=(0.2, 1.5))


@dataclass(slots=True)
class Console:
    """One simulated agent console and what it saw (perf_counter times)."""

    reading_s: float
    free: list[list[float]] = field(default_factory=list)  # [start, end] while available, idle
    held: list[float] | None = None  # [required version seen, ack sent]
    acked_at: float | None = None
    offers: dict[int, float] = field(default_factory=dict)  # call id -> offered at


async def console(
    ws: str, http: httpx.AsyncClient, token: str, seat: Console, plan: Plan, ready: asyncio.Event
) -> None:
    """Run one console until cancelled."""
    auth = {"Authorization": f"Bearer {token}"}

    async def display_then_ack(city: str, version: int, required: bool) -> None:
        await http.get(f"/api/v1/cities/{city}/scripts", headers=auth)
        if required:
            await asyncio.sleep(seat.reading_s)
        await socket.send(json.dumps({"type": "scripts.ack", "city": city, "version": version}))
        if required and seat.held is not None:
            seat.acked_at = time.perf_counter()
            seat.held.append(seat.acked_at)

    async def talk(call_id: int) -> None:
        await asyncio.sleep(plan.talk_s)
        done = {"type": "complete", "call_id": call_id, "disposition": "answered",
                "category_code": "0101"}  # fmt: skip
        await socket.send(json.dumps(done))

    pending: set[asyncio.Task[None]] = set()

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        pending.add(task)  # kept until done: a task only weakly referenced may be collected
        task.add_done_callback(pending.discard)

    async with websockets.connect(f"{ws}/ws/agent?token={token}", max_queue=None) as socket:
        async for raw in socket:
            frame = json.loads(raw)
            kind = frame["type"]
            now = time.perf_counter()
            if kind == "hello":
                await socket.send(json.dumps({"type": "status", "state": "available"}))
            elif kind == "state" and frame["state"] == "available":
                seat.free.append([now])
                ready.set()
            elif kind == "offer":
                if seat.free and len(seat.free[-1]) == 1:
                    seat.free[-1].append(now)
                seat.offers[frame["call"]["id"]] = now
                await socket.send(json.dumps({"type": "accept", "offer_id": frame["offer_id"]}))
            elif kind == "call.connected":
                spawn(talk(frame["call_id"]))
            elif kind == "scripts.updated":
                if frame["required"]:
                    seat.held = [now]
                spawn(display_then_ack(frame["city"], frame["version"], frame["required"]))


@dataclass(frozen=True, slots=True)
class Result:
    """What a run measured."""

    agents: int
    calls: int
    acks_s: list[float]
    delayed: int
    delayed_wait_s: float | None
    other_wait_s: float | None
    unoffered: int  # calls posted that no console was offered by the end (none may be lost)
    broken: bool = False


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def measure(seats: list[Console], posted: dict[int, float], published: float, end: float) -> Result:
    """The figures from what the consoles and the telephony side recorded."""
    offered = {call: at for seat in seats for call, at in seat.offers.items()}
    held_free: list[tuple[float, float]] = []
    for seat in seats:
        if seat.held is None:
            continue
        hold = (seat.held[0], seat.held[1] if len(seat.held) > 1 else end)
        for interval in seat.free:
            free = (interval[0], interval[1] if len(interval) > 1 else end)
            if _overlaps(hold, free):
                held_free.append((max(hold[0], free[0]), min(hold[1], free[1])))
    delayed_waits: list[float] = []
    other_waits: list[float] = []
    for call, at in posted.items():
        wait_until = offered.get(call, end)
        waits = (
            delayed_waits
            if any(_overlaps((at, wait_until), hf) for hf in held_free)
            else (other_waits)
        )
        waits.append(wait_until - at)
    acks = sorted(seat.acked_at - published for seat in seats if seat.acked_at is not None)
    return Result(
        agents=len(seats),
        calls=len(posted),
        acks_s=acks,
        delayed=len(delayed_waits),
        delayed_wait_s=statistics.median(delayed_waits) if delayed_waits else None,
        other_wait_s=statistics.median(other_waits) if other_waits else None,
        unoffered=sum(1 for call in posted if call not in offered),
        broken=len(acks) != len(seats) or any(call not in offered for call in posted),
    )


async def run(plan: Plan) -> Result:
    """Set up the service and the consoles, post calls, publish a required version, measure."""
    run_id = uuid.uuid4().hex[:8]
    secret = os.urandom(24).hex()
    prefix = f"surge-bench-{run_id}:"
    rng = random.Random(7)
    async with contextlib.AsyncExitStack() as stack:
        await ping_redis()
        stack.push_async_callback(drop_prefix, prefix)
        url = await create_database(f"surge_required_{run_id}")
        stack.push_async_callback(drop_database, f"surge_required_{run_id}")
        env = service_env({
            "SURGE_DATABASE_URL": url, "SURGE_REDIS_URL": REDIS_URL, "SURGE_REDIS_PREFIX": prefix,
            "SURGE_SECRET_KEY": secret, "SURGE_ENVIRONMENT": "production", "SURGE_WRAP_UP_S": "0",
        })  # fmt: skip
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="required-")))
        await run_cli(["migrate"], env=env, cwd=workdir)
        await run_cli(["seed"], env=env, cwd=workdir)
        service = Service(env={**env, "SURGE_INSTANCE_ID": "a"}, cwd=workdir)
        stack.push_async_callback(service.stop)
        await service.start()
        settings = Settings(
            database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, secret_key=secret,
            environment="production", _env_file=None,
        )  # fmt: skip
        accounts = await create_accounts(
            url, settings, agents=plan.agents, agent_city=CITY, run_id=run_id
        )
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=service.base_url, timeout=30)
        )
        admin = {"Authorization": f"Bearer {accounts.admin_token}"}
        cti = {"Authorization": f"Bearer {accounts.cti_token}"}
        (await http.post(f"/api/v1/cities/{CITY}/scripts", json={"entries": [ENTRY]},
                         headers=admin)).raise_for_status()  # fmt: skip
        seats = [Console(reading_s=rng.uniform(*plan.reading_s)) for _ in accounts.agent_tokens]
        tasks = []
        for seat, token in zip(seats, accounts.agent_tokens, strict=True):
            ready = asyncio.Event()
            tasks.append(
                asyncio.create_task(console(service.ws_url, http, token, seat, plan, ready))
            )
            await asyncio.wait_for(ready.wait(), 10)
        stack.callback(lambda: [task.cancel() for task in tasks])
        posted: dict[int, float] = {}

        async def post_calls(seconds: float) -> None:
            started = time.perf_counter()
            sent = 0
            while (elapsed := time.perf_counter() - started) < seconds:
                due = int(elapsed * plan.rate) + 1
                for _ in range(due - sent):
                    at = time.perf_counter()
                    response = await http.post(
                        "/api/v1/calls",
                        json={"city": CITY, "caller": "13812345678", "channel": "phone"},
                        headers=cti,
                    )
                    response.raise_for_status()
                    posted[response.json()["id"]] = at
                sent = due
                await asyncio.sleep(1 / plan.rate / 2)

        await post_calls(plan.before_s)
        published = time.perf_counter()
        required = {"entries": [ENTRY, {**ENTRY, "key": "new", "title": "新口径"}],
                    "required": True}  # fmt: skip
        (await http.post(f"/api/v1/cities/{CITY}/scripts", json=required,
                         headers=admin)).raise_for_status()  # fmt: skip
        await post_calls(plan.after_s)
        await asyncio.sleep(plan.talk_s + 1)  # the last calls are offered
        return measure(seats, posted, published, time.perf_counter())


def report(result: Result, plan: Plan) -> str:
    """The printed line."""
    acks = result.acks_s
    median = f"{statistics.median(acks):.2f}" if acks else "-"
    longest = f"{acks[-1]:.2f}" if acks else "-"

    def wait(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    return (
        f"required scripts: {result.agents} agents, {result.calls} calls at {plan.rate:g}/s, "
        f"reading {plan.reading_s[0]:g}-{plan.reading_s[1]:g} s: publish to ack median "
        f"{median} s, max {longest} s; offers delayed {result.delayed} of {result.calls} calls "
        f"(median wait {wait(result.delayed_wait_s)} vs {wait(result.other_wait_s)} for the "
        f"others); acks {len(acks)} of {result.agents}, calls never offered {result.unoffered}"
    )


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="10 agents, 6 s")
    args = parser.parse_args()
    plan = SHORT if args.short else FULL
    result = asyncio.run(run(plan))
    print(report(result, plan))
    raise SystemExit(1 if result.broken else 0)


if __name__ == "__main__":
    main()
