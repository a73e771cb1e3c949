"""The floor: the least a call intake must do, served the way `surge serve` serves Surge.

A bare ASGI app on uvicorn, with the same uvicorn options as `surge serve`. `POST /api/v1/calls`
checks the bearer token with PyJWT (the same key, algorithm, issuer and required claims as
Surge), validates the body with Surge's own `CallCreate`, records the call and its arrival event
in one statement through an asyncpg pool (a Surge-migrated database), writes the call to a Redis
queue, and answers 201 with the call as JSON. Nothing else: no idempotency check, no city
registry, no user directory, no dispatcher. `GET /readyz` answers 200.

`loadtests.ingest` runs it beside Surge to say how close Surge's ingest comes to the floor::

    SURGE_DATABASE_URL=postgresql://... SURGE_REDIS_URL=redis://... SURGE_REDIS_PREFIX=floor: \\
    SURGE_SECRET_KEY=... python -m loadtests.floor --port 8001

(a plain `postgresql://` URL, or SQLAlchemy's `postgresql+asyncpg://`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import jwt
import orjson
import pydantic
import uvicorn
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.types import Receive, Scope, Send

from surge.calls.schemas import CallCreate
from surge.settings import Settings

_INSERT = """
WITH c AS (
    INSERT INTO call (external_id, city_code, caller, channel, priority, status, received_at)
    VALUES ($1, $2, $3, $4, $5, 'queued', $6)
    RETURNING id, received_at
)
INSERT INTO call_event (call_id, at, to_status, instance)
SELECT id, received_at, 'queued', $7 FROM c
RETURNING call_id
"""
_JSON = [(b"content-type", b"application/json")]


class Floor:
    """The ASGI app: its resources are made in the lifespan."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        prefix: str,
        secret: str,
        pool_size: int,
        redis_connections: int,
    ) -> None:
        """Remember where to connect; `lifespan.startup` connects."""
        self._pool_size = pool_size
        self._redis_connections = redis_connections
        self._database_url = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self._redis_url = redis_url
        self._prefix = prefix
        self._secret = secret
        self._pool: asyncpg.Pool | None = None
        self._redis: Redis | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI event."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["method"] == "POST" and scope["path"] == "/api/v1/calls":
                await self._post_call(scope, receive, send)
            elif scope["path"] == "/readyz":
                await _answer(send, 200, {"status": "ready"})
            else:
                await _answer(send, 404, {"error": {"code": "not_found", "message": "no route"}})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Open the pools at startup, close them at shutdown."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._pool = await asyncpg.create_pool(
                    self._database_url,
                    min_size=1,
                    max_size=self._pool_size,
                )
                pool = BlockingConnectionPool.from_url(
                    self._redis_url,
                    max_connections=self._redis_connections,
                    timeout=10,
                )
                self._redis = Redis.from_pool(pool)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    await self._pool.close()
                if self._redis is not None:
                    await self._redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _post_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token, validate the body, insert the call and its event, queue it."""
        if self._pool is None or self._redis is None:
            raise RuntimeError("the floor is not started")
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = authorization.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("no bearer token")
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer="surge",
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.InvalidTokenError as exc:
            await _answer(send, 401, {"error": {"code": "unauthorized", "message": str(exc)}})
            return
        if claims.get("role") != "cti":
            await _answer(send, 403, {"error": {"code": "forbidden", "message": "not the CTI"}})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            call = CallCreate.model_validate_json(body)
        except pydantic.ValidationError as exc:
            await _answer(send, 422, {"error": {"code": "invalid_request", "message": str(exc)}})
            return
        now = datetime.now(UTC)
        call_id = await self._pool.fetchval(
            _INSERT,
            call.external_id,
            call.city,
            call.caller,
            call.channel.value,
            call.priority,
            now,
            "floor",
        )
        await self._redis.zadd(f"{self._prefix}queue:{call.city}", {str(call_id): time.time()})
        await _answer(
            send,
            201,
            {
                "id": call_id,
                "external_id": call.external_id,
                "city": call.city,
                "caller": call.caller,
                "channel": call.channel.value,
                "priority": call.priority,
                "status": "queued",
                "received_at": now,
                "history": [{"at": now, "from_status": None, "to_status": "queued"}],
            },
        )


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    """Send a whole JSON answer."""
    content = orjson.dumps(body)
    headers = [*_JSON, (b"content-length", str(len(content)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the floor with the uvicorn options `surge serve` uses."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--forwarded-allow-ips")
    args = parser.parse_args(argv)
    settings = Settings()  # SURGE_* from the environment, as `surge serve` reads them
    if settings.redis_url is None:
        parser.error("set SURGE_REDIS_URL: the floor writes each call to Redis")
    app = Floor(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        prefix=settings.redis_prefix,
        secret=settings.secret_key.get_secret_value(),
        pool_size=settings.db_pool_size + settings.db_max_overflow,
        redis_connections=settings.redis_max_connections,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_max_size=4 * settings.ws_max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_interval_s,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
