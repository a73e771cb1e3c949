"""Input no column can hold (numbers out of range, wrongly typed, a NUL in text) is a 422 (or an
`error` frame), never a 5xx."""

from __future__ import annotations

from typing import Any

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.helpers import LiveService

NANJING = "320100"
INT4 = 2**31  # one past what an Integer column holds
INT8 = 2**63  # one past what a BigInteger column holds
HUGE = 2**70

SCRIPTS = f"/api/v1/cities/{NANJING}/scripts"
OUT_OF_RANGE_GETS = [
    f"/api/v1/audit?before_id={INT4}",
    f"/api/v1/audit?before_id={HUGE}",
    f"/api/v1/audit?limit={HUGE}",
    f"/api/v1/calls/{INT8}",
    f"/api/v1/surges/{INT4}",
    f"{SCRIPTS}/export?version={INT4}",
    f"{SCRIPTS}/export?version={HUGE}",
    f"{SCRIPTS}/diff?from={INT4}&to=1",
    f"{SCRIPTS}/diff?from=0&to={HUGE}",
    f"{SCRIPTS}/versions/{INT4}",
    f"{SCRIPTS}/search?q=x&limit={HUGE}",
    f"/api/v1/pressure/history?city={NANJING}&minutes={HUGE}",
    f"/api/v1/reports/exports?limit={HUGE}",
]

ENTRY = {
    "key": "k1",
    "title": "t",
    "question": "q",
    "answer": "a",
    "category_code": "0101",
}
OUT_OF_RANGE_POSTS: list[tuple[str, Any]] = [
    (f"/api/v1/surges/1/waves/{HUGE}/activate", None),
    (f"/api/v1/surges/{INT4}/end", None),
    (f"{SCRIPTS}/import?format=json&base_version={INT4}", None),
    (SCRIPTS, {"entries": [ENTRY], "base_version": INT4}),
    (f"{SCRIPTS}/rollback", {"to_version": INT4}),
    (f"{SCRIPTS}/rollback", {"to_version": 1, "base_version": HUGE}),
    # Strict numbers and flags: a string, a float or a boolean is a client's bug.
    (f"{SCRIPTS}/rollback", {"to_version": "1"}),
    (f"{SCRIPTS}/rollback", {"to_version": 1.0}),
    (SCRIPTS, {"entries": [ENTRY], "base_version": True}),
    (
        "/api/v1/surges",
        {"host_city": NANJING, "waves": [{"cities": ["320200"], "seats_per_city": "2"}]},
    ),
    (
        "/api/v1/surges",
        {"host_city": NANJING, "waves": [{"cities": ["320200"], "seats_per_city": True}]},
    ),
    (
        "/api/v1/surges",
        {
            "host_city": NANJING,
            "waves": [{"cities": ["320200"], "seats_per_city": 2}],
            "allow_shared_helpers": "yes",
        },
    ),
    (
        "/api/v1/surges",
        {
            "host_city": NANJING,
            "waves": [{"cities": ["320200"], "seats_per_city": 2}],
            "overflow_after_s": "5",
        },
    ),
]


async def test_out_of_range_numbers_are_422(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    for path in OUT_OF_RANGE_GETS:
        who = admin if path.startswith(SCRIPTS) else coordinator
        response = await service.http.get(path, headers=service.auth(who))
        assert response.status_code == 422, (path, response.text)
        error_of(response, 422, "invalid_request")
    for path, body in OUT_OF_RANGE_POSTS:
        who = admin if path.startswith(SCRIPTS) else coordinator
        response = await service.http.post(path, json=body, headers=service.auth(who))
        assert response.status_code == 422, (path, body, response.text)
        error_of(response, 422, "invalid_request")
    surges = await service.http.get("/api/v1/surges", headers=service.auth(coordinator))
    assert surges.json() == []


OUT_OF_RANGE_FRAMES: list[dict[str, Any]] = [
    {"type": "complete", "call_id": HUGE, "disposition": "answered"},
    {"type": "complete", "call_id": INT8, "disposition": "answered"},
    {"type": "complete", "call_id": "1", "disposition": "answered"},
    {"type": "complete", "call_id": 1, "disposition": "answered", "script_version": INT4},
    {"type": "scripts.ack", "city": NANJING, "version": HUGE},
    {"type": "scripts.ack", "city": NANJING, "version": 1.0},
]


async def test_out_of_range_numbers_in_frames_get_an_error_frame(service: LiveService) -> None:
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        for frame in OUT_OF_RANGE_FRAMES:
            await console.send(**frame)
            error = await console.expect("error")
            assert error["code"] == "invalid_request", (frame, error)
        await console.available()  # the socket is still open and working


NUL = "a\u0000b"  # Postgres text cannot hold U+0000 (SQLite can): refused on both backends
NUL_POSTS: list[tuple[str, str, Any]] = [
    ("anyone", "/api/v1/auth/token", {"username": NUL, "password": "whatever-1"}),
    (
        "cti",
        "/api/v1/calls",
        {"city": NANJING, "caller": "1", "channel": "phone", "external_id": NUL},
    ),
    (
        "coordinator",
        "/api/v1/surges",
        {
            "host_city": NANJING,
            "waves": [{"cities": ["320200"], "seats_per_city": 1}],
            "reason": NUL,
        },
    ),
    ("admin", SCRIPTS, {"entries": [{**ENTRY, "title": NUL}]}),
    ("admin", SCRIPTS, {"entries": [{**ENTRY, "tags": ["ok", NUL]}]}),
    ("admin", SCRIPTS, {"entries": [ENTRY], "note": NUL}),
    ("admin", f"{SCRIPTS}/import?format=json&note=a%00b", [ENTRY]),
    ("admin", f"{SCRIPTS}/import?format=json", [{**ENTRY, "answer": NUL}]),
]


async def test_text_with_a_nul_is_422(service: LiveService) -> None:
    users = {
        "anyone": await service.add_user(Role.AGENT, NANJING),
        "cti": await service.add_user(Role.CTI),
        "coordinator": await service.add_user(Role.COORDINATOR),
        "admin": await service.add_user(Role.CITY_ADMIN, NANJING),
    }
    for who, path, body in NUL_POSTS:
        response = await service.http.post(path, json=body, headers=service.auth(users[who]))
        assert response.status_code == 422, (path, body, response.text)
        error_of(response, 422, "invalid_request")
    agent = users["anyone"]
    async with service.console(agent) as console:
        await console.send(type="complete", call_id=1, disposition="answered", summary=NUL)
        assert (await console.expect("error"))["code"] == "invalid_request"
