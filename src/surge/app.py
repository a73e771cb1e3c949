"""The app factory: routes, error rendering, request limits, and the lifespan owning resources."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surge import metrics
from surge.auth import api as auth_api
from surge.auth.directory import UserDirectory
from surge.calls import api as calls_api
from surge.calls.transitions import CallbackPolicy, Transitions
from surge.cities import api as cities_api
from surge.cities.monitor import PressureMonitor
from surge.cities.service import CityRegistry
from surge.db import HotConnections, OutageLog, create_engine, create_sessionmaker, is_outage
from surge.direct import shortcuts
from surge.errors import PayloadTooLarge, SurgeError, describe
from surge.hotspots import api as hotspots_api
from surge.hotspots.service import HotspotWatch
from surge.logs import RequestIds
from surge.reports import api as reports_api
from surge.reports.schedule import ScheduledExport
from surge.router import recovery
from surge.router.dispatcher import Dispatcher
from surge.runtime import Runtime, make_state
from surge.scripts import api as scripts_api
from surge.scripts.classification import Classification
from surge.scripts.holds import ScriptHolds
from surge.scripts.search import BookIndex
from surge.seats import api as seats_api
from surge.seats.gateway import Gateway
from surge.settings import Settings
from surge.supervision import api as supervision_api
from surge.surges import api as surges_api
from surge.surges.autopilot import Autopilot
from surge.surges.roster import SurgeRoster

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_SCRIPT_BOOK = re.compile(r"^/api/v1/cities/[0-9]{6}/scripts(/rollback|/import)?$")
SHUTDOWN_WAIT_S = 5.0
JOIN_WAIT_S = 2.0  # how long start-up waits for the other instances to know this one listens
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BodyLimit:
    """Refuse request bodies over the limit with 413, whether or not they announce their size.

    Script books (`POST /cities/{code}/scripts`) may be larger than other bodies.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_script_book_bytes: int) -> None:
        self.app = app
        self.default = max_bytes
        self.script_books = max_script_book_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        books = _SCRIPT_BOOK.match(scope["path"])
        limit = self.script_books if books else self.default
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await self._refuse(limit, scope, receive, send)
                return
            if b"transfer-encoding" not in headers:
                # Framed by its length alone: the server delivers no more than it declared.
                await self.app(scope, receive, send)
                return
        # Read the body first (it is small by definition), so the answer can be a clean 413.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                await self._refuse(limit, scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = PayloadTooLarge(f"a request body here may be at most {limit} bytes")
        await _error(too_large.status, too_large.code, too_large.message)(scope, receive, send)


def _install_error_handlers(app: FastAPI, outages: OutageLog) -> None:
    @app.exception_handler(SurgeError)
    async def surge_error(_: Request, exc: SurgeError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [describe(problem, whole="body") for problem in exc.errors()[:5]]
        return _error(422, "invalid_request", "; ".join(problems) or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode: bad input
            return _error(422, "invalid_request", "body: not valid JSON (not UTF-8 text)")
        code = _HTTP_CODES.get(exc.status_code, "invalid_request")
        return _error(exc.status_code, code, str(exc.detail))

    # Handlers for these classes run in the ExceptionMiddleware, which answers and keeps the
    # connection; the catch-all `Exception` handler runs in the ServerErrorMiddleware, which
    # re-raises after answering, so uvicorn logs a traceback and closes the connection.
    async def database_error(_: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):
            error = outages.failed(exc)
            return _error(error.status, error.code, error.message)
        log.exception("unexpected database error", exc_info=exc)
        return _error(500, "internal_error", "something went wrong on our side; it was logged")

    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(OSError, database_error)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _error(500, "internal_error", "something went wrong on our side; it was logged")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for `settings` (read from the environment when not given)."""
    settings = settings or Settings()
    classification = Classification.load(settings.classification_file)  # fail fast if invalid
    outages = OutageLog()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout_s=settings.db_pool_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
            command_timeout_s=settings.db_command_timeout_s,
        )
        outages.watch(engine)
        hot = HotConnections(engine, pool_size=settings.db_pool_size)
        sessions = create_sessionmaker(engine)
        state = make_state(settings)
        cities = CityRegistry(sessions)
        gateway = Gateway(state, instance=settings.instance_id, shared=settings.uses_redis)
        surges = SurgeRoster(settings=settings, sessions=sessions)
        holds = ScriptHolds(sessions=sessions)

        async def calling_back() -> frozenset[str]:
            return (await surges.current()).calling_back

        transitions = Transitions(
            state=state,
            hot=hot,
            sessions=sessions,
            instance=settings.instance_id,
            classification=classification,
            announce=gateway.announce,
            hand_over=gateway.hand_over,
            cities=cities,
            wrap_up_s=settings.wrap_up_s,
            transfer_limit=settings.transfer_limit,
            offer_timeout_s=settings.offer_timeout_s,
            callbacks=CallbackPolicy(
                on_abandon=settings.callback_on_abandon,
                after_abandon_s=settings.report_short_abandon_s,
                retry_s=settings.callback_retry_s,
                attempts=settings.callback_attempts,
                on_abandon_in=calling_back,
            ),
        )
        dispatcher = Dispatcher(
            settings=settings,
            state=state,
            sessions=sessions,
            cities=cities,
            surges=surges,
            transitions=transitions,
            announce=gateway.announce,
            holds=holds,
        )
        transitions.poke = dispatcher.poke  # a call queued again or an agent freed
        transitions.agent_freed = dispatcher.agent_freed

        def surges_changed() -> None:
            surges.changed()
            dispatcher.poke()  # the next cycle routes by the changed surges

        gateway.on_surges_changed = surges_changed

        def holds_changed() -> None:
            holds.changed()
            dispatcher.poke()  # an acknowledgement may free an agent for the city's calls

        gateway.on_holds_changed = holds_changed
        watch = recovery.StateWatch(
            settings=settings,
            state=state,
            sessions=sessions,
            transitions=transitions,
            gateway=gateway,
            poke=dispatcher.poke,
        )
        monitor = PressureMonitor(settings=settings, state=state, sessions=sessions, cities=cities)
        monitor.after_survey = Autopilot(
            settings=settings, sessions=sessions, cities=cities, announce=gateway.announce
        )
        exporter = (
            ScheduledExport(settings=settings, sessions=sessions, classification=classification)
            if settings.report_export_dir is not None
            else None
        )
        users = UserDirectory(sessions, refresh_s=settings.user_refresh_s)
        hotspots = HotspotWatch(
            settings=settings,
            state=state,
            sessions=sessions,
            classification=classification,
            announce=gateway.announce,
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            await cities.load()
            await users.load()
            await watch.rebuild()
            app.state.runtime = Runtime(
                settings=settings,
                engine=engine,
                hot=hot,
                sessions=sessions,
                state=state,
                cities=cities,
                gateway=gateway,
                dispatcher=dispatcher,
                transitions=transitions,
                surges=surges,
                pressure=monitor,
                classification=classification,
                script_index=BookIndex(),
                holds=holds,
                users=users,
            )
            tasks = [
                asyncio.create_task(dispatcher.run(), name="dispatch"),
                asyncio.create_task(dispatcher.maintain(), name="offer-maintenance"),
                asyncio.create_task(monitor.run(), name="pressure"),
                asyncio.create_task(users.run(gateway.close_withdrawn), name="user-refresh"),
                asyncio.create_task(watch.run(), name="hot-state-watch"),
                asyncio.create_task(hotspots.run(), name="hotspot-check"),
            ]
            if settings.uses_redis:
                tasks.append(asyncio.create_task(gateway.listen(), name="event-listener"))
                # What the other instances send for this one's sockets from now on reaches it.
                await gateway.join(within_s=JOIN_WAIT_S)
            if exporter is not None:
                tasks.append(asyncio.create_task(exporter.run(), name="report-export"))
            # What start-up made (the modules, the registries) lives as long as the instance:
            # kept out of the collector's full passes, which otherwise walk it about once a
            # second under load, each a pause of tens of milliseconds in every answer waiting.
            gc.collect()
            gc.freeze()
            yield
        finally:
            gc.unfreeze()  # collectable again once the instance stops (tests start many)
            dispatcher.stop()
            monitor.stop()
            users.stop()
            watch.stop()
            hotspots.stop()
            gateway.stop()
            if exporter is not None:
                exporter.stop()
            for task in tasks:
                task.cancel()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
                for task in stuck:
                    log.warning("task %s did not stop within %ss", task.get_name(), SHUTDOWN_WAIT_S)
            await state.close()
            await hot.close()
            await engine.dispose()

    app = FastAPI(
        title="Surge",
        version="0.1.0",
        summary="Many-help-one overflow routing between a province's 12345 hotlines",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        max_script_book_bytes=settings.max_script_book_bytes,
    )
    app.add_middleware(RequestIds)  # outermost: every answer, a 413 included, carries the id
    _install_error_handlers(app, outages)
    for module in (
        auth_api, cities_api, calls_api, surges_api, scripts_api, reports_api, supervision_api,
        hotspots_api,
    ):  # fmt: skip
        app.include_router(module.router, prefix=API_PREFIX)
    # POST /calls, the hottest route, is matched before the routers' dozens of others.
    app.router.routes[:0] = shortcuts(calls_api.router, prefix=API_PREFIX)
    app.include_router(seats_api.router)
    app.mount("/console", StaticFiles(packages=[("surge", "web")], html=True), name="console")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        """The browser consoles."""
        return RedirectResponse("/console/")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> RedirectResponse:
        """Browsers ask the root for it; the consoles' folder has it."""
        return RedirectResponse("/console/favicon.ico", status_code=308)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        responses={503: {"description": "Not ready: the same body, naming the failing check"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """The database and the hot state answer."""
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {type(exc).__name__}"
        try:
            await runtime.state.ping()
            checks["state"] = "ok"
        except SurgeError as exc:
            checks["state"] = f"failing: {exc.message}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    if settings.metrics_enabled:

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics(request: Request) -> Response:
            """Prometheus metrics (no token: `SURGE_METRICS_ENABLED` exposes them on purpose)."""
            runtime: Runtime = request.app.state.runtime
            try:
                views = await runtime.state.snapshot(runtime.cities.codes, queue_depth=0)
            except SurgeError:  # the hot state is down: its errors are what matter now
                views = {}
            body = metrics.exposition(metrics.live_figures(views, now=time.time()))
            return Response(body, media_type=metrics.CONTENT_TYPE)

    return app
