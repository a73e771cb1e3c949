"""Abuse from outside: login throttling per name and address, binary frames, foreign origins."""

from __future__ import annotations

import pytest
import websockets

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import PASSWORD, Console, LiveService, run_service

NANJING = "320100"
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"


async def login(service: LiveService, name: str, password: str, address: str) -> int:
    """Try a login from `address` (the test server trusts X-Forwarded-For from loopback)."""
    response = await service.http.post(
        "/api/v1/auth/token",
        json={"username": name, "password": password},
        headers={"X-Forwarded-For": address},
    )
    assert response.status_code in (200, 401, 429), response.text
    if response.status_code == 429:
        error_of(response, 429, "too_many_attempts")
    return response.status_code


async def test_wrong_passwords_lock_the_name_only_from_that_address(service: LiveService) -> None:
    owner = await service.add_user(Role.COORDINATOR)
    limit = service.settings.login_max_failures
    assert [await login(service, owner, "wrong-password", ATTACKER) for _ in range(limit)] == [
        401
    ] * limit
    assert await login(service, owner, PASSWORD, ATTACKER) == 429  # the pair is locked
    assert await login(service, owner, PASSWORD, OWNER) == 200  # its owner is not


async def test_a_spray_from_one_address_is_refused_and_others_log_in(backend: Backend) -> None:
    async with run_service(backend.settings(login_max_failures_per_address=10)) as service:
        owner = await service.add_user(Role.COORDINATOR)
        names = [f"user-{i}" for i in range(40)]
        answers = [await login(service, name, "guess-1", ATTACKER) for name in names]
        assert answers == [401] * 10 + [429] * 30
        assert await login(service, owner, PASSWORD, ATTACKER) == 429  # that address has failed
        assert await login(service, owner, PASSWORD, OWNER) == 200
        # Good logins from a shared address (a call centre's NAT) use none of its allowance.
        nat = "192.0.2.1"
        assert [await login(service, owner, PASSWORD, nat) for _ in range(3)] == [200] * 3
        assert [await login(service, name, "guess", nat) for name in names[:11]] == [401] * 10 + [
            429
        ]


async def test_a_binary_frame_gets_an_error_and_the_socket_stays_open(
    service: LiveService,
) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        await console.socket.send(b'{"type":"status","state":"available"}')
        error = await console.expect("error")
        assert error["code"] == "text_frames_only"
        await console.available()  # still open, still working
    async with websockets.connect(f"{service.ws_url}/ws/cti?token={service.tokens[cti]}") as ws:
        stream = Console(ws)
        await stream.expect("hello")
        await ws.send(b"\x00\x01")
        assert (await stream.expect("error"))["code"] == "text_frames_only"
        await ws.send("hello?")
        assert (await stream.expect("error"))["code"] == "read_only"


async def refused(url: str, origin: str) -> tuple[str, int]:
    """Connect with a browser's `Origin`; return the error frame's code and the close code."""
    async with websockets.connect(url, origin=websockets.Origin(origin)) as socket:
        frame = await Console(socket).expect("error")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    return frame["code"], closed.value.rcvd.code


async def test_sockets_refuse_foreign_origins(backend: Backend) -> None:
    settings = backend.settings(allowed_origins=["https://console.12345.example"])
    async with run_service(settings) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        agent_url = f"{service.ws_url}/ws/agent?token={service.tokens[agent]}"
        cti_url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
        for url in (agent_url, cti_url):
            for origin in (
                "https://evil.example",
                "null",
                service.base_url.replace("http", "https"),
            ):
                assert await refused(url, origin) == ("forbidden", 4403), origin
        own = service.base_url  # the consoles are served from here
        for origin in (own, "https://console.12345.example"):
            async with websockets.connect(agent_url, origin=websockets.Origin(origin)) as socket:
                await Console(socket).expect("hello")
        async with websockets.connect(cti_url) as socket:  # telephony sends no Origin
            await Console(socket).expect("hello")
