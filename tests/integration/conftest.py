"""Real `surge serve` processes for the multi-instance and recovery tests."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Backend
from tests.helpers import LiveService, free_port, seed

SURGE = str(Path(sys.executable).with_name("surge"))
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# nginx reaches the instances from an address of its own, the only one they believe
# X-Forwarded-For from; a test's clients connect from 127.0.0.1 or others.
PROXY_ADDRESS = "127.0.0.2"


@pytest.fixture
async def shared(shared_backend: Backend) -> Backend:
    """A seeded Postgres + Redis backend for several service processes."""
    await seed(shared_backend.settings())
    return shared_backend


@pytest.fixture(params=["direct", "nginx"])
def via(request: pytest.FixtureRequest) -> str:
    """How a test's clients reach its instances: each directly, or through nginx."""
    return str(request.param)


# The two-instance tests whose nginx run is in `make faults` only (`make test` keeps a call and
# a publish through nginx, and tests/integration/test_nginx.py): 15-20 s each.
NGINX_IN_FAULTS = pytest.mark.parametrize(
    "via", ["direct", pytest.param("nginx", marks=pytest.mark.slow)]
)


async def until_ready(
    http: httpx.AsyncClient,
    process: Process,
    exited: Callable[[], Awaitable[str]],
    *,
    within_s: float,
    name: str,
) -> None:
    """Wait for `GET /readyz` through `http` to answer 200; fail with `exited()` if `process`
    ends first, or after `within_s`."""
    for _ in range(int(within_s / 0.05)):
        if process.returncode is not None:
            raise RuntimeError(await exited())
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{name} did not become ready in {within_s} s")


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
    ready_s: float = 30,  # a start-up on a loaded 2-core machine can take 15 s
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

            async def exited() -> str:
                output = await asyncio.to_thread(log_path.read_text)
                return f"surge serve exited: {output[-2000:]}"

            await until_ready(http, process, exited, within_s=ready_s, name="surge serve")
            yield LiveService(settings=backend.settings(), base_url=base_url, http=http), process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def nginx_binary() -> str:
    """Debian's nginx; a test that needs it fails in CI without it, and is skipped elsewhere."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is needed (apt-get install nginx); .ci/run installs it")
        pytest.skip("nginx is not installed")
    return found


@asynccontextmanager
async def nginx_in_front(services: list[LiveService], folder: Path) -> AsyncIterator[str]:
    """deploy/nginx/surge.conf, as shipped but for its addresses, in front of `services`.

    Yields nginx's base URL. Its access log (`folder/nginx/access.log`) names the instance
    each request went to.
    """
    binary = nginx_binary()
    root = folder / "nginx"
    root.mkdir(exist_ok=True)
    port = free_port()
    site = (DEPLOY / "nginx" / "surge.conf").read_text()
    upstreams = "".join(
        f"    server {service.base_url.removeprefix('http://')} max_fails=3 fail_timeout=5s;\n"
        for service in services
    )
    site = re.sub(r"(?m)^    server 127\.0\.0\.1:800\d .*\n", "", site)
    site = site.replace("    keepalive 64;", upstreams + "    keepalive 64;")
    site = site.replace("    listen 80;", f"    listen 127.0.0.1:{port};")
    (root / "surge.conf").write_text(site)
    (root / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$remote_addr $upstream_addr $status "$request"';
    access_log {root}/access.log upstream;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    proxy_bind {PROXY_ADDRESS};
    include {root}/surge.conf;
}}
"""
    )
    process = await asyncio.create_subprocess_exec(
        binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;",
        stderr=subprocess.PIPE,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:

            async def exited() -> str:
                assert process.stderr is not None
                return f"nginx exited: {(await process.stderr.read()).decode()}"

            await until_ready(http, process, exited, within_s=10, name="nginx")
        yield base_url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@asynccontextmanager
async def two_instances(
    backend: Backend, *, log_path: Path, via: str, **env: str
) -> AsyncIterator[tuple[LiveService, LiveService]]:
    """Instances `a` and `b` on one backend, spoken to directly or through nginx.

    Through nginx both are the proxy's address: every request and socket may land on either
    instance, as behind a province's load balancer.
    """
    env = {"FORWARDED_ALLOW_IPS": PROXY_ADDRESS, **env} if via == "nginx" else env
    async with (
        surge_process(backend, instance="a", log_path=log_path, **env) as (a, _),
        surge_process(backend, instance="b", log_path=log_path, **env) as (b, _),
    ):
        if via == "direct":
            yield a, b
            return
        async with (
            nginx_in_front([a, b], log_path.parent) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as first,
            httpx.AsyncClient(base_url=url, timeout=10) as second,
        ):
            yield (
                LiveService(settings=a.settings, base_url=url, http=first),
                LiveService(settings=b.settings, base_url=url, http=second),
            )
