"""The agent-state table (`AGENT_RULES`) is what both adapters do: every allowed move is made by
the operations it names, on both, and a forbidden one is refused alike by both."""

from __future__ import annotations

import inspect
import random
import re
from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import ResponseError

from surge.state import memory as memory_module
from surge.state import redis as redis_module
from surge.state.base import (
    AGENT_MOVES,
    AGENT_RULES,
    AgentPresence,
    AgentState,
    HotState,
    IllegalAgentMove,
    OfferClaim,
    agent_place,
    check_agent_move,
)
from surge.state.memory import InMemoryState
from surge.state.redis import RedisState

from .conftest import Backend
from .test_state import AGENTS, CITY, T0, Trial, agent_city, make_available, qc, random_step

A = AgentState
AGENT = 1
CALL = 7  # queued for the offers
HELD_CALL = 500  # a connected call in the agent's hand
WRAP_UP_S = 10.0
OFFER = OfferClaim("offer-1", CALL, AGENT, T0 + 100)
Place = AgentState | None

ALLOWED = sorted(
    ((source, target) for source, targets in AGENT_MOVES.items() for target in targets),
    key=lambda move: (agent_place(move[0]), agent_place(move[1])),
)
FORBIDDEN = [
    (source, target)
    for source in AgentState
    for target in AgentState
    if target not in AGENT_MOVES[source]
]


def move_id(move: tuple[Place, Place]) -> str:
    return f"{agent_place(move[0])}->{agent_place(move[1])}"


async def connect(state: HotState, call_id: int | None = None) -> AgentPresence:
    return await state.agent_connect(AGENT, CITY, instance="i1", now=T0, call_id=call_id)


async def offered(state: HotState) -> str:
    """Make the agent hold an offer of `CALL`; return the offer id."""
    await make_available(state, AGENT)
    await state.enqueue([qc(CALL)])
    [held] = await state.claim([OFFER])
    assert held is not None
    return held.offer_id


async def place(state: HotState) -> Place:
    """The agent's state, or None when it is offline."""
    presence = await state.get_agent(AGENT)
    return None if presence is None else presence.state


async def put_in(state: HotState, place: Place) -> None:
    """Bring the agent to `place` by the public operations."""
    match place:
        case None:
            pass
        case A.AVAILABLE:
            await make_available(state, AGENT)
        case A.BREAK:
            await connect(state)
        case A.OFFERED:
            await offered(state)
        case A.BUSY:
            await connect(state, HELD_CALL)
        case A.WRAP_UP:
            await connect(state, HELD_CALL)
            await state.finish_call(AGENT, HELD_CALL, T0, wrap_up_s=WRAP_UP_S)
        case A.LOST:
            await connect(state, HELD_CALL)
            await state.agent_lost(AGENT, instance="i1")


async def _connect_back(state: HotState, source: Place, target: Place) -> None:
    await connect(state, HELD_CALL if target is A.BUSY else None)


async def _set(state: HotState, source: Place, target: Place) -> None:
    assert target is not None
    await state.set_agent_state(AGENT, target, T0 + 1)


async def _claim(state: HotState, source: Place, target: Place) -> None:
    await state.enqueue([qc(CALL)])
    assert (await state.claim([OFFER])) != [None]


async def _accept(state: HotState, source: Place, target: Place) -> None:
    await state.accept("offer-1", AGENT, T0 + 1)


async def _decline(state: HotState, source: Place, target: Place) -> None:
    await state.decline("offer-1", AGENT, T0 + 1)


async def _expire(state: HotState, source: Place, target: Place) -> None:
    assert len(await state.expire_offers(T0 + 1_000)) == 1


async def _finish(state: HotState, source: Place, target: Place) -> None:
    wrap_up_s = WRAP_UP_S if target is A.WRAP_UP else 0.0
    assert await state.finish_call(AGENT, HELD_CALL, T0 + 1, wrap_up_s=wrap_up_s) is not None


async def _end_wrap_up(state: HotState, source: Place, target: Place) -> None:
    assert len(await state.end_wrap_ups(T0 + WRAP_UP_S, instance="i1")) == 1


async def _lose(state: HotState, source: Place, target: Place) -> None:
    await state.agent_lost(AGENT, instance="i1")


async def _disconnect(state: HotState, source: Place, target: Place) -> None:
    await state.agent_disconnect(AGENT, instance="i1")


Driver = Callable[[HotState, Place, Place], Awaitable[None]]

# The operation that makes each allowed move (of those `AGENT_RULES` names for it).
DRIVERS: dict[tuple[Place, Place], Driver] = {
    (None, A.BREAK): _connect_back,
    (None, A.BUSY): _connect_back,
    (A.LOST, A.BREAK): _connect_back,
    (A.LOST, A.BUSY): _connect_back,
    (A.AVAILABLE, A.BREAK): _set,
    (A.BREAK, A.AVAILABLE): _set,
    (A.AVAILABLE, A.OFFERED): _claim,
    (A.OFFERED, A.BUSY): _accept,
    (A.OFFERED, A.AVAILABLE): _decline,
    (A.OFFERED, A.BREAK): _expire,
    (A.BUSY, A.AVAILABLE): _finish,
    (A.BUSY, A.WRAP_UP): _finish,
    (A.WRAP_UP, A.AVAILABLE): _end_wrap_up,
    (A.WRAP_UP, A.BREAK): _set,
    **{(source, A.LOST): _lose for source in (A.AVAILABLE, A.BREAK, A.OFFERED, A.BUSY, A.WRAP_UP)},
    **{(source, None): _disconnect for source in AgentState},
}


def test_every_allowed_move_has_a_driver_and_each_rule_names_its_operations() -> None:
    assert sorted(DRIVERS, key=move_id) == sorted(ALLOWED, key=move_id)
    operations = {
        name for name, _ in inspect.getmembers(InMemoryState, inspect.iscoroutinefunction)
    }
    for rule in AGENT_RULES:
        assert set(rule.by) <= operations, rule
        assert rule.sources
        assert rule.targets
        assert rule.when


@pytest.mark.parametrize("move", ALLOWED, ids=move_id)
async def test_every_allowed_move_is_made_alike(state: HotState, move: tuple[Place, Place]) -> None:
    source, target = move
    await put_in(state, source)
    assert await place(state) is source
    await DRIVERS[move](state, source, target)
    assert await place(state) is target


async def force_move(backend: Backend, target: AgentState) -> None:
    """Try the raw move of `AGENT` to `target`, past every guard of the public operations."""
    state = backend.state
    if isinstance(state, InMemoryState):
        state._move(AGENT, state._agents[AGENT], target, T0 + 1)
        return
    assert isinstance(state, RedisState)
    script = state._client.register_script(
        redis_module._LUA_PRELUDE + "move(ARGV[2], ARGV[3])\nreturn 0"
    )
    await state._run(script, AGENT, target.value)


@pytest.mark.parametrize("move", FORBIDDEN, ids=move_id)
async def test_a_forbidden_move_is_refused_alike(
    backend: Backend, move: tuple[AgentState, AgentState]
) -> None:
    source, target = move
    await put_in(backend.state, source)
    before = await backend.state.get_agent(AGENT)
    assert before is not None
    assert before.state is source
    with pytest.raises(IllegalAgentMove) as refused:
        await force_move(backend, target)
    assert (refused.value.source, refused.value.target) == (source, target)
    assert str(refused.value) == f"an agent cannot move from {source} to {target}"
    assert await backend.state.get_agent(AGENT) == before  # refused before any write
    assert backend.state.failures == 0  # a programming error, not a backend failure


def test_a_move_from_or_to_offline_is_named_alike() -> None:
    with pytest.raises(IllegalAgentMove, match="from offline to available"):
        check_agent_move(None, A.AVAILABLE)
    error = redis_module._illegal_move(
        ResponseError("ILLEGAL_AGENT_MOVE offline available script: x")
    )
    assert isinstance(error, IllegalAgentMove)
    assert (error.source, error.target) == (None, A.AVAILABLE)


async def test_the_memory_adapter_makes_only_and_every_move_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: set[tuple[Place, Place]] = set()

    def recording(source: Place, target: Place) -> None:
        check_agent_move(source, target)
        made.add((source, target))

    monkeypatch.setattr(memory_module, "check_agent_move", recording)
    for move in ALLOWED:
        state = InMemoryState()
        await put_in(state, move[0])
        await DRIVERS[move](state, *move)
    state = InMemoryState()
    for agent_id in AGENTS:
        await make_available(state, agent_id, agent_city(agent_id))
    trial, rng = Trial(), random.Random(7)
    for _ in range(400):
        await random_step(state, rng, trial)
    assert made <= set(ALLOWED)
    assert made == set(ALLOWED)  # no row of the table is dead


# Where each adapter writes an agent's state: every such place checks the move first.
_MEMORY_WRITES = re.compile(r"agent\.state(, [a-z_.]+)? = |_Agent\(")
_LUA_WRITES = re.compile(r"HSET', key, ('city', city, )?'state'")


def test_every_state_write_of_either_adapter_is_checked_against_the_table() -> None:
    memory = inspect.getsource(memory_module)
    writes = [m.start() for m in _MEMORY_WRITES.finditer(memory)]
    assert len(writes) == 2  # `_move`, and a new presence in `agent_connect`
    for at in writes:
        body = memory[memory.rindex("    def ", 0, at) : at]
        assert "check_agent_move(" in body
    scripts = [
        value
        for name, value in vars(redis_module).items()
        if name.isupper() and isinstance(value, str)
    ]
    checked = [(script, m.start()) for script in scripts for m in _LUA_WRITES.finditer(script)]
    assert len(checked) == 2  # `move`, and a new presence in the connect script
    for script, at in checked:
        assert "check(" in script[max(script.rfind("function", 0, at), 0) : at]
