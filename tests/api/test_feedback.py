"""The satisfaction follow-up: POST /calls/{id}/feedback, once per connected call, CTI only."""

from __future__ import annotations

import asyncio
from typing import Any

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.helpers import LiveService

NANJING = "320100"
SUZHOU = "320500"


async def feedback(service: LiveService, who: str, call_id: int, **body: Any) -> Any:
    return await service.http.post(
        f"/api/v1/calls/{call_id}/feedback", json=body, headers=service.auth(who)
    )


async def test_a_connected_call_takes_one_answer_and_shows_it(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.answer_call(cti, agent, NANJING)

    response = await feedback(service, cti, call["id"], score=2)
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert (recorded["call_id"], recorded["satisfied"], recorded["score"]) == (call["id"], False, 2)
    assert recorded["at"].endswith("Z") or "+" in recorded["at"]

    again = await feedback(service, cti, call["id"], satisfied=True)
    error_of(again, 409, "feedback_recorded")

    read = (await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))).json()
    assert (read["satisfied"], read["feedback_score"]) == (False, 2)


ANSWERS: list[tuple[dict[str, Any], bool, int | None]] = [
    ({"satisfied": True}, True, None),
    ({"satisfied": False}, False, None),
    ({"score": 4}, True, 4),
    ({"score": 3}, False, 3),
    ({"score": 5, "satisfied": True}, True, 5),
]


async def test_answers_as_yes_no_or_score(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)

    for body, satisfied, score in ANSWERS:
        call = await service.answer_call(cti, agent, NANJING, complete=False)  # in hand: fine
        response = await feedback(service, cti, call["id"], **body)
        assert response.status_code == 201, (body, response.text)
        assert (response.json()["satisfied"], response.json()["score"]) == (satisfied, score)
        async with service.console(agent) as console:  # finish it before the next one
            await console.send(type="complete", call_id=call["id"], disposition="answered")
            await console.expect("call.completed")


async def test_a_call_never_connected_has_nothing_to_rate(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    waiting = await service.post_call(cti, NANJING)
    hung_up = await service.post_call(cti, NANJING)
    abandoned = await service.http.post(
        f"/api/v1/calls/{hung_up['id']}/abandon", headers=service.auth(cti)
    )
    assert abandoned.status_code == 200

    for call in (waiting, hung_up):
        answer = await feedback(service, cti, call["id"], satisfied=True)
        error_of(answer, 409, "call_not_connected")
    error_of(await feedback(service, cti, 987654, satisfied=True), 404, "not_found")


BAD_ANSWERS: list[dict[str, Any]] = [
    {},
    {"score": 0},
    {"score": 6},
    {"score": "five"},
    {"satisfied": "maybe"},
    {"score": True},  # a boolean is not a score (lax parsing would store 1, "not satisfied")
    {"score": "4"},
    {"score": 4.0},
    {"satisfied": "yes"},
    {"satisfied": 1},
    {"satisfied": False, "score": 5},
    {"satisfied": True, "comment": "extra fields are refused"},
]


async def test_bad_answers_are_refused(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.answer_call(cti, agent, NANJING)

    for body in BAD_ANSWERS:
        error_of(await feedback(service, cti, call["id"], **body), 422, "invalid_request")

    read = (await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))).json()
    assert read["satisfied"] is None


async def test_only_the_calls_own_telephony_may_answer(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    suzhou_cti = await service.add_user(Role.CTI, SUZHOU)
    agent = await service.add_user(Role.AGENT, NANJING)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    call = await service.answer_call(cti, agent, NANJING)

    error_of(await feedback(service, suzhou_cti, call["id"], satisfied=True), 403, "forbidden")
    error_of(await feedback(service, admin, call["id"], satisfied=True), 403, "forbidden")
    error_of(await feedback(service, agent, call["id"], satisfied=True), 403, "forbidden")


async def test_two_answers_at_once_record_exactly_one(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.answer_call(cti, agent, NANJING)

    answers = await asyncio.gather(
        *(feedback(service, cti, call["id"], score=score) for score in (1, 2, 3, 4, 5))
    )

    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409, 409]
    winner = next(r.json() for r in answers if r.status_code == 201)
    read = (await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))).json()
    assert read["feedback_score"] == winner["score"]
