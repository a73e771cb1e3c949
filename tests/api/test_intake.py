"""Call intake: `external_id` is a city's key, strict body types, and a 503 strands nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import LiveService, private_redis, run_service

NANJING = "320100"
WUXI = "320200"


async def post(service: LiveService, cti: str, body: dict[str, Any]) -> Any:
    """POST /calls as `cti`; the raw response."""
    return await service.http.post("/api/v1/calls", json=body, headers=service.auth(cti))


def call_body(city: str, **fields: Any) -> dict[str, Any]:
    """A well-formed call of `city`."""
    return {"city": city, "caller": "13812345678", "channel": "phone", **fields}


async def test_the_same_external_id_in_two_cities_is_two_calls(service: LiveService) -> None:
    wuxi_cti = await service.add_user(Role.CTI, WUXI)
    nanjing_cti = await service.add_user(Role.CTI, NANJING)
    province_cti = await service.add_user(Role.CTI)
    wuxi_body = call_body(WUXI, external_id="pbx-1", caller="051012345")
    wuxi = await post(service, wuxi_cti, wuxi_body)
    nanjing = await post(service, nanjing_cti, call_body(NANJING, external_id="pbx-1"))
    assert (wuxi.status_code, nanjing.status_code) == (201, 201), nanjing.text
    assert nanjing.json()["id"] != wuxi.json()["id"]
    assert (nanjing.json()["city"], nanjing.json()["caller"]) == (NANJING, "13812345678")
    # The same key again in each city is that city's first call, whoever posts it.
    again = await post(service, province_cti, wuxi_body)
    assert (again.status_code, again.json()["id"]) == (200, wuxi.json()["id"])
    again = await post(service, nanjing_cti, call_body(NANJING, external_id="pbx-1"))
    assert (again.status_code, again.json()["id"]) == (200, nanjing.json()["id"])
    cities = (await service.http.get("/api/v1/cities", headers=service.auth(province_cti))).json()
    waiting = {city["code"]: city["waiting"] for city in cities}
    assert (waiting[NANJING], waiting[WUXI]) == (1, 1)


async def test_the_same_key_with_another_body_is_an_idempotency_conflict(
    service: LiveService,
) -> None:
    cti = await service.add_user(Role.CTI, NANJING)
    first = await post(service, cti, call_body(NANJING, external_id="pbx-2", priority=3))
    assert first.status_code == 201, first.text
    for changed in ({"caller": "13900000000"}, {"channel": "app"}, {"priority": 4}, {}):
        body = {**call_body(NANJING, external_id="pbx-2", priority=3), **changed}
        response = await post(service, cti, body)
        if changed:
            error = error_of(response, 409, "idempotency_conflict")
            assert "pbx-2" in error["message"]
            assert "13812345678" not in error["message"]
        else:
            assert (response.status_code, response.json()["id"]) == (200, first.json()["id"])


STRICT_BODIES: list[dict[str, Any]] = [
    call_body(NANJING, priority="5"),
    call_body(NANJING, priority=True),
    call_body(NANJING, priority=5.0),
    call_body(NANJING, priority=None),
    call_body(NANJING, priority=-1),
    call_body(NANJING, external_id=None),
    call_body(NANJING, external_id=42),
    call_body(NANJING, caller=13812345678),
    call_body(NANJING, channel=None),
]


async def test_intake_types_are_strict(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    for body in STRICT_BODIES:
        error_of(await post(service, cti, body), 422, "invalid_request")
    cities = (await service.http.get("/api/v1/cities", headers=service.auth(cti))).json()
    assert next(c for c in cities if c["code"] == NANJING)["waiting"] == 0
    accepted = await post(service, cti, call_body(NANJING, priority=9))
    assert (accepted.status_code, accepted.json()["priority"]) == (201, 9)
    assert accepted.json()["external_id"] is None


async def test_a_body_that_is_not_text_is_422(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    headers = {**service.auth(cti), "Content-Type": "application/json"}
    response = await service.http.post("/api/v1/calls", content=b"\xff\xfe{", headers=headers)
    assert "body" in error_of(response, 422, "invalid_request")["message"]


async def test_a_call_answered_503_is_queued_by_its_retry(
    shared_backend: Backend, tmp_path: Path
) -> None:
    async with private_redis(tmp_path) as redis:
        backend = replace(shared_backend, redis_url=redis.url)
        async with run_service(backend.settings()) as service:
            cti = await service.add_user(Role.CTI, NANJING)
            agent = await service.add_user(Role.AGENT, NANJING)
            body = call_body(NANJING, external_id="pbx-outage")
            await redis.kill()
            outage = await post(service, cti, body)
            error_of(outage, 503, "state_unavailable")
            await redis.start()  # back, and empty
            retry = await post(service, cti, body)
            assert (retry.status_code, retry.json()["status"]) == (200, "queued"), retry.text
            cities = (await service.http.get("/api/v1/cities", headers=service.auth(cti))).json()
            assert next(c for c in cities if c["code"] == NANJING)["waiting"] == 1
            async with service.console(agent) as console:
                await console.available()
                offer = await console.expect("offer")
                assert offer["call"]["id"] == retry.json()["id"]
            again = await post(service, cti, body)  # queued once, however often it is sent
            assert again.status_code == 200
