"""Several service processes on one Postgres + Redis act as one; restarts lose no call."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import websockets

from surge.auth.models import Role
from surge.surges.roster import SURGES_TTL_S
from tests.conftest import REDIS_URL, Backend, make_backend
from tests.helpers import Console, LiveService, seed
from tests.integration.conftest import NGINX_IN_FAULTS, surge_process, two_instances

NANJING = "320100"
XUZHOU = "320300"


@pytest.mark.parametrize(
    ("via", "shared_backend"),
    [("direct", "postgres"), ("nginx", "postgres"), ("direct", "cluster")],
    indirect=["shared_backend"],
)
async def test_a_call_posted_to_one_instance_reaches_an_agent_on_the_other(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        cti = await a.add_user(Role.CTI, NANJING)
        agent = await b.add_user(Role.AGENT, NANJING)
        url = f"{a.ws_url}/ws/cti?token={a.tokens[cti]}"
        async with websockets.connect(url) as stream, b.console(agent) as console:
            telephony = Console(stream)
            await telephony.expect("hello")
            await console.available()
            call = await a.post_call(cti, NANJING, external_id="cross-1")
            offer = await console.expect("offer")
            assert offer["call"]["id"] == call["id"]
            assert (await telephony.expect("call.offered"))["call_id"] == call["id"]
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("call.connected")
            connected = await telephony.expect("call.connected")
            assert connected["agent"] == agent
            # The same external id posted to the other instance is the same call.
            again = await b.http.post(
                "/api/v1/calls",
                json={
                    "city": NANJING,
                    "caller": "13812345678",
                    "channel": "phone",
                    "external_id": "cross-1",
                },
                headers={"Authorization": f"Bearer {a.tokens[cti]}"},
            )
            assert again.status_code == 200
            assert again.json()["id"] == call["id"]


@NGINX_IN_FAULTS
async def test_two_instances_never_offer_a_call_twice(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        cti = await a.add_user(Role.CTI)
        b.tokens.update(a.tokens)
        agents = [await (a if i % 2 else b).add_user(Role.AGENT, NANJING) for i in range(6)]
        offered: dict[int, str] = {}

        async def work(name: str, service_tokens: dict[str, str], ws_url: str) -> None:
            url = f"{ws_url}/ws/agent?token={service_tokens[name]}"
            async with websockets.connect(url) as socket:
                console = Console(socket)
                await console.expect("hello")
                await console.available()
                while True:
                    try:
                        frame = await console.recv(within=3)
                    except TimeoutError:
                        return
                    if frame["type"] != "offer":
                        continue
                    call_id = frame["call"]["id"]
                    assert call_id not in offered, f"call {call_id} offered twice"
                    offered[call_id] = name
                    await console.send(type="accept", offer_id=frame["offer_id"])
                    await console.expect("call.connected")
                    await console.send(type="complete", call_id=call_id, disposition="answered")

        workers = [
            asyncio.create_task(work(name, (a if i % 2 else b).tokens, (a if i % 2 else b).ws_url))
            for i, name in enumerate(agents)
        ]
        await asyncio.sleep(0.5)
        posted = await asyncio.gather(
            *((a if i % 2 else b).post_call(cti, NANJING) for i in range(60))
        )
        await asyncio.gather(*workers)
        assert sorted(offered) == sorted(call["id"] for call in posted)
        assert len(set(offered.values())) > 1  # both instances' agents took calls


@pytest.mark.parametrize(
    ("kind", "flush_redis"),
    [("embedded", False), ("postgres", False), ("postgres", True)],
    ids=["embedded", "postgres", "postgres-redis-flushed"],
)
async def test_restart_loses_no_call_and_keeps_the_order(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, flush_redis: bool
) -> None:
    async with make_backend(kind, request, tmp_path) as backend:
        await _restart_and_drain(backend, tmp_path, flush_redis=flush_redis)


async def _restart_and_drain(backend: Backend, tmp_path: Path, *, flush_redis: bool) -> None:
    """Kill a service holding an offer and queued calls; a new one serves them all, in order."""
    await seed(backend.settings())
    log = tmp_path / "serve.log"
    env = {"SURGE_OFFER_TIMEOUT_S": "2"}
    async with surge_process(backend, instance="first", log_path=log, **env) as (service, process):
        cti = await service.add_user(Role.CTI, NANJING)
        holder = await service.add_user(Role.AGENT, NANJING)
        async with service.console(holder) as console:
            await console.available()
            held = await service.post_call(cti, NANJING)
            await console.expect("offer")
            waiting = [await service.post_call(cti, NANJING) for _ in range(3)]
            urgent = await service.post_call(cti, NANJING, priority=3)
            process.send_signal(signal.SIGKILL)  # no goodbye: the hot state is left as it was
            await process.wait()
    if flush_redis:
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{backend.redis_prefix}*")]
        await client.unlink(*keys)
        await client.aclose()
    async with surge_process(backend, instance="second", log_path=log, **env) as (service, _):
        service.tokens.update({cti: "", holder: ""})
        for name in (cti, holder):
            response = await service.http.post(
                "/api/v1/auth/token", json={"username": name, "password": "correct-horse-battery"}
            )
            service.tokens[name] = response.json()["access_token"]
        cities = (await service.http.get("/api/v1/cities", headers=service.auth(cti))).json()
        nanjing = next(c for c in cities if c["code"] == NANJING)
        assert nanjing["waiting"] + nanjing["agents_busy"] >= 4
        async with service.console(holder) as console:
            if console.hello["state"] != "offered":  # else the held offer is shown again
                await console.available()
            order: list[int] = []
            while len(order) < 5:
                frame = await console.recv(within=8)
                if frame["type"] == "state" and frame["state"] == "break":
                    await console.available()  # it missed the offer held before the crash
                if frame["type"] != "offer":
                    continue
                await console.send(type="accept", offer_id=frame["offer_id"])
                answer = await console.recv()
                if answer["type"] == "error" and answer["code"] == "offer_unavailable":
                    # The offer held before the crash, shown again as the console came back,
                    # expired before the accept reached the service: its call comes again.
                    continue
                assert answer["type"] == "call.connected", answer
                order.append(frame["call"]["id"])
                await console.send(type="complete", call_id=order[-1], disposition="answered")
    expected = {held["id"], urgent["id"], *(call["id"] for call in waiting)}
    assert set(order) == expected
    # The urgent call comes first; the others in arrival order, the held one where it was.
    ordinary = [call_id for call_id in order if call_id != urgent["id"]]
    assert order[0] in (urgent["id"], held["id"])
    assert ordinary == sorted(ordinary)


async def test_a_publish_reaches_agents_on_every_instance(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        admin = await a.add_user(Role.CITY_ADMIN, NANJING)
        coordinator = await a.add_user(Role.COORDINATOR)
        local = await b.add_user(Role.AGENT, NANJING)
        helper = await b.add_user(Role.AGENT, "320300")
        await a.http.post(
            "/api/v1/surges",
            json={"host_city": NANJING, "waves": [{"cities": ["320300"], "seats_per_city": 1}]},
            headers=a.auth(coordinator),
        )
        async with b.console(local) as mine, b.console(helper) as theirs:
            await theirs.expect("surge.joined")
            entry = {"key": "testing", "title": "核酸检测点", "question": "在哪里做核酸？",
                     "answer": "见官方公告。", "category_code": "0101", "tags": []}  # fmt: skip
            published = await a.http.post(
                f"/api/v1/cities/{NANJING}/scripts", json={"entries": [entry]},
                headers=a.auth(admin),
            )  # fmt: skip
            assert published.status_code == 201
            for console in (mine, theirs):
                update = await console.expect("scripts.updated")
                assert (update["city"], update["version"]) == (NANJING, 1)
                assert update["changes"]["added"] == ["testing"]


@NGINX_IN_FAULTS
async def test_a_surge_started_on_one_instance_is_served_on_the_other_within_the_ttl(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        coordinator = await a.add_user(Role.COORDINATOR)
        helper = await b.add_user(Role.AGENT, XUZHOU)
        scripts = f"/api/v1/cities/{NANJING}/scripts"
        assert (await b.http.get(scripts, headers=b.auth(helper))).status_code == 403
        started = await a.http.post(
            "/api/v1/surges",
            json={"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}]},
            headers=a.auth(coordinator),
        )
        assert started.status_code == 201, started.text
        deadline = asyncio.get_running_loop().time() + SURGES_TTL_S + 1.0
        while (await b.http.get(scripts, headers=b.auth(helper))).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "b never let the helper read"
            await asyncio.sleep(0.05)
        async with b.console(helper) as console:
            joined = await console.expect("surge.joined")
            assert (joined["surge_id"], joined["host_city"]) == (started.json()["id"], NANJING)


@NGINX_IN_FAULTS
async def test_two_instances_never_put_a_helper_over_its_quota(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    quota, calls = 2, 12
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        coordinator = await a.add_user(Role.COORDINATOR)
        cti = await a.add_user(Role.CTI)
        helpers = [await a.add_user(Role.AGENT, XUZHOU) for _ in range(6)]
        b.tokens.update(a.tokens)
        started = await a.http.post(
            "/api/v1/surges",
            json={"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": quota}]},
            headers=a.auth(coordinator),
        )
        assert started.status_code == 201, started.text
        posted = [await a.post_call(cti, NANJING) for _ in range(calls)]
        everyone_connected = asyncio.Event()
        connected: list[str] = []
        holding: set[str] = set()  # helpers between receiving an offer and completing its call
        peak = 0
        answered: list[int] = []

        async def work(name: str, service: LiveService) -> None:
            nonlocal peak
            async with service.console(name) as console:
                connected.append(name)
                if len(connected) == len(helpers):
                    everyone_connected.set()
                await everyone_connected.wait()
                await console.send(type="status", state="available")  # all at once
                while True:
                    try:
                        frame = await console.recv(within=3)
                    except TimeoutError:
                        return
                    if frame["type"] != "offer":
                        continue
                    holding.add(name)
                    peak = max(peak, len(holding))
                    await console.send(type="accept", offer_id=frame["offer_id"])
                    while (await console.recv())["type"] != "call.connected":
                        pass
                    await asyncio.sleep(0.3)  # on the phone
                    holding.discard(name)
                    answered.append(frame["call"]["id"])
                    await console.send(
                        type="complete", call_id=frame["call"]["id"], disposition="answered"
                    )

        await asyncio.gather(*(work(name, (a, b)[i % 2]) for i, name in enumerate(helpers)))
        assert peak <= quota
        assert sorted(answered) == [call["id"] for call in posted]


@NGINX_IN_FAULTS
async def test_ending_a_surge_on_one_instance_revokes_offers_held_on_the_other(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        coordinator = await a.add_user(Role.COORDINATOR)
        cti = await a.add_user(Role.CTI)
        helper = await b.add_user(Role.AGENT, XUZHOU)
        started = await a.http.post(
            "/api/v1/surges",
            json={"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}]},
            headers=a.auth(coordinator),
        )
        surge_id = started.json()["id"]
        async with b.console(helper) as console:
            await console.send(type="status", state="available")
            while (await console.recv())["type"] != "state":
                pass  # surge.joined, if b had already heard of the surge when it connected
            call = await a.post_call(cti, NANJING)
            while (offer := await console.recv())["type"] != "offer":
                pass
            ended = await a.http.post(f"/api/v1/surges/{surge_id}/end", headers=a.auth(coordinator))
            assert ended.json()["status"] == "draining"
            while (frame := await console.recv(within=1))["type"] != "offer.revoked":
                assert frame["type"] in ("state", "surge.joined", "surge.left"), frame
            assert (frame["offer_id"], frame["reason"]) == (offer["offer_id"], "surge_ended")
            await console.send(type="accept", offer_id=offer["offer_id"])
            while (frame := await console.recv())["type"] != "error":
                assert frame["type"] in ("state", "surge.left"), frame
            assert frame["code"] == "offer_unavailable"
        for _ in range(50):
            surge = (
                await b.http.get(f"/api/v1/surges/{surge_id}", headers=a.auth(coordinator))
            ).json()
            if surge["status"] == "ended":
                break
            await asyncio.sleep(0.1)
        assert surge["status"] == "ended"
        queued = (await b.http.get(f"/api/v1/calls/{call['id']}", headers=a.auth(cti))).json()
        assert queued["status"] == "queued"
