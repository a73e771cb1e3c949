"""`make run` as a newcomer types it, in a copy of the repository's Makefile.

The virtualenv is a stand-in: its `python` is this interpreter (for the secret key), its `pip`
and `surge` write down how they were called, so the recipe runs whole, in a second, and the test
reads what it installed, what it served on, and the `.env` it left.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >> "$(dirname "$0")/../calls"\n'


def make(folder: Path, *args: str) -> list[str]:
    """Run `make ARGS` in `folder` under umask 022; return the stand-ins' calls."""
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: os.umask(0o022),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    calls = folder / ".venv" / "calls"
    if not calls.exists():
        return []
    lines = calls.read_text(encoding="utf-8").splitlines()
    calls.unlink()
    return lines


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml in a folder of their own, with a stand-in virtualenv."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").symlink_to(sys.executable)
    for name in ("pip", "surge"):
        (bin_ / name).write_text(RECORDER, encoding="utf-8")
        (bin_ / name).chmod(0o755)
    return tmp_path


def test_make_run_installs_the_service_alone_and_serves_on_localhost_8000(checkout: Path) -> None:
    calls = make(checkout, "run")

    assert calls == [
        "pip install --quiet -e .",  # the service's own dependencies: no dev extras
        "surge migrate",
        "surge seed --demo-users",
        "surge serve --host 127.0.0.1 --port 8000",
    ]
    env = checkout / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600  # the secret key is its owner's alone
    (line,) = env.read_text(encoding="utf-8").splitlines()
    assert line.startswith("SURGE_SECRET_KEY=")
    assert len(line.removeprefix("SURGE_SECRET_KEY=")) >= 32


def test_make_run_serves_where_port_and_host_say_and_keeps_the_secret(checkout: Path) -> None:
    make(checkout, "run")
    secret = (checkout / ".env").read_text(encoding="utf-8")

    calls = make(checkout, "run", "PORT=8080", "HOST=0.0.0.0")

    assert calls[-1] == "surge serve --host 0.0.0.0 --port 8080"
    assert "pip install --quiet -e ." not in calls  # installed once, until pyproject.toml changes
    assert (checkout / ".env").read_text(encoding="utf-8") == secret  # tokens survive restarts


def test_make_test_adds_the_dev_extras(checkout: Path) -> None:
    assert make(checkout, "install-dev") == ["pip install --quiet -e .[dev]"]
    assert make(checkout, "install") == []  # the service's dependencies came with them
