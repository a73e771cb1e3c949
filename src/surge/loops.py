"""Background loops that survive failures and still stop when asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from surge.db import is_outage
from surge.errors import SurgeError

log = logging.getLogger(__name__)


async def run_forever(
    name: str, step: Callable[[], Awaitable[None]], *, stopping: Callable[[], bool]
) -> None:
    """Run `step` until `stopping()`; a failed step is logged and the next one runs.

    Stopping does not rely on cancellation alone: a client library may turn a cancelled read
    into its own error (redis-py reports a connection error) and so swallow it.
    """
    while not stopping():
        try:
            await step()
        except Exception as exc:
            task = asyncio.current_task()
            if stopping() or (task is not None and task.cancelling()):
                return
            if isinstance(exc, SurgeError | OSError) or is_outage(exc):
                log.warning("%s failed: %s", name, exc)
            else:
                log.exception("%s failed", name)
            await asyncio.sleep(0.5)  # do not spin on a persistent failure
