"""A database outage is answered with 503 in the contract's shape, and the service recovers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from surge.auth.models import Role
from tests.api.test_metrics import scrape, value
from tests.conftest import PG_ADMIN_URL, Backend
from tests.helpers import Console, LiveService, private_redis, run_service

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
    async with run_service(shared_backend.settings(metrics_enabled=True)) as service:
        cti = await service.add_user(Role.CTI)
        made = await service.post_call(cti, NANJING)
        connects: list[str] = []
        before = await scrape(service)

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
        errors = {"backend": "database"}
        counted = value(await scrape(service), "surge_backend_errors_total", **errors)
        assert counted >= value(before, "surge_backend_errors_total", **errors) + 30
    assert [a.status_code for a in answers] == [503] * 30
    assert {a.json()["error"]["code"] for a in answers} == {"service_unavailable"}
    assert len(connects) == 1, "the keep-alive connection was dropped"
    assert not [r for r in lines if r.exc_info], "a traceback was logged"
    outage_lines = [r for r in lines if r.name != "surge.loops"]
    assert len(outage_lines) <= 1, [r.getMessage() for r in outage_lines]


class FreezingProxy:
    """A TCP proxy to the database that can stop passing bytes: a server that does not answer."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and the listener."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if not self.flowing.is_set():
            return  # accepted, never answered
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers.append(upstream_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await source.read(65536):
                    await self.flowing.wait()  # hold every byte: nothing gets an answer
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_a_database_that_does_not_answer_is_a_503_in_bounded_time(
    shared_backend: Backend,
) -> None:
    """Connections that hang (not refused): every request is still answered, and soon."""
    url = make_url(shared_backend.database_url)
    proxy = FreezingProxy(url.port or 5432)
    await proxy.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = shared_backend.settings(
        database_url=through_proxy,
        db_pool_timeout_s=1.0,
        db_connect_timeout_s=1.0,
        db_command_timeout_s=1.0,
    )
    try:
        async with run_service(settings) as service:
            cti = await service.add_user(Role.CTI)
            made = await service.post_call(cti, NANJING)
            proxy.flowing.clear()
            started = time.monotonic()

            async def one(i: int) -> int:
                path = "/api/v1/calls" if i % 2 else f"/api/v1/calls/{made['id']}"
                method = "POST" if i % 2 else "GET"
                response = await service.http.request(
                    method, path, json=CALL if i % 2 else None, headers=service.auth(cti)
                )
                return response.status_code

            statuses = await asyncio.gather(*(one(i) for i in range(40)))
            elapsed = time.monotonic() - started
            proxy.flowing.set()
            for _ in range(50):  # connections the freeze broke are replaced
                response = await service.http.post(
                    "/api/v1/calls", json=CALL, headers=service.auth(cti)
                )
                if response.status_code == 201:
                    break
                await asyncio.sleep(0.2)
            assert response.status_code == 201, response.text
    finally:
        await proxy.stop()
    print(f"\ndatabase not answering: {statuses.count(503)}/{len(statuses)} answered 503 "
          f"in {elapsed:.1f} s")  # fmt: skip
    assert statuses == [503] * 40
    assert elapsed < 8


async def waiting_in(service: LiveService, viewer: str, city: str) -> int:
    """The city's queue depth in `GET /cities`."""
    cities = (await service.http.get("/api/v1/cities", headers=service.auth(viewer))).json()
    return int(next(c for c in cities if c["code"] == city)["waiting"])


async def test_a_call_answered_503_by_a_redis_refusing_writes_is_queued_without_a_retry(
    shared_backend: Backend, tmp_path: Path
) -> None:
    """Redis keeps its data but fails a write after the call was recorded: nothing is stranded."""
    async with private_redis(tmp_path) as redis:
        backend = replace(shared_backend, redis_url=redis.url)
        settings = backend.settings(state_rebuild_s=2.0, metrics_enabled=True)
        async with run_service(settings) as service:
            cti = await service.add_user(Role.CTI, NANJING)
            agent = await service.add_user(Role.AGENT, NANJING)
            before = await scrape(service)
            await redis.configure("maxmemory", "1")  # every write refused (noeviction)
            try:
                body = {"city": NANJING, "caller": "13812345678", "channel": "phone"}
                refused = await service.http.post(
                    "/api/v1/calls", json=body, headers=service.auth(cti)
                )
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "state_unavailable"
            finally:
                await redis.configure("maxmemory", "0")
            errors = {"backend": "redis"}
            counted = value(await scrape(service), "surge_backend_errors_total", **errors)
            assert counted >= value(before, "surge_backend_errors_total", **errors) + 1
            # No retry comes (the call had no external_id): the watcher puts it in its queue.
            deadline = time.monotonic() + 4.0
            while await waiting_in(service, cti, NANJING) != 1:
                assert time.monotonic() < deadline, "the recorded call was never queued"
                await asyncio.sleep(0.1)
            async with service.console(agent) as console:
                await console.available()
                assert (await console.expect("offer"))["call"]["city"] == NANJING


async def test_an_offer_a_redis_restarted_empty_lost_is_requeued_and_announced(
    backend: Backend, tmp_path: Path
) -> None:
    """The rebuild records the lost offer's end: `call.requeued` `recovered` to the telephony,
    `offer.revoked` `recovered` to the agent, the reason in the call's history."""
    async with private_redis(tmp_path) as redis:
        settings = replace(backend, redis_url=redis.url).settings(
            state_rebuild_s=2.0, offer_timeout_s=60.0, metrics_enabled=True
        )
        async with run_service(settings) as service:
            cti = await service.add_user(Role.CTI, NANJING)
            agent = await service.add_user(Role.AGENT, NANJING)
            cti_url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
            async with websockets.connect(cti_url) as socket, service.console(agent) as console:
                telephony = Console(socket)
                await telephony.expect("hello")
                await console.available()
                call = await service.post_call(cti, NANJING)
                offer = await console.expect("offer")
                assert (await telephony.expect("call.offered"))["offer_id"] == offer["offer_id"]
                before = await scrape(service)

                await redis.kill()
                await redis.start()  # empty, same port

                requeued = await telephony.expect("call.requeued", within=5.0)
                assert (requeued["call_id"], requeued["reason"]) == (call["id"], "recovered")
                revoked = await console.expect("offer.revoked", within=5.0)
                assert revoked == {
                    "type": "offer.revoked",
                    "offer_id": offer["offer_id"],
                    "reason": "recovered",
                }
            rebuilt = value(before, "surge_state_rebuilds_total") + 1
            deadline = time.monotonic() + 5.0  # counted once its agents are registered again
            while value(await scrape(service), "surge_state_rebuilds_total") != rebuilt:
                assert time.monotonic() < deadline, "the rebuild was not counted"
                await asyncio.sleep(0.1)
            read = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))
            history = read.json()["history"]
            assert [(e["to_status"], e["reason"]) for e in history][:3] == [
                ("queued", None),
                ("offered", None),
                ("queued", "recovered"),
            ]


async def test_an_offer_that_ended_while_the_database_was_down_is_offered_again(
    shared_backend: Backend,
) -> None:
    """The hot state requeued an expired offer but the database missed it: the console is told
    at once all the same (not left ringing a dead offer), and the call is healed, not stuck."""
    database = make_url(shared_backend.database_url).database
    assert database is not None
    async with run_service(shared_backend.settings(offer_timeout_s=1.0)) as service:
        cti = await service.add_user(Role.CTI, NANJING)
        agent = await service.add_user(Role.AGENT, NANJING)
        async with service.console(agent) as console:
            await console.available()
            call = await service.post_call(cti, NANJING)
            first = await console.expect("offer")
            await set_reachable(database, False)
            try:  # the offer expires; recording its end fails
                revoked = await console.expect("offer.revoked", within=3.0)
                assert revoked == {
                    "type": "offer.revoked",
                    "offer_id": first["offer_id"],
                    "reason": "expired",
                }
                assert (await console.expect("state", within=1.0)) == {
                    "type": "state",
                    "state": "break",
                    "reason": "missed_offer",
                }
            finally:
                await set_reachable(database, True)
            await console.send(type="status", state="available")
            again = None
            deadline = time.monotonic() + 8.0
            while again is None:
                assert time.monotonic() < deadline, "the call was never offered again"
                with contextlib.suppress(TimeoutError):
                    frame = await console.recv(within=1.0)
                    if frame["type"] == "offer":
                        again = frame
                    elif frame["type"] == "state" and frame["state"] == "break":
                        await console.send(type="status", state="available")
            assert again["call"]["id"] == call["id"]
            assert again["offer_id"] != first["offer_id"]
            await console.send(type="accept", offer_id=again["offer_id"])
            await console.expect("call.connected")
        read = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))
        assert read.json()["status"] == "connected"
