"""The `surge` command as an operator uses it: migrate, seed, users add, and its errors."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.helpers import run_service
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


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("users", "add", "x1", "--role", "agent", "--city", "320100"), "short\n", "8 characters"),
        (("users", "add", "x2", "--role", "agent", "--city", "999999"), "long-enough\n", "999999"),
        (("users", "add", "x3", "--role", "agent"), "long-enough\n", "--city"),
        (
            ("users", "add", "x4", "--role", "coordinator", "--city", "320100"),
            "long-enough\n",
            "province-wide",
        ),
        (("users", "add", "bad name", "--role", "cti"), "long-enough\n", "username"),
    ],
)
async def test_users_add_refuses_bad_input_clearly(
    backend: Backend, args: tuple[str, ...], stdin: str, message: str
) -> None:
    await surge(backend, "seed")
    code, output = await surge(backend, *args, stdin=stdin)
    assert code == 1
    assert message in output
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
