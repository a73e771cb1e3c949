"""Users over HTTP: the coordinator manages all, a city admin its city's agents; a disabled user,
or one whose password was reset, is out at once; every change is in the audit log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.helpers import PASSWORD, LiveService
from tests.integration.test_user_access import closed_with

NANJING = "320100"
SUZHOU = "320500"
USERS = "/api/v1/users"
NEW_PASSWORD = "a-new-long-password"
USER_FIELDS = {"id", "username", "role", "city", "disabled", "agent_id", "created_at"}


async def log_in(service: LiveService, name: str, password: str = NEW_PASSWORD) -> httpx.Response:
    """Log in; on success keep the token as the user's."""
    response = await service.http.post(
        "/api/v1/auth/token", json={"username": name, "password": password}
    )
    if response.status_code == 200:
        service.tokens[name] = response.json()["access_token"]
    return response


async def create(
    service: LiveService, who: str, username: str, role: str, city: str | None
) -> dict[str, Any]:
    """Create a user as `who` and return it (it must succeed)."""
    body = {"username": username, "password": NEW_PASSWORD, "role": role, "city": city}
    response = await service.http.post(USERS, json=body, headers=service.auth(who))
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def patch(service: LiveService, who: str, user_id: int, **change: object) -> httpx.Response:
    return await service.http.patch(f"{USERS}/{user_id}", json=change, headers=service.auth(who))


async def audit(service: LiveService, who: str, **filters: Any) -> list[dict[str, Any]]:
    response = await service.http.get("/api/v1/audit", params=filters, headers=service.auth(who))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def user_id_of(service: LiveService, who: str, name: str) -> int:
    listed = (await service.http.get(USERS, headers=service.auth(who))).json()
    return next(int(user["id"]) for user in listed if user["username"] == name)


async def test_the_coordinator_creates_and_lists_every_user(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR, name="province")
    agent = await create(service, coordinator, "nj-agent-1", "agent", NANJING)
    assert set(agent) == USER_FIELDS  # never a password or its hash
    assert (agent["role"], agent["city"], agent["disabled"]) == ("agent", NANJING, False)
    assert agent["agent_id"] is not None
    admin = await create(service, coordinator, "sz-admin", "city_admin", SUZHOU)
    cti = await create(service, coordinator, "cti-province", "cti", None)
    assert (admin["agent_id"], cti["city"]) == (None, None)

    token = await log_in(service, "nj-agent-1")
    assert token.status_code == 200, token.text
    assert token.json()["agent_id"] == agent["agent_id"]
    async with service.console("nj-agent-1") as console:
        assert console.hello["city"] == NANJING

    listed = (await service.http.get(USERS, headers=service.auth(coordinator))).json()
    assert [user["username"] for user in listed] == [
        "province", "nj-agent-1", "sz-admin", "cti-province",
    ]  # fmt: skip
    assert all(set(user) == USER_FIELDS for user in listed)
    assert "argon2" not in json.dumps(listed)
    of_suzhou = await service.http.get(
        USERS, params={"city": SUZHOU}, headers=service.auth(coordinator)
    )
    assert [user["username"] for user in of_suzhou.json()] == ["sz-admin"]
    agents = await service.http.get(
        USERS, params={"role": "agent"}, headers=service.auth(coordinator)
    )
    assert [user["username"] for user in agents.json()] == ["nj-agent-1"]

    created = await audit(service, coordinator, action="user.created", actor="province")
    assert [(e["actor"], e["detail"]["username"]) for e in created] == [
        ("province", "cti-province"),
        ("province", "sz-admin"),
        ("province", "nj-agent-1"),
    ]
    assert created[2]["detail"] == {
        "user_id": agent["id"], "username": "nj-agent-1", "role": "agent", "city": NANJING,
    }  # fmt: skip
    assert NEW_PASSWORD not in json.dumps(await audit(service, coordinator))


async def test_a_city_admin_manages_only_its_own_citys_agents(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING, name="nj-admin")
    other_admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    suzhou_agent = await service.add_user(Role.AGENT, SUZHOU)
    mine = await create(service, admin, "nj-agent-2", "agent", NANJING)

    listed = (await service.http.get(USERS, headers=service.auth(admin))).json()
    assert [user["username"] for user in listed] == ["nj-agent-2"]  # not admins, not Suzhou's
    for params in ({"city": SUZHOU}, {"role": "city_admin"}, {"role": "coordinator"}):
        refused = await service.http.get(USERS, params=params, headers=service.auth(admin))
        error_of(refused, 403, "forbidden")
    same = await service.http.get(
        USERS, params={"city": NANJING, "role": "agent"}, headers=service.auth(admin)
    )
    assert [user["username"] for user in same.json()] == ["nj-agent-2"]

    for role, city in (("agent", SUZHOU), ("city_admin", NANJING), ("coordinator", None)):
        body = {"username": f"x-{role}", "password": NEW_PASSWORD, "role": role, "city": city}
        refused = await service.http.post(USERS, json=body, headers=service.auth(admin))
        error_of(refused, 403, "forbidden")

    suzhou_id = await user_id_of(service, coordinator, suzhou_agent)
    other_id = await user_id_of(service, coordinator, other_admin)
    for target in (suzhou_id, other_id):  # another city's agent, an admin of its own city
        for change in ({"disabled": True}, {"password": "taken-over-now"}):
            error_of(await patch(service, admin, target, **change), 403, "forbidden")
    assert (await log_in(service, suzhou_agent, PASSWORD)).status_code == 200  # unchanged
    assert (await service.http.get("/api/v1/cities", headers=service.auth(suzhou_agent))).is_success
    error_of(await patch(service, admin, 999_999, disabled=True), 404, "not_found")
    for who in (suzhou_agent, await service.add_user(Role.CTI)):  # neither manages users
        error_of(await service.http.get(USERS, headers=service.auth(who)), 403, "forbidden")
        error_of(await patch(service, who, mine["id"], disabled=True), 403, "forbidden")

    changed = await patch(service, admin, mine["id"], disabled=True)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**mine, "disabled": True}
    log = await audit(service, coordinator, actor="nj-admin")
    assert [(e["action"], e["detail"]["username"]) for e in log] == [
        ("user.disabled", "nj-agent-2"),
        ("user.created", "nj-agent-2"),
    ]


def new(**fields: object) -> dict[str, object]:
    """A user to create: a Nanjing agent unless the fields say otherwise (None: left out)."""
    body = {"username": "u1", "password": PASSWORD, "role": "agent", "city": NANJING, **fields}
    return {name: value for name, value in body.items() if value is not None}


BAD_CREATES: list[tuple[dict[str, object], int, str]] = [
    (new(role="king"), 422, "invalid_request"),
    (new(city="999999"), 422, "unknown_city"),
    (new(city="32010"), 422, "invalid_request"),
    (new(city=None), 422, "invalid_request"),
    (new(role="coordinator"), 422, "invalid_request"),
    (new(password="short"), 422, "invalid_request"),
    (new(password="p" * 257), 422, "invalid_request"),
    (new(password=None), 422, "invalid_request"),
    (new(username="has space"), 422, "invalid_request"),
    (new(username=""), 422, "invalid_request"),
    (new(username="u" * 65), 422, "invalid_request"),
    (new(username="u1\x00"), 422, "invalid_request"),
    (new(username=7), 422, "invalid_request"),
    (new(admin=True), 422, "invalid_request"),
    (new(endpoint=""), 422, "invalid_request"),
]
BAD_PATCHES: list[tuple[object, int, str]] = [
    ({}, 422, "invalid_request"),
    ({"disabled": None}, 422, "invalid_request"),
    ({"disabled": "yes"}, 422, "invalid_request"),
    ({"disabled": 1}, 422, "invalid_request"),
    ({"password": "short"}, 422, "invalid_request"),
    ({"password": "p" * 257}, 422, "invalid_request"),
    ({"role": "coordinator"}, 422, "invalid_request"),
    ([True], 422, "invalid_request"),
]


async def test_bad_input_is_refused_clearly(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    auth = service.auth(coordinator)
    for body, status, code in BAD_CREATES:
        response = await service.http.post(USERS, json=body, headers=auth)
        assert error_of(response, status, code), body
    taken = {"username": coordinator, "password": PASSWORD, "role": "cti"}
    error_of(await service.http.post(USERS, json=taken, headers=auth), 409, "username_taken")

    agent = await create(service, coordinator, "nj-agent-3", "agent", NANJING)
    for change, status, code in BAD_PATCHES:
        response = await service.http.patch(f"{USERS}/{agent['id']}", json=change, headers=auth)
        assert error_of(response, status, code), change
    for user_id in ("0", "-1", str(2**31), str(2**64), str(2**70), "x"):
        response = await service.http.patch(
            f"{USERS}/{user_id}", json={"disabled": True}, headers=auth
        )
        error_of(response, 422, "invalid_request")
    own_id = await user_id_of(service, coordinator, coordinator)
    for change in ({"disabled": True}, {"password": NEW_PASSWORD}):
        error_of(await patch(service, coordinator, own_id, **change), 409, "conflict")
    for params in (
        {"city": "abc"},
        {"role": "king"},
        {"action": "a" * 33},
        {"actor": ""},
        {"actor": "x\x00"},
    ):
        path = "/api/v1/audit" if {"action", "actor"} & set(params) else USERS
        error_of(await service.http.get(path, params=params, headers=auth), 422, "invalid_request")
    listed = (await service.http.get(USERS, headers=auth)).json()
    assert [user["username"] for user in listed] == [coordinator, "nj-agent-3"]  # nothing else
    assert not listed[1]["disabled"]  # no bad patch changed it


async def test_a_disabled_user_is_out_at_once(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR, name="province")
    agent = await service.add_user(Role.AGENT, NANJING)
    cti = await service.add_user(Role.CTI)
    agent_id = await user_id_of(service, coordinator, agent)
    old_token = service.tokens[agent]
    cti_url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
    async with service.console(agent) as console, websockets.connect(cti_url) as stream:
        await console.available()
        disabled = await patch(service, coordinator, agent_id, disabled=True)
        assert disabled.status_code == 200, disabled.text
        assert disabled.json()["disabled"] is True
        # At once on this instance: no wait for the next reading of the users.
        refused = await service.http.get("/api/v1/cities", headers=service.auth(agent))
        error_of(refused, 401, "unauthorized")
        assert await closed_with(console.socket) == ("unauthorized", 4401)
        assert (await service.http.get("/api/v1/cities", headers=service.auth(cti))).is_success
        assert stream.close_code is None  # everyone else carries on
    error_of(await log_in(service, agent, PASSWORD), 401, "invalid_credentials")
    again = await patch(service, coordinator, agent_id, disabled=True)  # already: no change
    assert again.json()["disabled"] is True

    enabled = await patch(service, coordinator, agent_id, disabled=False)
    assert enabled.json()["disabled"] is False
    assert (await log_in(service, agent, PASSWORD)).status_code == 200
    async with service.console(agent) as console:
        await console.available()
    stale = await service.http.get(
        "/api/v1/cities", headers={"Authorization": f"Bearer {old_token}"}
    )
    error_of(stale, 401, "unauthorized")  # enabling does not revive the withdrawn tokens
    log = await audit(service, coordinator, action=["user.disabled", "user.enabled"])
    assert [(e["action"], e["actor"], e["detail"]["user_id"]) for e in log] == [
        ("user.enabled", "province", agent_id),
        ("user.disabled", "province", agent_id),
    ]  # the repeated disable changed nothing and is not recorded


async def test_a_password_reset_ends_the_users_tokens(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING, name="nj-admin")
    agent = await service.add_user(Role.AGENT, NANJING)
    agent_id = await user_id_of(service, admin, agent)
    async with service.console(agent) as console:
        reset = await patch(service, admin, agent_id, password=NEW_PASSWORD)
        assert reset.status_code == 200, reset.text
        assert reset.json()["disabled"] is False
        error_of(
            await service.http.get("/api/v1/cities", headers=service.auth(agent)),
            401,
            "unauthorized",
        )
        assert await closed_with(console.socket) == ("unauthorized", 4401)
    error_of(await log_in(service, agent, PASSWORD), 401, "invalid_credentials")
    assert (await log_in(service, agent, NEW_PASSWORD)).status_code == 200
    assert (await service.http.get("/api/v1/cities", headers=service.auth(agent))).is_success
    (entry,) = await audit(service, coordinator, action="user.password_reset")
    assert (entry["actor"], entry["detail"]["username"]) == ("nj-admin", agent)
    assert NEW_PASSWORD not in json.dumps(entry)


@pytest.mark.parametrize("page_size", [1, 2])
async def test_the_audit_log_filters_by_action_and_actor_and_pages(
    service: LiveService, page_size: int
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR, name="province")
    admin = await service.add_user(Role.CITY_ADMIN, NANJING, name="nj-admin")
    for n in range(3):
        made = await create(service, admin, f"agent-{n}", "agent", NANJING)
        await patch(service, "province", made["id"], disabled=True)
    wanted = {"action": "user.disabled", "actor": "province"}
    pages: list[list[str]] = []
    before: int | None = None
    while True:
        params = {**wanted, "limit": page_size, **({"before_id": before} if before else {})}
        page = await audit(service, coordinator, **params)
        if not page:
            break
        pages.append([e["detail"]["username"] for e in page])
        before = page[-1]["id"]
    assert [name for page in pages for name in page] == ["agent-2", "agent-1", "agent-0"]
    assert all(len(page) <= page_size for page in pages)
    by_admin = await audit(service, coordinator, actor="nj-admin")
    assert {e["action"] for e in by_admin} == {"user.created"}
    assert await audit(service, coordinator, action="surge.created") == []
    assert await audit(service, coordinator, actor="nobody") == []
