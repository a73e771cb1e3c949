"""Knowledge gaps across instances: the host's admin hears a gap raised on another instance, and
the agent hears the publish that answers it, wherever each is connected."""

from __future__ import annotations

from pathlib import Path

import websockets

from surge.auth.models import Role
from tests.api.test_gaps import take_call
from tests.api.test_scripts import entry
from tests.conftest import Backend
from tests.helpers import Console, seed
from tests.integration.conftest import surge_process

NANJING = "320100"


async def test_gap_frames_reach_admins_and_agents_on_other_instances(
    shared_backend: Backend, tmp_path: Path
) -> None:
    await seed(shared_backend.settings())
    log = tmp_path / "serve.log"
    async with (
        surge_process(shared_backend, instance="a", log_path=log) as (a, _),
        surge_process(shared_backend, instance="b", log_path=log) as (b, _),
    ):
        admin = await a.add_user(Role.CITY_ADMIN, NANJING)
        cti = await b.add_user(Role.CTI)
        agent = await b.add_user(Role.AGENT, NANJING)
        url = f"{a.ws_url}/ws/admin?token={a.tokens[admin]}"
        async with websockets.connect(url) as socket, b.console(agent) as console:
            stream = Console(socket)
            await stream.expect("hello")
            await console.available()
            call_id = await take_call(b, console, cti, NANJING)
            await console.send(type="gap", call_id=call_id, question="封控区的快递还送吗？")
            await console.expect("gap.recorded")
            group = (await stream.expect("gap.raised"))["group"]
            assert (group["count"], group["cities"]) == (1, [NANJING])
            published = await a.http.post(
                f"/api/v1/cities/{NANJING}/scripts",
                json={"entries": [entry("delivery")], "answers_gaps": [group["id"]]},
                headers=a.auth(admin),
            )
            assert published.status_code == 201, published.text
            assert (await console.expect("scripts.updated"))["version"] == 1
            answered = await console.expect("gap.answered")
            assert (answered["version"], answered["question"]) == (1, "封控区的快递还送吗？")
