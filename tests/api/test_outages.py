"""A database outage is answered with 503 in the contract's shape, and the service recovers."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from surge.auth.models import Role
from tests.conftest import PG_ADMIN_URL, Backend
from tests.helpers import run_service

NANJING = "320100"
CALL = {"city": NANJING, "caller": "13812345678", "channel": "phone"}


async def set_reachable(database: str, reachable: bool) -> None:
    """Let the database take connections again, or refuse new ones and cut the open ones."""
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as admin:
            flag = "true" if reachable else "false"
            await admin.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {flag}'))
            if not reachable:
                await admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                    ),
                    {"d": database},
                )
    finally:
        await engine.dispose()


async def test_database_outage_is_a_503_and_passes(shared_backend: Backend) -> None:
    database = make_url(shared_backend.database_url).database
    assert database is not None
    async with run_service(shared_backend.settings()) as service:
        cti = await service.add_user(Role.CTI)
        call = {"city": NANJING, "caller": "13812345678", "channel": "phone"}
        await set_reachable(database, False)
        try:
            response = await service.http.post(
                "/api/v1/calls", json=call, headers=service.auth(cti)
            )
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "service_unavailable"
            ready = await service.http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["state"] == "ok"
            assert ready.json()["checks"]["database"].startswith("failing")
        finally:
            await set_reachable(database, True)
        response = await service.http.post("/api/v1/calls", json=call, headers=service.auth(cti))
        assert response.status_code == 201
        assert (await service.http.get("/readyz")).status_code == 200


async def test_every_request_in_a_database_outage_is_answered_on_the_same_connection(
    shared_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """N requests over one keep-alive connection: all 503, none dropped, no traceback each."""
    database = make_url(shared_backend.database_url).database
    assert database is not None
    async with run_service(shared_backend.settings()) as service:
        cti = await service.add_user(Role.CTI)
        made = await service.post_call(cti, NANJING)
        connects: list[str] = []

        async def trace(name: str, _: object) -> None:
            if name == "connection.connect_tcp.complete":
                connects.append(name)

        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=service.base_url, timeout=10, limits=limits, headers=service.auth(cti)
        ) as client:
            assert (await client.get("/healthz", extensions={"trace": trace})).status_code == 200
            await set_reachable(database, False)
            caplog.clear()
            answers: list[httpx.Response] = []
            try:
                for i in range(30):
                    requests = (
                        client.build_request("POST", "/api/v1/calls", json=CALL),
                        client.build_request("GET", f"/api/v1/calls/{made['id']}"),
                        client.build_request(
                            "POST", f"/api/v1/calls/{made['id']}/feedback", json={"score": 5}
                        ),
                    )
                    request = requests[i % len(requests)]
                    request.extensions["trace"] = trace
                    answers.append(await client.send(request))
            finally:
                await set_reachable(database, True)
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [a.status_code for a in answers] == [503] * 30
    assert {a.json()["error"]["code"] for a in answers} == {"service_unavailable"}
    assert len(connects) == 1, "the keep-alive connection was dropped"
    assert not [r for r in lines if r.exc_info], "a traceback was logged"
    outage_lines = [r for r in lines if r.name != "surge.loops"]
    assert len(outage_lines) <= 1, [r.getMessage() for r in outage_lines]
