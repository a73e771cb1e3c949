"""A database outage is answered with 503 in the contract's shape, and the service recovers."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from surge.auth.models import Role
from tests.conftest import PG_ADMIN_URL, Backend
from tests.helpers import run_service

NANJING = "320100"


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
