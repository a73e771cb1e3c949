"""deploy/nginx/surge.conf, as shipped, in front of two instances: HTTP and both websockets pass,
the load is spread, and the client's address is the proxy's word alone.

The two-instance tests (test_instances.py, test_supervision_instances.py) run through it too.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import websockets
from websockets.typing import Origin

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import PASSWORD, Console, LiveService
from tests.integration.conftest import PROXY_ADDRESS, nginx_in_front, surge_process

NANJING = "320100"


async def test_calls_and_consoles_pass_through_nginx_to_both_instances(
    shared: Backend, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    async with (
        surge_process(shared, instance="a", log_path=log) as (a, _),
        surge_process(shared, instance="b", log_path=log) as (b, _),
        nginx_in_front([a, b], tmp_path) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        front = LiveService(settings=a.settings, base_url=url, http=http)
        cti = await front.add_user(Role.CTI, NANJING)
        agents = [await front.add_user(Role.AGENT, NANJING) for _ in range(4)]
        # A browser's console sends its page's origin, which the service checks against the
        # Host it is asked for: the proxy passes the Host on, port and all.
        page = f"{front.ws_url}/ws/agent?token={front.tokens[agents[0]]}"
        async with websockets.connect(page, origin=Origin(url)) as socket:
            await Console(socket).expect("hello")
        async with AsyncExitStack() as stack:
            telephony = Console(
                await stack.enter_async_context(
                    websockets.connect(f"{front.ws_url}/ws/cti?token={front.tokens[cti]}")
                )
            )
            await telephony.expect("hello")
            consoles = [await stack.enter_async_context(front.console(name)) for name in agents]
            for console in consoles:
                await console.available()
            calls = [await front.post_call(cti, NANJING, external_id=f"lb-{n}") for n in range(4)]
            offers = await asyncio.gather(*(console.expect("offer") for console in consoles))
            assert sorted(offer["call"]["id"] for offer in offers) == sorted(
                call["id"] for call in calls
            )
            for console, offer in zip(consoles, offers, strict=True):
                await console.send(type="accept", offer_id=offer["offer_id"])
                assert (await console.expect("call.connected"))["call_id"] == offer["call"]["id"]
            connected: set[int] = set()
            while len(connected) < len(calls):  # the telephony hears of each, wherever it is
                frame = await telephony.recv(5.0)
                if frame["type"] == "call.connected":
                    connected.add(frame["call_id"])
            assert connected == {call["id"] for call in calls}

    lines = (tmp_path / "nginx" / "access.log").read_text().splitlines()
    sockets = {line.split()[1] for line in lines if "/ws/agent" in line}
    instances = {service.base_url.removeprefix("http://") for service in (a, b)}
    assert sockets == instances  # least_conn spread the long-lived consoles over both
    assert all(line.split()[2] in {"101", "200", "201"} for line in lines), lines


async def test_the_client_address_is_believed_from_the_proxy_alone(
    shared: Backend, tmp_path: Path
) -> None:
    """The login throttle counts failures per client address: nginx names the client, a client
    naming itself in X-Forwarded-For is ignored, through the proxy and around it."""
    log = tmp_path / "serve.log"
    env = {"FORWARDED_ALLOW_IPS": PROXY_ADDRESS, "SURGE_LOGIN_MAX_FAILURES": "2"}
    async with (
        surge_process(shared, instance="a", log_path=log, **env) as (a, _),
        surge_process(shared, instance="b", log_path=log, **env) as (b, _),
        nginx_in_front([a, b], tmp_path) as url,
    ):
        name = await a.add_user(Role.COORDINATOR)
        wrong = {"username": name, "password": PASSWORD + "-not"}

        def client(base_url: str, address: str) -> httpx.AsyncClient:
            transport = httpx.AsyncHTTPTransport(local_address=address)
            return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10)

        async def attempts(http: httpx.AsyncClient, spoofed: list[str]) -> list[int]:
            answers = []
            for forwarded in spoofed:
                headers = {"X-Forwarded-For": forwarded} if forwarded else {}
                response = await http.post("/api/v1/auth/token", json=wrong, headers=headers)
                answers.append(response.status_code)
            return answers

        async with client(url, "127.0.0.5") as first, client(url, "127.0.0.6") as second:
            # Two failures are allowed; the third from the same address is refused, whatever
            # address the client claims to be forwarding for.
            assert await attempts(first, ["", "198.51.100.7", "198.51.100.8"]) == [401, 401, 429]
            # Another client behind the same proxy is another address.
            assert await attempts(second, [""]) == [401]
        async with client(a.base_url, "127.0.0.1") as around:  # not the proxy: not believed
            assert await attempts(around, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [
                401,
                401,
                429,
            ]
        good = await a.http.post(
            "/api/v1/auth/token", json={"username": name, "password": PASSWORD}
        )
        assert good.status_code == 429  # 127.0.0.1 is locked out for this name, as it should be
