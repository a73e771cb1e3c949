"""Logging: one line per event, as `key=value` text or JSON (`SURGE_LOG_FORMAT`), and request ids.

An event is logged with a short dotted name as its message and its facts as `extra` fields
(`log.info("call.posted", extra={"call_id": 7, "city": "320100"})`); the formatter writes them
out, with the id of the HTTP request (or websocket) being served, if any. Nothing logged names
a caller's number, a token or a password hash: events carry ids only, the engines hide
statement parameters, and every line is scrubbed of tokens in URLs and argon2 hashes besides.

Hot paths check the level first (`log.isEnabledFor(INFO)`) before building the fields.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surge.settings import LogFormat

REQUEST_ID: ContextVar[str | None] = ContextVar("surge_request_id", default=None)
"""The id of the HTTP request or websocket being served (None in background tasks)."""

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_SECRETS = re.compile(r"(token=)[^&\s\"'\\]+|\$argon2[a-z]*\$[^\s\"'\\,)\]]+")
# What every LogRecord has; anything else on a record came in `extra`. uvicorn adds
# `color_message`, its message with terminal colour escapes: the message says it already.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

http_log = logging.getLogger("surge.http")


def redact(text: str) -> str:
    """`text` without access tokens in URLs (`token=...`) or argon2 password hashes."""
    return _SECRETS.sub(lambda m: "token=<redacted>" if m.group(1) else "<redacted>", text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        fields.setdefault("request_id", request_id)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...`, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return redact(line)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Surge's handler on the root logger (one, however often `configure` runs)."""


def configure(*, log_format: LogFormat, level: str | int = logging.INFO) -> None:
    """Send every log line (the service's and uvicorn's) to standard error in `log_format`."""
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # uvicorn's own formatting, when it configured any
        logger.propagate = True


def _request_id(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is a sane one (short, printable, no spaces); else
    a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _SANE_ID.fullmatch(value):
                return bytes(value).decode()
            break
    return secrets.token_hex(8)


class RequestIds:
    """Give each HTTP request and websocket an id (its `X-Request-ID`, or a new one), echoed in
    the response's header and logged with every line written while it is served; log one
    `http.request` line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            await self._serve(request_id, scope, receive, send)
        finally:
            REQUEST_ID.reset(token)

    async def _serve(self, request_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if http_log.isEnabledFor(logging.INFO):
                http_log.info(
                    "http.request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],  # never the query string
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
