"""`surge serve`'s log as an operator reads it: JSON lines with request ids and the routing ids,
and never a caller's number, a token, a password or its hash."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import PASSWORD, seed
from tests.integration.conftest import surge_process

NANJING = "320100"
CALLER = "13912345678"


def named(lines: list[dict[str, Any]], message: str, **fields: Any) -> dict[str, Any]:
    """The one line logged as `message` with these fields."""
    found = [
        line
        for line in lines
        if line["message"] == message and all(line.get(k) == v for k, v in fields.items())
    ]
    assert len(found) == 1, (message, fields, found)
    return found[0]


async def test_json_log_lines_carry_ids_and_no_numbers_or_secrets(
    backend: Backend, tmp_path: Path
) -> None:
    await seed(backend.settings())
    log_path = tmp_path / "serve.log"
    async with surge_process(
        backend, instance="logged", log_path=log_path, log_level="info", SURGE_LOG_FORMAT="json"
    ) as (service, _):
        cti = await service.add_user(Role.CTI, NANJING)
        agent = await service.add_user(Role.AGENT, NANJING)
        async with service.console(agent) as console:
            await console.available()
            response = await service.http.post(
                "/api/v1/calls",
                json={"city": NANJING, "caller": CALLER, "channel": "phone"},
                headers={**service.auth(cti), "X-Request-ID": "cti-7f3a.0001"},
            )
            assert response.status_code == 201
            assert response.headers["x-request-id"] == "cti-7f3a.0001"  # echoed
            call_id = response.json()["id"]
            offer = await console.expect("offer")
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("call.connected")
        # An id too long (or with spaces) is not taken: the service makes one.
        made = await service.http.get("/healthz", headers={"X-Request-ID": "x" * 200})
        assert len(made.headers["x-request-id"]) == 16
        await asyncio.sleep(0.2)  # the lines of the console's goodbye

    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all of them JSON
    posted = named(lines, "call.posted", call_id=call_id)
    assert posted["request_id"] == "cti-7f3a.0001"
    assert posted["city"] == NANJING
    request = named(lines, "http.request", path="/api/v1/calls", request_id="cti-7f3a.0001")
    assert request["status"] == 201
    assert request["method"] == "POST"
    named(lines, "http.request", path="/healthz", request_id=made.headers["x-request-id"])
    offered = named(lines, "call.offered", call_id=call_id)
    accepted = named(lines, "call.accepted", call_id=call_id)
    for line in (offered, accepted):
        assert line["offer_id"] == offer["offer_id"]
        assert line["agent_id"] == console.hello["agent_id"]
    named(lines, "agent.connected", agent_id=console.hello["agent_id"])
    named(lines, "agent.disconnected", agent_id=console.hello["agent_id"])
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    # uvicorn's own lines come without its terminal copy of the message (colour escapes).
    named(lines, "Application startup complete.")
    assert [line for line in lines if "color_message" in line] == []
    assert "\\u001b" not in text
    # The websocket's URL carried the token: logged, it is redacted.
    assert "token=<redacted>" in text
    for secret in (CALLER, PASSWORD, "$argon2", *service.tokens.values()):
        assert secret not in text
