"""Real `surge serve` processes for the multi-instance and recovery tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.conftest import Backend
from tests.helpers import LiveService, free_port

SURGE = str(Path(sys.executable).with_name("surge"))


@asynccontextmanager
async def surge_process(
    backend: Backend, *, instance: str, log_path: Path, log_level: str = "warning", **env: str
) -> AsyncIterator[tuple[LiveService, Process]]:
    """Run `surge serve` as its own process until the block ends (then stop it, or kill it)."""
    environment = {**os.environ, **backend.env(), "SURGE_INSTANCE_ID": instance, **env}
    async with _serving(backend, environment, (), log_path, log_level=log_level) as served:
        yield served


@asynccontextmanager
async def surge_workers(
    backend: Backend, *, workers: int, log_path: Path, **env: str
) -> AsyncIterator[tuple[LiveService, Process]]:
    """Run `surge serve --workers N` (each worker names its own instance) as `surge_process`."""
    environment = {**os.environ, **backend.env(), **env}
    environment.pop("SURGE_INSTANCE_ID", None)
    async with _serving(
        backend, environment, ("--workers", str(workers)), log_path, ready_s=60
    ) as served:
        yield served


@asynccontextmanager
async def _serving(
    backend: Backend,
    environment: dict[str, str],
    more: tuple[str, ...],
    log_path: Path,
    *,
    ready_s: float = 10,
    log_level: str = "warning",
) -> AsyncIterator[tuple[LiveService, Process]]:
    port = free_port()
    log = await asyncio.to_thread(log_path.open, "ab")
    process = await asyncio.create_subprocess_exec(
        SURGE,
        *("serve", "--port", str(port), "--log-level", log_level, *more),
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            for _ in range(int(ready_s / 0.05)):
                if process.returncode is not None:
                    output = await asyncio.to_thread(log_path.read_text)
                    raise RuntimeError(f"surge serve exited: {output[-2000:]}")
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"surge serve did not become ready in {ready_s} s")
            yield LiveService(settings=backend.settings(), base_url=base_url, http=http), process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
