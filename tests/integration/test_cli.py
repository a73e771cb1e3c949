"""The `surge` command as an operator uses it: migrate, seed, users add, and its errors."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import stat
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import make_url

from surge import migrate
from surge.auth.models import Role
from tests.api.test_reports import load_the_day
from tests.conftest import PG_ADMIN_URL, Backend, admin_sql, make_backend, unavailable
from tests.helpers import run_service, seed, surge_commands
from tests.integration.conftest import SURGE


async def surge(backend: Backend, *args: str, stdin: str = "") -> tuple[int, str]:
    """Run `surge ARGS` against the backend; return its exit code and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        SURGE,
        *args,
        env={**os.environ, **backend.env()},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_seed_is_idempotent_and_prints_demo_passwords_once(backend: Backend) -> None:
    assert (await surge(backend, "migrate"))[0] == 0
    code, first = await surge(backend, "seed", "--demo-users")
    assert code == 0
    assert "cities: 13 added" in first
    passwords = re.findall(r"^\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", first, re.MULTILINE)
    assert {row[0] for row in passwords} >= {"coordinator", "cti", "nanjing-agent-1"}
    assert len({row[3] for row in passwords}) == len(passwords)  # random, never a shared default
    code, second = await surge(backend, "seed", "--demo-users")
    assert code == 0
    assert "cities: 0 added, 13 already there" in second
    assert "already created" in second
    assert all(row[3] not in second for row in passwords)
    async with run_service(backend.settings()) as service:
        name, _, _, password = next(row for row in passwords if row[0] == "coordinator")
        response = await service.http.post(
            "/api/v1/auth/token", json={"username": name, "password": password}
        )
        assert response.status_code == 200
        assert response.json()["role"] == "coordinator"


async def test_users_add_reads_the_password_from_stdin(backend: Backend) -> None:
    await surge(backend, "seed")
    code, output = await surge(
        backend,
        "users",
        "add",
        "li-lei",
        "--role",
        "agent",
        "--city",
        "321000",
        stdin="a-long-password\n",
    )
    assert code == 0, output
    assert "created agent 'li-lei'" in output
    async with run_service(backend.settings()) as service:
        response = await service.http.post(
            "/api/v1/auth/token", json={"username": "li-lei", "password": "a-long-password"}
        )
        assert response.status_code == 200
        assert response.json()["city"] == "321000"
        assert response.json()["agent_id"] is not None


USERS_ADD_MISTAKES: list[tuple[tuple[str, ...], str, str]] = [
    (("users", "add", "x1", "--role", "agent", "--city", "320100"), "short\n", "8 characters"),
    (("users", "add", "x2", "--role", "agent", "--city", "999999"), "long-enough\n", "999999"),
    (("users", "add", "x3", "--role", "agent"), "long-enough\n", "--city"),
    (
        ("users", "add", "x4", "--role", "coordinator", "--city", "320100"),
        "long-enough\n",
        "province-wide",
    ),
    (("users", "add", "bad name", "--role", "cti"), "long-enough\n", "username"),
]


async def test_users_add_refuses_bad_input_clearly(backend: Backend) -> None:
    await seed(backend.settings())
    for args, stdin, message in USERS_ADD_MISTAKES:
        code, output = await surge(backend, *args, stdin=stdin)
        assert code == 1, args
        assert message in output, (args, output)
        assert "Traceback" not in output


async def test_users_add_refuses_a_duplicate_and_a_bad_role(backend: Backend) -> None:
    await surge(backend, "seed")
    args = ("users", "add", "wang", "--role", "cti")
    assert (await surge(backend, *args, stdin="long-enough\n"))[0] == 0
    code, output = await surge(backend, *args, stdin="long-enough\n")
    assert (code, "already exists" in output) == (1, True)
    code, output = await surge(backend, "users", "add", "zhao", "--role", "king")
    assert code == 2
    assert "invalid choice" in output


async def test_production_refuses_to_start_without_a_secret(
    backend: Backend, tmp_path: Path
) -> None:
    env = {**os.environ, **backend.env(), "SURGE_SECRET_KEY": "changeme"}
    process = await asyncio.create_subprocess_exec(
        SURGE,
        "migrate",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 2
    assert b"SURGE_SECRET_KEY" in output


async def test_migrate_says_what_it_applied(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SURGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
        "SURGE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "SURGE_ENVIRONMENT": "production",
    }
    shipped = [
        path.name
        for path in (Path(migrate.__file__).parent / "migrations" / "versions").glob("0*.py")
    ]

    async def run() -> list[str]:
        process = await asyncio.create_subprocess_exec(
            SURGE, "migrate", env=env, stdout=asyncio.subprocess.PIPE
        )
        output, _ = await process.communicate()
        assert process.returncode == 0
        return output.decode().splitlines()

    first = await run()
    applied = [line for line in first if line.startswith("applied ")]
    assert len(applied) == len(shipped)
    assert applied[0].startswith("applied 0001: ")
    assert all(len(line) > len("applied 0001: ") for line in applied)  # each says what it did
    assert first[-1] == f"the database is now at the newest revision, {migrate.head()}"
    assert await run() == [f"the database is already at the newest revision, {migrate.head()}"]


SCENARIOS = Path(__file__).resolve().parents[2] / "loadtests" / "scenarios"


async def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `surge ARGS` with no backend; return exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        SURGE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("name", ["quiet_day", "nanjing_2021_07_25", "yangzhou_2021_08"])
async def test_simulate_runs_the_shipped_scenarios(name: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    code, _, err = await run_cli("simulate", str(SCENARIOS / f"{name}.json"), "--out", str(out))
    assert code == 0, err
    assert "arrivals in" in err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert len(result["cities"]) == 13
    fields = {
        "code",
        "offered",
        "answered",
        "abandoned",
        "answered_by_helpers",
        "asa_s",
        "service_level",
        "connection_rate",
        "occupancy",
        "callbacks_reached",
    }
    lending = "own_service_level_while_lending"  # only in a helper city's row
    assert all(set(row) - {lending} == fields for row in result["cities"])
    lenders = {row["code"] for row in result["cities"] if lending in row}
    assert {row["city"] for row in result["helpers"]} <= lenders
    for row in result["cities"]:
        assert row["answered"] + row["abandoned"] <= row["offered"]
    helped = sum(row["answered_by_helpers"] for row in result["cities"])
    assert (helped > 0) == (name != "quiet_day")


async def test_simulate_explains_a_bad_scenario(tmp_path: Path) -> None:
    invalid, broken = tmp_path / "invalid.json", tmp_path / "broken.json"
    invalid.write_text('{"seed": 1, "duration_s": -5, "cities": []}', encoding="utf-8")
    broken.write_text("{not json", encoding="utf-8")
    scenario = str(SCENARIOS / "quiet_day.json")
    mistakes = [
        ([str(invalid)], "duration_s"),
        ([str(tmp_path / "missing.json")], "cannot read"),
        ([str(broken)], "is not a valid scenario: scenario: not valid JSON"),
        ([scenario, "--out", str(tmp_path / "no" / "r.json")], "there is no folder"),
    ]
    answers = await asyncio.gather(*(run_cli("simulate", *args) for args, _ in mistakes))
    for (args, message), (code, _, err) in zip(mistakes, answers, strict=True):
        assert (code, message in err, "Traceback" in err) == (1, True, False), (args, err)


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


async def test_report_daily_writes_what_the_api_serves(backend: Backend, tmp_path: Path) -> None:
    await seed(backend.settings())
    await load_the_day(backend.settings())
    out = tmp_path / "nanjing.json"

    code, output = await surge(
        backend, "report", "daily", "--date", "2021-07-25", "--city", "320100",
        "--format", "json", "--out", str(out),
    )  # fmt: skip

    assert code == 0, output
    written = json.loads(read_bytes(out))
    async with run_service(backend.settings()) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        served = await service.http.get(
            "/api/v1/reports/daily",
            params={"date": "2021-07-25", "city": "320100"},
            headers=service.auth(coordinator),
        )
    from_api = served.json()
    for report in (written, from_api):
        del report["generated_at"]
    assert written == from_api
    assert written["cities"][0]["received"] == 8

    code, output = await surge(
        backend, "report", "daily", "--date", "2021-07-25", "--format", "csv",
        "--part", "hourly", "--lang", "en", "--out", "-",
    )  # fmt: skip
    assert code == 0
    lines = output.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("code,hour,received,answered")
    assert len(lines) == 1 + 24 * 14
    codes = Counter(line.split(",")[0] for line in lines[1:])
    assert codes["province"] == 24  # the province's rows say so, like the cities' their codes
    assert len(codes) == 14
    assert all(len(code) == 6 for code in codes if code != "province")

    book = tmp_path / "province.xlsx"
    code, _ = await surge(
        backend, "report", "daily", "--date", "2021-07-25", "--format", "xlsx", "--out", str(book)
    )
    assert code == 0
    assert "概要" in load_workbook(book).sheetnames


REPORT_MISTAKES: list[tuple[list[str], str]] = [
    (["--date", "2021-02-30", "--format", "json"], "day value is outside expected range"),
    (["--date", "20210725", "--format", "json"], "expected a day written YYYY-MM-DD"),
    (["--date", "2021-W29-7", "--format", "json"], "expected a day written YYYY-MM-DD"),
    (["--date", "0001-01-01", "--format", "json"], "reports begin on 1970-01-01"),
    (["--date", "2999-01-01", "--format", "json"], "has not happened yet"),
    (["--date", "2021-07-25", "--city", "999999", "--format", "json"], "no city with code"),
    (["--date", "2021-07-25", "--format", "pdf"], "invalid choice: 'pdf'"),
]


async def test_report_daily_explains_bad_input_and_writes_into_a_pipe(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Argument checks do not depend on the database: the embedded one is enough.

    `--out` a pipe or a device (/dev/stdout, /dev/null) writes into it; it stays what it is.
    """
    async with make_backend("embedded", request, tmp_path) as backend:
        await seed(backend.settings())
        out = tmp_path / "report"
        day = ["--date", "2021-07-25", "--format", "csv"]
        mistakes = [(args, "--out", str(out), message) for args, message in REPORT_MISTAKES] + [
            (day, "--out", str(tmp_path / "missing" / "r.csv"), "there is no folder"),
            (day, "--out", str(tmp_path), "is not a file name"),
            (day, "--out", "", "is not a file name"),
        ]
        answers = await asyncio.gather(  # separate processes: side by side
            *(surge(backend, "report", "daily", *args, flag, to) for args, flag, to, _ in mistakes)
        )
        for (args, _, to, message), (code, output) in zip(mistakes, answers, strict=True):
            assert code != 0, (args, to)
            assert (message in output, "Traceback" in output) == (True, False), (args, to, output)
        assert not out.exists()

        pipe = tmp_path / "pipe"
        os.mkfifo(pipe)
        reader = asyncio.create_task(asyncio.to_thread(pipe.read_bytes))
        code, output = await surge(backend, "report", "daily", *day, "--out", str(pipe))
        assert code == 0, output
        received = await asyncio.wait_for(reader, timeout=10)
        assert received.startswith("\ufeff".encode())  # the whole CSV came through the pipe
        assert stat.S_ISFIFO(pipe.stat().st_mode)
        assert not [n for n in os.listdir(tmp_path) if n.startswith(".pipe.")]  # no temporary


async def test_written_files_follow_the_umask_and_a_workbook_is_not_sent_to_a_terminal(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An analyst's `umask 027` gives the group read access, as for any file they write."""
    async with make_backend("embedded", request, tmp_path) as backend:
        await seed(backend.settings())
        day = ("report", "daily", "--date", "2021-07-25")
        outputs = {
            "report": [*day, "--format", "xlsx", "--out", str(tmp_path / "day.xlsx")],
            "simulation": [
                "simulate",
                str(SCENARIOS / "quiet_day.json"),
                "--out",
                str(tmp_path / "sim.json"),
            ],
        }
        for args in outputs.values():
            process = await asyncio.create_subprocess_exec(
                SURGE, *args, env={**os.environ, **backend.env()},
                stderr=asyncio.subprocess.PIPE, preexec_fn=lambda: os.umask(0o027),
            )  # fmt: skip
            _, err = await process.communicate()
            assert process.returncode == 0, err
        for name in ("day.xlsx", "sim.json"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name

        terminal, other_end = pty.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                SURGE, *day, "--format", "xlsx", "--out", "-", env={**os.environ, **backend.env()},
                stdout=other_end, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await process.communicate()
        finally:
            os.close(other_end)
            os.close(terminal)
        assert process.returncode == 1
        assert "an XLSX workbook is binary" in err.decode()

        process = await asyncio.create_subprocess_exec(
            SURGE, *day, "--format", "xlsx", "--out", "-", env={**os.environ, **backend.env()},
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        piped, _ = await process.communicate()
        assert process.returncode == 0  # a pipe is not a terminal: the workbook goes through
        assert piped.startswith(b"PK")  # a zip, as every XLSX


@asynccontextmanager
async def unmigrated_database(kind: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The environment of a `surge` pointed at an empty database (SQLite, or PostgreSQL)."""
    if kind == "embedded":
        empty = tmp_path / "empty.db"
        empty.touch()  # a file of no bytes is an empty SQLite database
        yield {"SURGE_DATABASE_URL": f"sqlite+aiosqlite:///{empty}"}
        return
    name = f"surge_empty_{uuid.uuid4().hex[:10]}"
    admin = make_url(PG_ADMIN_URL)
    try:
        await admin_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    try:
        yield {"SURGE_DATABASE_URL": admin.set(database=name).render_as_string(False)}
    finally:
        await admin_sql(f'DROP DATABASE "{name}"')


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("embedded", ("users", "add", "wang-fang", "--role", "coordinator")),
        ("postgres", ("users", "add", "wang-fang", "--role", "coordinator")),
        ("embedded", ("users", "disable", "wang-fang")),
        ("embedded", ("seed",)),
        ("embedded", ("report", "daily", "--date", "2026-01-05", "--format", "json", "--out", "-")),
    ],
)
async def test_commands_on_an_unmigrated_database_say_to_migrate(
    kind: str, args: tuple[str, ...], tmp_path: Path
) -> None:
    async with unmigrated_database(kind, tmp_path) as env:
        backend = Backend(kind, env["SURGE_DATABASE_URL"], None, "unused:")
        code, output = await surge(backend, *args, stdin="a-long-password\n")
    assert code != 0
    assert output.strip().count("\n") == 0, output  # one line: no traceback
    assert "run `surge migrate`" in output
    assert "argon2" not in output


ON_THE_DATABASE: dict[str, tuple[str, ...]] = {
    "seed": ("--demo-users",),
    "users add": ("li-na", "--role", "cti"),
    "users disable": ("li-na",),
    "users enable": ("li-na",),
    "users delete": ("li-na",),
    "users password": ("li-na",),
    "report daily": ("--date", "2026-01-05", "--format", "xlsx", "--out", "-"),
}
"""Every command that reads or writes the database, but `serve` and `migrate` which migrate."""


def test_every_database_command_is_tried_on_an_unmigrated_database() -> None:
    assert set(surge_commands()) - {"serve", "migrate", "simulate"} == set(ON_THE_DATABASE)


@pytest.mark.parametrize("kind", ["embedded", "postgres"])
async def test_each_database_command_on_an_unmigrated_database_says_to_migrate(
    kind: str, tmp_path: Path
) -> None:
    async with unmigrated_database(kind, tmp_path) as env:
        backend = Backend(kind, env["SURGE_DATABASE_URL"], None, "unused:")
        runs = [
            surge(backend, *command.split(), *args, stdin="a-long-password\n")
            for command, args in ON_THE_DATABASE.items()
        ]
        if kind == "embedded":
            # One after the other: first connections to a SQLite file switching it to WAL at
            # the same moment may be refused ("database is locked"), which is not this test's
            # question.
            answers = [await run for run in runs]
        else:
            answers = await asyncio.gather(*runs)
    for command, (code, output) in zip(ON_THE_DATABASE, answers, strict=True):
        assert code == 1, (command, output)
        assert output.splitlines() == [
            "surge: the database is not migrated to this version of Surge: "
            "run `surge migrate` first"
        ], command


async def test_a_database_command_on_a_sqlite_file_that_is_not_there_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "mistyped.db"
    backend = Backend("embedded", f"sqlite+aiosqlite:///{missing}", None, "unused:")
    for command, args in ON_THE_DATABASE.items():
        code, output = await surge(backend, *command.split(), *args, stdin="a-long-password\n")
        assert code == 1, (command, output)
        assert output.splitlines() == [
            f"surge: there is no database at {missing}: `surge migrate` creates it"
        ], command
    assert not missing.exists()
