"""Bad input through the public interfaces: each gets the contract's error, never a 500."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
import websockets

from surge.auth.models import Role
from tests.helpers import PASSWORD, Console, LiveService

NANJING = "320100"
SUZHOU = "320500"


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the contract's error shape and return the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


BAD_CALL_BODIES: list[tuple[Any, str]] = [
    ({"city": "999999", "caller": "13812345678", "channel": "phone"}, "unknown_city"),
    ({"city": "Nanjing", "caller": "13812345678", "channel": "phone"}, "invalid_request"),
    ({"city": NANJING, "caller": "13812345678", "channel": "fax"}, "invalid_request"),
    ({"city": NANJING, "caller": "", "channel": "phone"}, "invalid_request"),
    ({"city": NANJING, "caller": "<script>", "channel": "phone"}, "invalid_request"),
    ({"city": NANJING, "caller": "1" * 40, "channel": "phone"}, "invalid_request"),
    ({"city": NANJING, "caller": "138", "channel": "phone", "priority": 10}, "invalid_request"),
    ({"city": NANJING, "caller": "138", "channel": "phone", "extra": 1}, "invalid_request"),
    ({"city": NANJING, "channel": "phone"}, "invalid_request"),
    (
        {"city": NANJING, "caller": "138", "channel": "phone", "external_id": ""},
        "invalid_request",
    ),
    ([], "invalid_request"),
]


async def test_bad_call_bodies_are_refused(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    for body, code in BAD_CALL_BODIES:
        response = await service.http.post("/api/v1/calls", json=body, headers=service.auth(cti))
        assert response.status_code == 422, (body, response.text)
        error_of(response, 422, code)


async def test_malformed_and_huge_bodies(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    headers = {**service.auth(cti), "Content-Type": "application/json"}
    response = await service.http.post("/api/v1/calls", content=b"{not json", headers=headers)
    message = error_of(response, 422, "invalid_request")["message"]
    assert message.startswith("body: not valid JSON at character 1 ("), message
    huge = b'{"city": "320100", "caller": "' + b"1" * 200_000 + b'", "channel": "phone"}'
    error_of(
        await service.http.post("/api/v1/calls", content=huge, headers=headers),
        413,
        "payload_too_large",
    )

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 10_000  # no Content-Length: the limit applies to what arrives

    error_of(
        await service.http.post("/api/v1/calls", content=chunks(), headers=headers),
        413,
        "payload_too_large",
    )


async def test_idempotent_ingest_on_external_id(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    body = {"city": NANJING, "caller": "13812345678", "channel": "phone", "external_id": "e-1"}
    first = await service.http.post("/api/v1/calls", json=body, headers=service.auth(cti))
    again = await service.http.post("/api/v1/calls", json=body, headers=service.auth(cti))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    cities = (await service.http.get("/api/v1/cities", headers=service.auth(cti))).json()
    assert next(c for c in cities if c["code"] == NANJING)["waiting"] == 1


async def test_tokens_missing_forged_expired_and_wrong_role(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    body = {"city": NANJING, "caller": "13812345678", "channel": "phone"}
    error_of(await service.http.post("/api/v1/calls", json=body), 401, "unauthorized")
    forged = jwt.encode(
        {
            "iss": "surge",
            "sub": "1",
            "name": "x",
            "role": "cti",
            "city": None,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "not-the-secret-key-at-all-0123456789",
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {forged}"}
    error_of(
        await service.http.post("/api/v1/calls", json=body, headers=headers), 401, "unauthorized"
    )
    expired = jwt.encode(
        {
            "iss": "surge",
            "sub": "1",
            "name": "x",
            "role": "cti",
            "city": None,
            "iat": int(time.time()) - 120,
            "exp": int(time.time()) - 60,
        },
        service.settings.secret_key.get_secret_value(),
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {expired}"}
    error = error_of(
        await service.http.post("/api/v1/calls", json=body, headers=headers), 401, "unauthorized"
    )
    assert "expired" in error["message"]
    error_of(
        await service.http.post("/api/v1/calls", json=body, headers=service.auth(agent)),
        403,
        "forbidden",
    )
    error_of(
        await service.http.get("/api/v1/cities", headers={"Authorization": "Bearer junk"}),
        401,
        "unauthorized",
    )
    assert (await service.http.get("/api/v1/cities", headers=service.auth(cti))).status_code == 200


async def test_city_bound_cti_and_admin_stay_in_their_city(service: LiveService) -> None:
    nanjing_cti = await service.add_user(Role.CTI, NANJING)
    suzhou_admin = await service.add_user(Role.CITY_ADMIN, SUZHOU)
    nanjing_admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    body = {"city": SUZHOU, "caller": "13812345678", "channel": "phone"}
    error_of(
        await service.http.post("/api/v1/calls", json=body, headers=service.auth(nanjing_cti)),
        403,
        "forbidden",
    )
    call = await service.post_call(nanjing_cti, NANJING)
    error_of(
        await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(suzhou_admin)),
        403,
        "forbidden",
    )
    ok = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(nanjing_admin))
    assert ok.status_code == 200


async def test_unknown_ids_and_closed_calls(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    for path in ("/api/v1/calls/424242", "/api/v1/calls/0", "/api/v1/calls/abc"):
        response = await service.http.get(path, headers=service.auth(cti))
        assert response.status_code in (404, 422), response.text
        assert "error" in response.json()
    error_of(
        await service.http.post("/api/v1/calls/424242/abandon", headers=service.auth(cti)),
        404,
        "not_found",
    )
    error_of(await service.http.get("/api/v1/nowhere"), 404, "not_found")
    error_of(await service.http.delete("/api/v1/cities"), 405, "method_not_allowed")
    call = await service.post_call(cti, NANJING)
    first = await service.http.post(
        f"/api/v1/calls/{call['id']}/abandon", headers=service.auth(cti)
    )
    again = await service.http.post(
        f"/api/v1/calls/{call['id']}/abandon", headers=service.auth(cti)
    )
    assert first.json()["status"] == again.json()["status"] == "abandoned"


async def test_abandoning_a_connected_call_is_a_conflict(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
        response = await service.http.post(
            f"/api/v1/calls/{call['id']}/abandon", headers=service.auth(cti)
        )
        error_of(response, 409, "call_not_open")


async def test_agents_see_only_calls_they_hold(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    holder = await service.add_user(Role.AGENT, NANJING)
    other = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    path = f"/api/v1/calls/{call['id']}"
    error_of(await service.http.get(path, headers=service.auth(holder)), 404, "not_found")
    async with service.console(holder) as console:
        await console.available()
        offer = await console.expect("offer")
        assert (await service.http.get(path, headers=service.auth(holder))).status_code == 200
        error_of(await service.http.get(path, headers=service.auth(other)), 404, "not_found")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
        await console.send(type="complete", call_id=call["id"], disposition="answered")
        await console.expect("call.completed")
    error_of(await service.http.get(path, headers=service.auth(holder)), 404, "not_found")


async def test_accepting_someone_elses_offer_or_twice(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    holder = await service.add_user(Role.AGENT, NANJING)
    thief = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(holder) as mine, service.console(thief) as theirs:
        await mine.available()
        offer = await mine.expect("offer")
        await theirs.send(type="accept", offer_id=offer["offer_id"])
        assert (await theirs.expect("error"))["code"] == "forbidden"
        await theirs.send(type="decline", offer_id=offer["offer_id"])
        assert (await theirs.expect("error"))["code"] == "forbidden"
        await mine.send(type="accept", offer_id=offer["offer_id"])
        await mine.expect("call.connected")
        await mine.send(type="accept", offer_id=offer["offer_id"])
        assert (await mine.expect("error"))["code"] == "offer_unavailable"
        await theirs.send(type="complete", call_id=call["id"], disposition="answered")
        assert (await theirs.expect("error"))["code"] == "not_found"
        await mine.send(type="complete", call_id=call["id"], disposition="answered")
        await mine.expect("call.completed")
        await mine.expect("state")
        await mine.send(type="complete", call_id=call["id"], disposition="answered")
        assert (await mine.expect("error"))["code"] == "call_not_open"


MALFORMED_FRAMES: list[tuple[str, str]] = [
    ("not json at all", "invalid_request"),
    ('{"no_type": 1}', "invalid_request"),
    ('{"type": "teleport"}', "invalid_request"),
    ('{"type": "status", "state": "asleep"}', "invalid_request"),
    ('{"type": "accept"}', "invalid_request"),
    ('{"type": "complete", "call_id": 1, "disposition": "shrug"}', "invalid_request"),
    ("[1, 2, 3]", "invalid_request"),
    ('{"type": "accept", "offer_id": "' + "x" * 40_000 + '"}', "payload_too_large"),
]


async def test_malformed_agent_messages_keep_the_socket_open(service: LiveService) -> None:
    agent = await service.add_user(Role.AGENT, NANJING)
    for frame, code in MALFORMED_FRAMES:
        async with service.console(agent) as console:
            await console.socket.send(frame)
            error = await console.expect("error")
            assert error["code"] == code, (frame[:80], error)
            assert error["message"]
            await console.available()  # still open and working


async def test_status_changes_while_engaged_are_refused(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        await console.expect("offer")
        await console.send(type="status", state="break")
        assert (await console.expect("error"))["code"] == "agent_engaged"


async def test_websocket_refuses_bad_tokens_and_roles(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    cases = [
        (f"{service.ws_url}/ws/agent", 4401, "unauthorized"),
        (f"{service.ws_url}/ws/agent?token=forged", 4401, "unauthorized"),
        (f"{service.ws_url}/ws/agent?token={service.tokens[cti]}", 4403, "forbidden"),
        (f"{service.ws_url}/ws/cti?token={service.tokens[agent]}", 4403, "forbidden"),
    ]
    for url, close_code, error_code in cases:
        async with websockets.connect(url) as socket:
            frame = await Console(socket).expect("error")
            assert frame["code"] == error_code
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == close_code


async def test_failed_logins_are_rate_limited(service: LiveService) -> None:
    name = await service.add_user(Role.COORDINATOR)
    limit = service.settings.login_max_failures
    for _ in range(limit - 1):  # add_user already logged in once, which reset the count
        response = await service.http.post(
            "/api/v1/auth/token", json={"username": name, "password": "wrong-password"}
        )
        error_of(response, 401, "invalid_credentials")
    response = await service.http.post(
        "/api/v1/auth/token", json={"username": name, "password": "wrong-password"}
    )
    error_of(response, 401, "invalid_credentials")
    response = await service.http.post(
        "/api/v1/auth/token", json={"username": name, "password": PASSWORD}
    )
    error_of(response, 429, "too_many_attempts")
    unknown = await service.http.post(
        "/api/v1/auth/token", json={"username": "nobody", "password": "whatever-1"}
    )
    error_of(unknown, 401, "invalid_credentials")
    error_of(await service.http.post("/api/v1/auth/token", json={}), 422, "invalid_request")
