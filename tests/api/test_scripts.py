"""Answer scripts: versioned publishing, concurrency, diff, rollback, who may read, live notice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.api.test_surges import wait_until_ended
from tests.helpers import LiveService

NANJING, XUZHOU = "320100", "320300"
BOOK = f"/api/v1/cities/{NANJING}/scripts"


def entry(key: str, **change: Any) -> dict[str, Any]:
    """A script entry about testing sites (Chinese text, as admins write it)."""
    base = {
        "key": key,
        "title": "核酸检测点在哪里",
        "question": "我想做核酸检测，最近的检测点在哪里？",
        "answer": "请通过“我的南京”App查询最近的检测点，24小时点位见官方公告。",
        "category_code": "0101",
        "tags": ["核酸", "检测点"],
    }
    return {**base, **change}


async def publish(
    service: LiveService, admin: str, entries: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """Publish and return the new version."""
    response = await service.http.post(
        BOOK, json={"entries": entries, **extra}, headers=service.auth(admin)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_publish_versions_diff_and_rollback(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING, name="nj-admin")
    auth = service.auth(admin)
    empty = (await service.http.get(BOOK, headers=auth)).json()
    assert (empty["version"], empty["entries"]) == (0, [])
    first = await publish(service, admin, [entry("testing"), entry("codes", category_code="0102")],
                          note="first answers")  # fmt: skip
    assert (first["version"], first["author"], first["entry_count"]) == (1, "nj-admin", 2)
    revised = entry("testing", answer="检测点已调整，请以今日公告为准。")
    vaccine = entry("vaccine", category_code="0103")
    second = await publish(service, admin, [revised, vaccine], base_version=1)
    assert second["version"] == 2
    latest = (await service.http.get(BOOK, headers=auth)).json()
    assert latest["version"] == 2
    assert {e["key"] for e in latest["entries"]} == {"testing", "vaccine"}
    listed = (await service.http.get(f"{BOOK}/versions", headers=auth)).json()
    assert [(v["version"], v["entry_count"], v["note"]) for v in listed] == [
        (2, 2, None), (1, 2, "first answers"),
    ]  # fmt: skip
    one = (await service.http.get(f"{BOOK}/versions/1", headers=auth)).json()
    assert {e["key"] for e in one["entries"]} == {"testing", "codes"}
    diff = (await service.http.get(f"{BOOK}/diff?from=1&to=2", headers=auth)).json()
    assert diff["added"] == ["vaccine"]
    assert diff["removed"] == ["codes"]
    assert diff["changed"] == [{"key": "testing", "fields": ["answer"]}]
    rolled = await service.http.post(f"{BOOK}/rollback", json={"to_version": 1}, headers=auth)
    assert rolled.status_code == 201
    assert (rolled.json()["version"], rolled.json()["rolled_back_from"]) == (3, 1)
    assert rolled.json()["note"] == "rollback to version 1"
    assert rolled.json()["note_code"] == {"code": "rollback", "params": {"to_version": 1}}
    assert [v["note_code"] for v in listed] == [None, None]  # a person's note stays theirs
    back = (await service.http.get(f"{BOOK}/diff?from=1&to=3", headers=auth)).json()
    assert (back["added"], back["removed"], back["changed"]) == ([], [], [])
    # History is never rewritten: version 2 is still there as it was.
    two = (await service.http.get(f"{BOOK}/versions/2", headers=auth)).json()
    assert {e["key"] for e in two["entries"]} == {"testing", "vaccine"}
    # Each publish and the rollback are in the audit log, by their admin, with their note.
    coordinator = await service.add_user(Role.COORDINATOR)
    audit = await service.http.get(
        "/api/v1/audit",
        params=[("action", "scripts.published"), ("action", "scripts.rolled_back")],
        headers=service.auth(coordinator),
    )
    assert audit.status_code == 200, audit.text
    assert [(e["action"], e["actor"], e["detail"], e["reason"]) for e in audit.json()] == [
        ("scripts.rolled_back", "nj-admin",
         {"city": NANJING, "version": 3, "entries": 2, "to_version": 1}, "rollback to version 1"),
        ("scripts.published", "nj-admin", {"city": NANJING, "version": 2, "entries": 2}, None),
        ("scripts.published", "nj-admin",
         {"city": NANJING, "version": 1, "entries": 2}, "first answers"),
    ]  # fmt: skip


async def test_two_publishes_on_one_base_one_wins(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    other = await service.add_user(Role.CITY_ADMIN, NANJING)
    await publish(service, admin, [entry("testing")])
    responses = await asyncio.gather(
        *(
            service.http.post(
                BOOK,
                json={"entries": [entry("testing", title=f"版本 {n}")], "base_version": 1},
                headers=service.auth(name),
            )
            for n, name in enumerate((admin, other))
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    error_of(loser, 409, "stale_version")
    stale = await service.http.post(
        BOOK, json={"entries": [entry("testing")], "base_version": 1}, headers=service.auth(admin)
    )
    error_of(stale, 409, "stale_version")
    listed = await service.http.get(f"{BOOK}/versions", headers=service.auth(admin))
    assert [v["version"] for v in listed.json()] == [2, 1]


BAD_BOOKS: list[tuple[list[dict[str, Any]], str, str]] = [
    ([entry("a"), entry("a")], "invalid_request", "repeated: a"),
    ([entry("a", answer="   ")], "invalid_request", "answer"),
    ([entry("a", category_code="7777")], "unknown_category", "7777"),
    ([entry("a", category_code="01")], "invalid_request", "category_code"),
    ([entry("a", title="长" * 201)], "invalid_request", "title"),
    ([entry("has space")], "invalid_request", "key"),
    ([entry("a", tags=["t"] * 21)], "invalid_request", "tags"),
    ([entry(f"k{i}") for i in range(5001)], "invalid_request", "entries"),
]


async def test_bad_books_are_refused(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    for entries, code, words in BAD_BOOKS:
        response = await service.http.post(
            BOOK, json={"entries": entries}, headers=service.auth(admin)
        )
        assert words in error_of(response, 422, code)["message"], words


async def test_a_large_book_is_accepted_and_a_huge_one_refused(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    book = await publish(service, admin, [entry(f"k{i}") for i in range(1000)])  # ~300 KB
    assert book["entry_count"] == 1000
    huge = b'{"entries": [' + b" " * (9 * 1024 * 1024) + b"]}"
    response = await service.http.post(
        BOOK, content=huge,
        headers={**service.auth(admin), "Content-Type": "application/json"},
    )  # fmt: skip
    error_of(response, 413, "payload_too_large")


async def test_who_may_publish_and_read(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    foreign_admin = await service.add_user(Role.CITY_ADMIN, XUZHOU)
    own_agent = await service.add_user(Role.AGENT, NANJING)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    await publish(service, admin, [entry("testing")])
    for name in (foreign_admin, own_agent, coordinator, cti):
        response = await service.http.post(
            BOOK, json={"entries": [entry("x")]}, headers=service.auth(name)
        )
        error_of(response, 403, "forbidden")
    for name in (own_agent, coordinator):
        assert (await service.http.get(BOOK, headers=service.auth(name))).status_code == 200
    for name in (foreign_admin, helper, cti):
        error_of(await service.http.get(BOOK, headers=service.auth(name)), 403, "forbidden")
    # A helper agent reads the host's scripts while its city serves the host's surge, and only then.
    surge = await service.http.post(
        "/api/v1/surges",
        json={"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}]},
        headers=service.auth(coordinator),
    )
    assert (await service.http.get(BOOK, headers=service.auth(helper))).status_code == 200
    await service.http.post(
        f"/api/v1/surges/{surge.json()['id']}/end", headers=service.auth(coordinator)
    )
    await wait_until_ended(service, coordinator, surge.json()["id"])  # no call in hand to finish
    error_of(await service.http.get(BOOK, headers=service.auth(helper)), 403, "forbidden")
    auth = service.auth(admin)
    error_of(await service.http.get(f"{BOOK}/versions/9", headers=auth), 404, "not_found")
    error_of(await service.http.get(f"{BOOK}/diff?from=1&to=9", headers=auth), 404, "not_found")
    error_of(await service.http.get(f"{BOOK}/diff?from=1", headers=auth), 422, "invalid_request")
    error_of(
        await service.http.post(f"{BOOK}/rollback", json={"to_version": 9}, headers=auth),
        404, "not_found",
    )  # fmt: skip
    error_of(
        await service.http.get("/api/v1/cities/999999/scripts", headers=auth), 422, "unknown_city"
    )


async def test_agents_serving_the_city_hear_of_a_new_version(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    own = await service.add_user(Role.AGENT, NANJING)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    await publish(service, admin, [entry("testing"), entry("codes", category_code="0102")])
    await service.http.post(
        "/api/v1/surges",
        json={"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}]},
        headers=service.auth(coordinator),
    )
    async with service.console(own) as mine, service.console(helper) as theirs:
        # Connecting, each is told the current version of the scripts it serves.
        assert mine.hello["scripts"] == {NANJING: 1}
        assert (await theirs.expect("surge.joined"))["scripts_version"] == 1
        await publish(service, admin, [entry("testing", answer="新的答复口径。"), entry("new")])
        for console in (mine, theirs):
            update = await console.expect("scripts.updated")
            assert update == {
                "type": "scripts.updated",
                "city": NANJING,
                "version": 2,
                "changes": {"added": ["new"], "removed": ["codes"], "changed": ["testing"]},
                "required": False,
            }


async def test_tickets_name_a_real_script_version_and_entry(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    await publish(service, admin, [entry("testing")])
    call = await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
        ticket = {"type": "complete", "call_id": call["id"], "disposition": "answered"}
        refusals: list[tuple[dict[str, Any], str]] = [
            ({"script_version": 5, "script_key": "testing"}, "invalid_request"),
            ({"script_version": 1, "script_key": "nonsense"}, "invalid_request"),
            ({"script_key": "testing"}, "invalid_request"),
            ({"category_code": "7777"}, "unknown_category"),
        ]
        for bad, code in refusals:
            await console.send(**ticket, **bad)
            assert (await console.expect("error"))["code"] == code
        still = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))
        assert still.json()["status"] == "connected"  # a refused ticket leaves the call open
        await console.send(
            **ticket, category_code="0101", script_version=1, script_key="testing",
            summary="告知最近检测点",
        )  # fmt: skip
        await console.expect("call.completed")
    done = (await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))).json()
    assert (done["status"], done["script_version"], done["script_key"]) == (
        "completed",
        1,
        "testing",
    )
    assert done["category_code"] == "0101"


async def test_agents_search_the_current_scripts_in_chinese(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    stranger = await service.add_user(Role.AGENT, XUZHOU)
    auth = service.auth(agent)
    nothing = await service.http.get(f"{BOOK}/search", params={"q": "核酸"}, headers=auth)
    assert (nothing.json()["version"], nothing.json()["hits"]) == (0, [])
    await publish(service, admin, [
        entry("vaccine", title="疫苗接种点", answer="接种不需要做核酸检测。", category_code="0103"),
        entry("testing"),
        entry("metro", title="地铁是否停运", question="地铁今天运营吗？",
              answer="Metro lines run as usual.", category_code="0201", tags=["metro"]),
    ])  # fmt: skip
    found = await service.http.get(f"{BOOK}/search", params={"q": "核酸检测点"}, headers=auth)
    keys = [hit["entry"]["key"] for hit in found.json()["hits"]]
    assert keys[:2] == ["testing", "vaccine"]
    assert "metro" not in keys
    english = await service.http.get(f"{BOOK}/search", params={"q": "metro"}, headers=auth)
    assert [h["entry"]["key"] for h in english.json()["hits"]] == ["metro"]
    error_of(await service.http.get(f"{BOOK}/search", headers=auth), 422, "invalid_request")
    outsider = service.auth(stranger)
    response = await service.http.get(f"{BOOK}/search", params={"q": "核酸"}, headers=outsider)
    error_of(response, 403, "forbidden")


async def test_export_and_import_csv_and_json(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    await publish(service, admin, [entry("testing"), entry("codes", category_code="0102")])
    exported = await service.http.get(f"{BOOK}/export?format=csv", headers=service.auth(agent))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="scripts-320100-v1.csv"' in exported.headers["content-disposition"]
    raw = exported.content
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0] == "key,title,question,answer,category_code,tags"
    assert "核酸检测点在哪里" in text
    assert "核酸;检测点" in text
    # An admin edits the sheet (a new row) and imports it as the next version.
    edited = (
        text + 'masks,口罩要戴吗,"公共场所要戴口罩吗？","请在室内公共场所佩戴口罩。",0101,口罩\r\n'
    )
    imported = await service.http.post(
        f"{BOOK}/import?format=csv&base_version=1", content=edited.encode("utf-8-sig"),
        headers={**service.auth(admin), "Content-Type": "text/csv"},
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    book = imported.json()
    assert (book["version"], book["entry_count"], book["note"]) == (2, 3, "imported from CSV")
    testing = next(e for e in book["entries"] if e["key"] == "testing")
    assert testing["tags"] == ["核酸", "检测点"]
    as_json = await service.http.get(
        f"{BOOK}/export?format=json&version=2", headers=service.auth(admin)
    )
    again = await service.http.post(
        f"{BOOK}/import?format=json", content=as_json.content,
        headers={**service.auth(admin), "Content-Type": "application/json"},
    )  # fmt: skip
    assert again.status_code == 201
    diff = await service.http.get(f"{BOOK}/diff?from=2&to=3", headers=service.auth(admin))
    assert (diff.json()["added"], diff.json()["changed"]) == ([], [])


BAD_IMPORTS: list[tuple[bytes, str, str]] = [
    (b"key,title\r\na,b\r\n", "csv", "lacks the columns: question"),
    (
        "key,title,question,answer,category_code,tags\r\n测试,标题,问题,答复,0101,\r\n".encode(
            "gbk"
        ),
        "csv",
        "not UTF-8",
    ),
    (
        b"key,title,question,answer,category_code,tags\r\nok,t,q,a,0101,\r\nbad,t,q,,0101,\r\n",
        "csv",
        "row 3, answer",
    ),
    (
        b"key,title,question,answer,category_code,tags\r\na,t,q,a,0101,x,extra\r\n",
        "csv",
        "row 2: more cells",
    ),
    (b"{not json", "json", "not valid JSON"),
    (b'{"entries": [{"key": "a"}]}', "json", "entry 1, title"),
    (b'"text"', "json", "list of entries"),
]


async def test_bad_import_files_say_where_the_problem_is(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    for content, fmt, words in BAD_IMPORTS:
        response = await service.http.post(
            f"{BOOK}/import?format={fmt}", content=content, headers=service.auth(admin)
        )
        assert words in error_of(response, 422, "invalid_request")["message"], words


async def test_only_the_admin_imports(service: LiveService) -> None:
    agent = await service.add_user(Role.AGENT, NANJING)
    response = await service.http.post(
        f"{BOOK}/import?format=json", content=b"[]", headers=service.auth(agent)
    )
    error_of(response, 403, "forbidden")
    error_of(
        await service.http.get(f"{BOOK}/export?format=xlsx", headers=service.auth(agent)),
        422, "invalid_request",
    )  # fmt: skip
    error_of(
        await service.http.get(f"{BOOK}/export", headers=service.auth(agent)), 404, "not_found"
    )


async def test_adoption_shows_who_is_behind(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    prompt = await service.add_user(Role.AGENT, NANJING, name="prompt")
    slow = await service.add_user(Role.AGENT, NANJING, name="slow")
    helper = await service.add_user(Role.AGENT, XUZHOU, name="helper")
    await publish(service, admin, [entry("testing")])
    await service.http.post(
        "/api/v1/surges",
        json={"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}]},
        headers=service.auth(coordinator),
    )
    adoption = f"{BOOK}/adoption"
    async with (
        service.console(prompt) as one,
        service.console(slow) as two,
        service.console(helper) as three,
    ):
        await three.expect("surge.joined")
        await publish(service, admin, [entry("testing"), entry("new")])
        for console in (one, two, three):
            assert (await console.expect("scripts.updated"))["version"] == 2
        await one.send(type="scripts.ack", city=NANJING, version=2)
        await two.send(type="scripts.ack", city=NANJING, version=1)
        await three.send(type="scripts.ack", city=NANJING, version=2)
        await one.send(type="scripts.ack", city=NANJING, version=9)
        assert (await one.expect("error"))["code"] == "invalid_request"
        await one.send(type="scripts.ack", city="320500", version=1)
        assert (await one.expect("error"))["code"] == "forbidden"
        await asyncio.sleep(0.2)
        view = (await service.http.get(adoption, headers=service.auth(admin))).json()
        assert (view["version"], view["serving"]) == (2, 3)
        assert view["by_version"] == [{"version": 2, "agents": 2}, {"version": 1, "agents": 1}]
        assert [(a["name"], a["version"]) for a in view["behind"]] == [("slow", 1)]
    # Disconnected agents no longer count as serving (once the server has seen them go: the
    # closing handshake ends before it has).
    deadline = time.monotonic() + 5
    while True:
        view = (await service.http.get(adoption, headers=service.auth(coordinator))).json()
        if view["serving"] == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (view["serving"], view["behind"]) == (0, [])
    error_of(await service.http.get(adoption, headers=service.auth(prompt)), 403, "forbidden")
