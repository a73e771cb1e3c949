"""Script publish benchmark: a publish reaches 2,000 agents spread over two service instances.

Run: `python -m loadtests.publish` (part of `make bench`; `--short` for a quick check).

Two `surge serve` processes share one Postgres database and one Redis prefix. Half the agents
connect to each. The city admin publishes a new version through instance A, again and again;
for each publish the figure is the time from sending the POST to the *last* agent receiving its
`scripts.updated` (target: p99 over the publishes under 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

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


async def listen(url: str, inbox: asyncio.Queue[tuple[int, float]], ready: asyncio.Event) -> None:
    """One agent console: report (version, arrival time) of every scripts.updated."""
    async with websockets.connect(url, max_queue=None) as socket:
        await socket.recv()  # hello
        ready.set()
        async for raw in socket:
            frame = json.loads(raw)
            if frame.get("type") == "scripts.updated":
                inbox.put_nowait((frame["version"], time.perf_counter()))


async def run(*, agents: int, publishes: int) -> list[float]:
    """Set up two instances and the agents, publish `publishes` times; the last-agent times."""
    run_id = uuid.uuid4().hex[:8]
    secret = os.urandom(24).hex()
    prefix = f"surge-bench-{run_id}:"
    async with contextlib.AsyncExitStack() as stack:
        await ping_redis()
        stack.push_async_callback(drop_prefix, prefix)
        url = await create_database(f"surge_publish_{run_id}")
        stack.push_async_callback(drop_database, f"surge_publish_{run_id}")
        env = service_env({
            "SURGE_DATABASE_URL": url, "SURGE_REDIS_URL": REDIS_URL, "SURGE_REDIS_PREFIX": prefix,
            "SURGE_SECRET_KEY": secret, "SURGE_ENVIRONMENT": "production",
        })  # fmt: skip
        services: list[Service] = []
        for name in ("a", "b"):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"pub-{name}-")))
            if not services:
                await run_cli(["migrate"], env=env, cwd=workdir)
                await run_cli(["seed"], env=env, cwd=workdir)
            service = Service(env={**env, "SURGE_INSTANCE_ID": name}, cwd=workdir)
            stack.push_async_callback(service.stop)
            await service.start()
            services.append(service)
        settings = Settings(
            database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, secret_key=secret,
            environment="production", _env_file=None,
        )  # fmt: skip
        accounts = await create_accounts(
            url, settings, agents=agents, agent_city=CITY, run_id=run_id
        )
        admin = accounts.admin_token
        inboxes: list[asyncio.Queue[tuple[int, float]]] = []
        tasks = []
        for i, token in enumerate(accounts.agent_tokens):
            inbox: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
            ready = asyncio.Event()
            ws = services[i % 2].ws_url
            tasks.append(asyncio.create_task(listen(f"{ws}/ws/agent?token={token}", inbox, ready)))
            inboxes.append(inbox)
            await asyncio.wait_for(ready.wait(), 10)
        stack.callback(lambda: [task.cancel() for task in tasks])
        entry = {"key": "testing", "title": "核酸检测点", "question": "在哪里做核酸？",
                 "answer": "见官方公告。", "category_code": "0101", "tags": []}  # fmt: skip
        last_arrivals: list[float] = []
        async with httpx.AsyncClient(base_url=services[0].base_url, timeout=30) as http:
            for version in range(1, publishes + 1):
                sent = time.perf_counter()
                response = await http.post(
                    f"/api/v1/cities/{CITY}/scripts",
                    json={"entries": [{**entry, "answer": f"第{version}版答复。"}]},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                response.raise_for_status()
                arrivals = [await asyncio.wait_for(inbox.get(), 30) for inbox in inboxes]
                assert all(v == version for v, _ in arrivals), "an agent got another version"
                last_arrivals.append(max(t for _, t in arrivals) - sent)
                await asyncio.sleep(0.2)
        return last_arrivals


def main() -> None:
    """Run and print the figure against its target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="100 agents, 3 publishes")
    args = parser.parse_args()
    agents, publishes = (100, 3) if args.short else (2000, 20)
    last = sorted(asyncio.run(run(agents=agents, publishes=publishes)))
    p99 = last[max(0, int(len(last) * 0.99) - 1)]
    target = "" if args.short else f" (target < 1000 ms) {'PASS' if p99 < 1.0 else 'MISS'}"
    print(
        f"script publish to {agents} agents on two instances, {publishes} publishes: last agent "
        f"median {statistics.median(last) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {last[-1] * 1000:.0f} ms{target}"
    )


if __name__ == "__main__":
    main()
