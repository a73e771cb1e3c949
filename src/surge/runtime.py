"""The resources one service instance runs on, made in the app's lifespan and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from surge.auth.directory import UserDirectory
from surge.calls.transitions import Transitions
from surge.cities.monitor import PressureMonitor
from surge.cities.service import CityRegistry
from surge.db import HotConnections
from surge.router.dispatcher import Dispatcher
from surge.scripts.classification import Classification
from surge.scripts.holds import ScriptHolds
from surge.scripts.search import BookIndex
from surge.seats.gateway import Gateway
from surge.settings import Settings
from surge.state.base import HotState
from surge.surges.roster import SurgeRoster


def make_state(settings: Settings) -> HotState:
    """The hot state the settings ask for: Redis (a Redis Cluster with `SURGE_REDIS_CLUSTER`)
    when `SURGE_REDIS_URL` is set, else in-process."""
    if settings.redis_url is None:
        from surge.state.memory import InMemoryState

        return InMemoryState()
    from surge.state.redis import CONNECTION_WAIT_S, ClusterClient, RedisState

    if settings.redis_cluster:
        # The URL names one node: the client learns the others and which one holds the slot.
        cluster = ClusterClient.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections
        )
        return RedisState(
            cluster,
            prefix=settings.redis_prefix,
            instance=settings.instance_id,
            alone_after_s=settings.instance_timeout_s,
        )
    # A blocking pool: under load a request waits for a connection instead of failing at once.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=CONNECTION_WAIT_S,
    )
    # The state owns the pool.
    return RedisState(
        Redis.from_pool(pool),
        prefix=settings.redis_prefix,
        instance=settings.instance_id,
        alone_after_s=settings.instance_timeout_s,
    )


@dataclass(slots=True)
class Runtime:
    """Everything a request or socket handler may need from the running instance."""

    settings: Settings
    engine: AsyncEngine
    hot: HotConnections  # the hot call transitions' connections (ingest's too)
    sessions: async_sessionmaker[AsyncSession]
    state: HotState
    cities: CityRegistry
    gateway: Gateway
    dispatcher: Dispatcher
    transitions: Transitions  # every call transition: the one way a call's status changes
    surges: SurgeRoster  # who serves which host: the live surges, cached once per instance
    pressure: PressureMonitor
    classification: Classification
    script_index: BookIndex
    users: UserDirectory
    holds: ScriptHolds  # who gets no offers of a city until acknowledging its required scripts
