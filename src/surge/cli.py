"""The `surge` command: serve, migrate, seed, users add/disable/enable/delete/password, report,
simulate.

Each command imports what it needs when it runs, so that a command starts quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from surge import logs
from surge.auth.models import Role, User
from surge.cities import service as cities_service
from surge.db import create_engine, create_sessionmaker
from surge.errors import SurgeError, describe
from surge.files import write_atomically
from surge.settings import Settings

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

T = TypeVar("T")

# Demo users for a laptop run: one of each role, agents in Nanjing (the host in the demo) and
# two helper cities. Passwords are random and printed once.
DEMO_USERS: tuple[tuple[str, Role, str | None], ...] = (
    ("coordinator", Role.COORDINATOR, None),
    ("cti", Role.CTI, None),
    ("nanjing-admin", Role.CITY_ADMIN, "320100"),
    ("nanjing-agent-1", Role.AGENT, "320100"),
    ("nanjing-agent-2", Role.AGENT, "320100"),
    ("suzhou-agent-1", Role.AGENT, "320500"),
    ("wuxi-agent-1", Role.AGENT, "320200"),
)


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on a short-lived engine."""

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _worker_app() -> FastAPI:
    """The app of one `serve --workers` process: its settings read afresh, so each worker is an
    instance of its own (its own instance id, heartbeat and dispatcher)."""
    from surge.app import create_app

    settings = Settings()
    # uvicorn set its loggers to `--log-level` in this process before loading the app.
    logs.configure(
        log_format=settings.log_format, level=logging.getLogger("uvicorn.error").getEffectiveLevel()
    )
    return create_app(settings)


def _workers_refusal(settings: Settings, workers: int) -> str | None:
    """Why `serve` cannot run `workers` processes with these settings, or None."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers == 1:
        return None
    if not settings.uses_redis or settings.database_url.startswith("sqlite"):
        return (
            "--workers N > 1 needs PostgreSQL and Redis (SURGE_DATABASE_URL, SURGE_REDIS_URL): "
            "the embedded SQLite database and in-process hot state cannot be shared by processes"
        )
    if "instance_id" in settings.model_fields_set:
        return "SURGE_INSTANCE_ID names one instance: unset it with --workers (each takes its own)"
    return None


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from surge import migrate
    from surge.app import create_app

    refusal = _workers_refusal(settings, args.workers)
    if refusal is not None:
        print(f"surge: {refusal}", file=sys.stderr)
        return 2
    logs.configure(log_format=settings.log_format, level=args.log_level)
    migrate.upgrade(settings.database_url)
    _reach_hot_state(settings)
    if args.workers > 1:  # uvicorn's supervisor: one socket, N processes, a dead one restarted
        from uvicorn.supervisors import Multiprocess

        config = _uvicorn_config(
            "surge.cli:_worker_app", settings, args, factory=True, workers=args.workers
        )
        with _shared_metrics(settings):
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    server = uvicorn.Server(_uvicorn_config(create_app(settings), settings, args))
    server.run()
    return 0


def _reach_hot_state(settings: Settings) -> None:
    """Refuse to serve, in one line (`StateUnavailable`), when the hot state's Redis cannot be
    reached or is not what the settings say (a standalone server named as a cluster's node):
    the start-up would only fail on it later, with a traceback."""
    if settings.redis_url is None:
        return
    from surge.runtime import make_state

    async def probe() -> None:
        state = make_state(settings)
        try:
            await state.change_mark()
        finally:
            await state.close()

    asyncio.run(probe())


@contextmanager
def _shared_metrics(settings: Settings) -> Iterator[None]:
    """With metrics on, the workers count into files of a fresh folder (prometheus_client's
    multiprocess mode, named by PROMETHEUS_MULTIPROC_DIR), removed when they have stopped."""
    if not settings.metrics_enabled:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="surge-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # for the workers: set before they start
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _uvicorn_config(
    app: FastAPI | str, settings: Settings, args: argparse.Namespace, **more: Any
) -> uvicorn.Config:
    import uvicorn

    from surge.seats.keepalive import websocket_options

    return uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        **websocket_options(settings),
        # Whose X-Forwarded-For names the client (login throttling is per client address).
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_config=None,  # `logs.configure` formats uvicorn's lines too
        access_log=False,  # `surge.logs.RequestIds` logs each request, with its id
        **more,
    )


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from surge import migrate

    applied = migrate.upgrade(settings.database_url)
    for step in applied:
        print(f"applied {step}")
    where = "now" if applied else "already"
    print(f"the database is {where} at the newest revision, {migrate.head()}")
    return 0


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from surge.auth import service as auth_service

    async def work(session: AsyncSession) -> list[tuple[str, Role, str | None, str]]:
        added = await cities_service.seed(session=session)
        print(f"cities: {added} added, {len(cities_service.seed_data()) - added} already there")
        created: list[tuple[str, Role, str | None, str]] = []
        if not args.demo_users:
            return created
        existing = set((await session.execute(select(User.username))).scalars())
        for name, role, city in DEMO_USERS:
            if name in existing:
                continue
            password = secrets.token_urlsafe(12)
            await auth_service.create_user(
                session=session,
                actor=auth_service.CLI,
                username=name,
                password=password,
                role=role,
                city=city,
            )
            created.append((name, role, city, password))
        return created

    created = _in_transaction(settings, work)
    if args.demo_users and not created:
        print("demo users: already created (their passwords were printed when they were made)")
    if created:
        print("demo users (write these down: the passwords are shown only now):")
        for name, role, city, password in created:
            print(f"  {name:<18} {role.value:<12} {city or 'province':<9} {password}")
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise SurgeError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _users_add(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password()

    from surge.auth import service as auth_service

    async def work(session: AsyncSession) -> User:
        return await auth_service.create_user(
            session=session,
            actor=auth_service.CLI,
            username=args.name,
            password=password,
            role=Role(args.role),
            city=args.city,
            endpoint=args.endpoint,
        )

    user = _in_transaction(settings, work)
    print(f"created {user.role} {user.username!r} (id {user.id}, city {user.city_code or '-'})")
    return 0


def _users_change(settings: Settings, args: argparse.Namespace) -> int:
    """`surge users disable|enable|delete|password NAME`: every instance sees it within a second."""
    password = _read_password() if args.users_command == "password" else None

    from surge.auth import service as auth_service

    async def work(session: AsyncSession) -> None:
        user = await auth_service.user_named(session=session, username=args.name)
        if args.users_command == "delete":
            await auth_service.delete_user(session=session, actor=auth_service.CLI, user=user)
        else:
            await auth_service.change_user(
                session=session,
                actor=auth_service.CLI,
                user=user,
                disabled={"disable": True, "enable": False}.get(args.users_command),
                password=password,
            )

    _in_transaction(settings, work)
    done = {"password": "reset the password of"}.get(args.users_command, f"{args.users_command}d")
    print(f"{done} {args.name!r}")
    return 0


def _output_file(out: str) -> Path:
    """The file `--out` names, refused before any work when it cannot be written there."""
    path = Path(out)
    if not out or path.is_dir():
        raise SurgeError(f"--out {out!r} is not a file name")
    if not path.parent.is_dir():
        raise SurgeError(f"--out {out}: there is no folder {path.parent}")
    return path


def _write_output(path: Path, content: bytes) -> None:
    """Write the whole file or none of it; a device or a pipe (/dev/null) is written into, kept."""
    try:
        if path.exists() and not path.is_file():
            with path.open("wb") as file:
                file.write(content)
        else:
            write_atomically(path, content)
    except OSError as exc:
        raise SurgeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    print(f"wrote {path} ({len(content)} bytes)", file=sys.stderr)


def _simulate(_: Settings, args: argparse.Namespace) -> int:
    from surge.sim.engine import simulate
    from surge.sim.scenario import Scenario

    out = None if args.out is None else _output_file(args.out)
    try:
        scenario = Scenario.model_validate_json(Path(args.scenario).read_bytes())
    except OSError as exc:
        raise SurgeError(f"cannot read {args.scenario}: {exc.strerror}") from exc
    except ValidationError as exc:
        problems = "; ".join(describe(e, whole="scenario") for e in exc.errors()[:10])
        raise SurgeError(f"{args.scenario} is not a valid scenario: {problems}") from exc
    started = time.perf_counter()
    result = simulate(scenario)
    elapsed = time.perf_counter() - started
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if out is None:
        print(text)
    else:
        _write_output(out, (text + "\n").encode())
    arrivals = sum(city["offered"] for city in result["cities"])
    print(f"simulated {arrivals} arrivals in {elapsed:.2f} s", file=sys.stderr)
    return 0


def _report_daily(settings: Settings, args: argparse.Namespace) -> int:
    from surge.reports.schemas import Lang, Part, ReportDay, ReportFormat, check_day

    try:
        day = TypeAdapter(ReportDay).validate_python(args.date)
    except ValidationError as exc:
        raise SurgeError(describe(exc.errors()[0], whole=f"--date {args.date}")) from exc
    check_day(day, settings.report_timezone)
    out = None if args.out == "-" else _output_file(args.out)
    if out is None and args.format == "xlsx" and sys.stdout.isatty():
        raise SurgeError("an XLSX workbook is binary: write it to a file (--out FILE) or a pipe")

    from surge.reports import export  # the heavier part, once the arguments are known good
    from surge.reports import service as reports_service
    from surge.scripts.classification import Classification

    classification = Classification.load(settings.classification_file)

    async def work(session: AsyncSession) -> bytes:
        report = await reports_service.daily(
            session=session,
            day=day,
            city=args.city,
            settings=settings,
            classification=classification,
        )
        return export.render(
            report, ReportFormat(args.format), part=Part(args.part), lang=Lang(args.lang)
        )

    content = _in_transaction(settings, work)
    if out is None:
        sys.stdout.buffer.write(content)
    else:
        _write_output(out, content)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line, as API.md lists it."""
    parser = argparse.ArgumentParser(prog="surge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service (migrates the database first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies trusted to name the client in X-Forwarded-For, comma-separated "
        "(default: loopback, or uvicorn's FORWARDED_ALLOW_IPS)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving one port, each a full instance (needs PostgreSQL and Redis)",
    )
    serve.set_defaults(run=_serve)

    commands.add_parser("migrate", help="apply the database migrations").set_defaults(run=_migrate)

    seed = commands.add_parser("seed", help="load the 13 cities (idempotent)")
    seed.add_argument(
        "--demo-users", action="store_true", help="also create demo users with random passwords"
    )
    seed.set_defaults(run=_seed, needs_schema=True)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="create a user; the password is read from standard input")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.add_argument("--city", help="6-digit city code (city_admin, agent; optional for cti)")
    add.add_argument("--endpoint", help="an agent's SIP URI or extension")
    add.set_defaults(run=_users_add, needs_schema=True)
    for verb, does in (
        ("disable", "refuse the user's logins and withdraw its tokens and sockets at once"),
        ("enable", "let a disabled user log in again (its old tokens stay withdrawn)"),
        ("delete", "remove a user that no call's history names (disable the others)"),
        ("password", "set a new password (from standard input) and withdraw the user's tokens"),
    ):
        change = users.add_parser(verb, help=does)
        change.add_argument("name")
        change.set_defaults(run=_users_change, needs_schema=True)

    report = commands.add_parser("report", help="the daily data report").add_subparsers(
        dest="report_command", required=True
    )
    daily = report.add_parser("daily", help="write the daily report of a day (and city)")
    daily.add_argument("--date", required=True, help="the local day, YYYY-MM-DD")
    daily.add_argument("--city", help="a 6-digit city code (default: the whole province)")
    daily.add_argument("--format", required=True, choices=["json", "csv", "xlsx"])
    daily.add_argument(
        "--part",
        default="summary",
        choices=["summary", "helpers", "hourly", "staffing"],
        help="the table a CSV holds (JSON and XLSX hold every part)",
    )
    daily.add_argument("--lang", default="zh", choices=["zh", "en"], help="CSV/XLSX headers")
    daily.add_argument("--out", required=True, help="the file to write, or - for standard output")
    daily.set_defaults(run=_report_daily, needs_schema=True)

    simulate = commands.add_parser(
        "simulate", help="run a scenario on virtual time through the routing policy"
    )
    simulate.add_argument(
        "scenario",
        help="a scenario JSON file: its fields are in docs/API.md (Simulator) and docs/API-2.md "
        "(Simulator additions); examples in loadtests/scenarios/",
    )
    simulate.add_argument("--out", help="write the result here instead of standard output")
    simulate.set_defaults(run=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `surge` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"surge: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if getattr(args, "needs_schema", False):
            _require_schema(settings)
        code: int = args.run(settings, args)
    except SurgeError as exc:
        print(f"surge: {exc.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:  # the database is down or refused: one line
        print(f"surge: {_first_line(exc)}", file=sys.stderr)
        return 1
    return code


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return logs.redact(text.splitlines()[0])


def _require_schema(settings: Settings) -> None:
    """Refuse to work on a database the migrations have not brought to the newest revision."""
    from surge import migrate

    url = make_url(settings.database_url)
    file = url.database if url.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not file.startswith("file:") and not Path(file).exists():
        # Opening it would create an empty file there (a mistyped path would then look like
        # a database to migrate).
        raise SurgeError(f"there is no database at {file}: `surge migrate` creates it")
    if not migrate.is_current(settings.database_url):
        raise SurgeError(
            "the database is not migrated to this version of Surge: run `surge migrate` first"
        )


if __name__ == "__main__":
    sys.exit(main())
