"""The consoles are served by the service itself: static pages, no CDN; the categories they list."""

from __future__ import annotations

import re
from importlib import resources

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.helpers import LiveService


async def test_the_consoles_are_served_without_a_token(service: LiveService) -> None:
    home = await service.http.get("/", follow_redirects=False)
    assert home.status_code == 307
    assert home.headers["location"] == "/console/"

    page = await service.http.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in page.text
    script = await service.http.get("/console/js/agent.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    missing = await service.http.get("/console/js/nothing.js")
    assert missing.status_code == 404


async def test_the_browser_finds_the_icon_where_it_asks(service: LiveService) -> None:
    asked = await service.http.get("/favicon.ico", follow_redirects=False)
    assert asked.status_code == 308
    assert asked.headers["location"] == "/console/favicon.ico"

    icon = await service.http.get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200
    assert icon.headers["content-type"] in {"image/vnd.microsoft.icon", "image/x-icon"}
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header: reserved 0, type 1
    page = await service.http.get("/console/")
    assert '<link rel="icon" href="favicon.ico">' in page.text


def test_no_console_file_loads_anything_from_another_host() -> None:
    web = resources.files("surge") / "web"
    files = [
        p
        for p in web.rglob("*")  # type: ignore[attr-defined]
        if p.is_file() and p.suffix in {".html", ".js", ".css"}
    ]
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        outside = re.findall(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", text)
        assert outside == [], f"{path.name} loads from another host"
        assert "cdn." not in text.lower(), path.name


async def test_the_classification_is_listed_for_ticket_forms(service: LiveService) -> None:
    agent = await service.add_user(Role.AGENT, "320100")

    response = await service.http.get("/api/v1/categories", headers=service.auth(agent))

    assert response.status_code == 200
    categories = {c["code"]: c for c in response.json()}
    assert categories["0101"]["name"] == "核酸检测咨询"
    assert categories["0101"]["kind"] == "consultation"
    assert categories["0202"]["kind"] == "other"
    error_of(await service.http.get("/api/v1/categories"), 401, "unauthorized")
