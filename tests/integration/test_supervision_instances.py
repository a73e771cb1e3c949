"""Supervision across two service instances: a logout on one closes a console on the other, and
a notice posted to one reaches consoles on both."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from surge.auth.models import Role
from tests.conftest import Backend
from tests.integration.conftest import NGINX_IN_FAULTS, two_instances

NANJING = "320100"


@NGINX_IN_FAULTS
async def test_a_logout_and_a_notice_reach_consoles_on_another_instance(
    shared: Backend, tmp_path: Path, via: str
) -> None:
    log = tmp_path / "serve.log"
    async with two_instances(shared, log_path=log, via=via) as (a, b):
        admin = await a.add_user(Role.CITY_ADMIN, NANJING)
        here = await a.add_user(Role.AGENT, NANJING)
        there = await b.add_user(Role.AGENT, NANJING)
        async with a.console(here) as near, b.console(there) as far:
            posted = await a.http.post(
                f"/api/v1/cities/{NANJING}/notices", json={"text": "两台都收到"},
                headers=a.auth(admin),
            )  # fmt: skip
            assert posted.status_code == 201, posted.text
            for console in (near, far):
                assert (await console.expect("notice"))["id"] == posted.json()["id"]
            listed = await a.http.get("/api/v1/agents", headers=a.auth(admin))
            instances = {row["name"]: row["instance"] for row in listed.json()}
            assert (instances[here], instances[there]) == ("a", "b")
            agent_id = far.hello["agent_id"]
            out = await a.http.post(f"/api/v1/agents/{agent_id}/logout", headers=a.auth(admin))
            assert out.status_code == 200, out.text
            with pytest.raises(ConnectionClosed):
                await far.drain()
            assert far.socket.close_code == 4408
            await near.silent()
        listed = await b.http.get("/api/v1/agents", headers=a.auth(admin))
        assert {row["name"]: row["state"] for row in listed.json()}[there] == "offline"
