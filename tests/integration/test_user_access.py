"""A user disabled or deleted with `surge users` loses access at once: HTTP and open sockets."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import PASSWORD, Console, LiveService, run_service
from tests.integration.test_cli import surge

NANJING = "320100"
WITHIN_S = 3.0  # SURGE_USER_REFRESH_S is 1 s, plus a loaded machine's slack


async def refused_within(service: LiveService, name: str) -> float:
    """Seconds until the user's token is refused on HTTP (401); fails after `WITHIN_S`."""
    started = time.perf_counter()
    while time.perf_counter() - started < WITHIN_S:
        response = await service.http.get("/api/v1/cities", headers=service.auth(name))
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "unauthorized"
            return time.perf_counter() - started
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"the token of {name} still works after {WITHIN_S} s")


async def read_errors(socket: websockets.ClientConnection, codes: list[str]) -> None:
    """Collect the codes of error frames until the socket closes (or `WITHIN_S` passes)."""
    async with asyncio.timeout(WITHIN_S):
        while True:
            frame = await Console(socket).recv(WITHIN_S)
            if frame["type"] == "error":
                codes.append(frame["code"])


async def closed_with(socket: websockets.ClientConnection) -> tuple[str, int]:
    """Read until the server closes: the last error frame's code and the close code."""
    codes: list[str] = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await read_errors(socket, codes)
    assert closed.value.rcvd is not None
    return (codes or [""])[-1], closed.value.rcvd.code


async def log_in(service: LiveService, name: str) -> int:
    response = await service.http.post(
        "/api/v1/auth/token", json={"username": name, "password": PASSWORD}
    )
    if response.status_code == 200:
        service.tokens[name] = response.json()["access_token"]
    return response.status_code


async def test_a_disabled_user_loses_http_and_sockets_at_once(backend: Backend) -> None:
    async with run_service(backend.settings()) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        other = await service.add_user(Role.AGENT, NANJING)
        cti_url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
        async with (
            service.console(agent) as console,
            service.console(other) as bystander,
            websockets.connect(cti_url) as stream,
        ):
            await Console(stream).expect("hello")
            await console.available()
            for name in (agent, cti):
                code, output = await surge(backend, "users", "disable", name)
                assert (code, f"disabled {name!r}" in output) == (0, True), output
            assert await closed_with(console.socket) == ("unauthorized", 4401)
            assert await closed_with(stream) == ("unauthorized", 4401)
            assert await refused_within(service, cti) < WITHIN_S
            await bystander.available()  # everyone else carries on
        assert await log_in(service, agent) == 401
        agent_url = f"{service.ws_url}/ws/agent?token={service.tokens[agent]}"
        async with websockets.connect(agent_url) as socket:  # the old token opens no socket
            assert await closed_with(socket) == ("unauthorized", 4401)

        old_token = service.tokens[cti]
        code, output = await surge(backend, "users", "enable", cti)
        assert (code, f"enabled {cti!r}" in output) == (0, True), output
        assert await log_in(service, cti) == 200
        assert (await service.http.get("/api/v1/cities", headers=service.auth(cti))).is_success
        stale = await service.http.get(
            "/api/v1/cities", headers={"Authorization": f"Bearer {old_token}"}
        )
        assert stale.status_code == 401  # enabling again does not revive the old tokens


async def test_a_deleted_user_is_gone_and_history_is_kept(backend: Backend) -> None:
    async with run_service(backend.settings()) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI, NANJING)
        agent = await service.add_user(Role.AGENT, NANJING)
        await service.answer_call(cti, agent, NANJING)
        code, output = await surge(backend, "users", "delete", coordinator)
        assert (code, f"deleted {coordinator!r}" in output) == (0, True), output
        assert await refused_within(service, coordinator) < WITHIN_S
        assert await log_in(service, coordinator) == 401

        code, output = await surge(backend, "users", "delete", agent)
        assert code == 1
        assert "disable it instead" in output  # the history of the calls it took names it
        assert await log_in(service, agent) == 200
        code, output = await surge(backend, "users", "delete", "nobody")
        assert (code, "no user named 'nobody'" in output) == (1, True), output


async def test_every_instance_refuses_a_disabled_user(shared_backend: Backend) -> None:
    async with (
        run_service(shared_backend.settings(instance_id="a")) as a,
        run_service(shared_backend.settings(instance_id="b")) as b,
    ):
        agent = await a.add_user(Role.AGENT, NANJING)
        b.tokens[agent] = a.tokens[agent]
        assert (await b.http.get("/api/v1/cities", headers=b.auth(agent))).is_success
        async with b.console(agent) as console:
            code, output = await surge(shared_backend, "users", "disable", agent)
            assert code == 0, output
            assert await closed_with(console.socket) == ("unauthorized", 4401)
        assert await refused_within(a, agent) < WITHIN_S
        assert await refused_within(b, agent) < WITHIN_S


async def test_the_cli_resets_a_password_and_its_changes_are_audited(backend: Backend) -> None:
    async with run_service(backend.settings()) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        agent = await service.add_user(Role.AGENT, NANJING)
        async with service.console(agent) as console:
            code, output = await surge(
                backend, "users", "password", agent, stdin="new-password-1\n"
            )
            assert (code, f"reset the password of {agent!r}" in output) == (0, True), output
            assert await closed_with(console.socket) == ("unauthorized", 4401)
        assert await log_in(service, agent) == 401  # the old password
        renewed = await service.http.post(
            "/api/v1/auth/token", json={"username": agent, "password": "new-password-1"}
        )
        assert renewed.status_code == 200
        code, output = await surge(backend, "users", "password", agent, stdin="short\n")
        assert (code, "8 characters" in output) == (1, True), output
        await surge(backend, "users", "disable", agent)
        log = (
            await service.http.get(
                "/api/v1/audit", params={"actor": "cli"}, headers=service.auth(coordinator)
            )
        ).json()
        assert [(e["action"], e["detail"]["username"]) for e in log[:2]] == [
            ("user.disabled", agent),
            ("user.password_reset", agent),
        ]
        assert "new-password-1" not in str(log)


async def test_a_disable_over_http_reaches_the_other_instances(shared_backend: Backend) -> None:
    async with (
        run_service(shared_backend.settings(instance_id="a")) as a,
        run_service(shared_backend.settings(instance_id="b")) as b,
    ):
        coordinator = await a.add_user(Role.COORDINATOR)
        agent = await a.add_user(Role.AGENT, NANJING)
        b.tokens[agent] = a.tokens[agent]
        listed = (await a.http.get("/api/v1/users", headers=a.auth(coordinator))).json()
        agent_id = next(user["id"] for user in listed if user["username"] == agent)
        async with b.console(agent) as console:
            changed = await a.http.patch(
                f"/api/v1/users/{agent_id}", json={"disabled": True}, headers=a.auth(coordinator)
            )
            assert changed.status_code == 200, changed.text
            assert await closed_with(console.socket) == ("unauthorized", 4401)
        assert await refused_within(b, agent) < WITHIN_S
