"""The hot-state interface: city queues, agent presence, offers with expiry, and the event bus.

Postgres is the system of record; this is the fast, shared, rebuildable view the dispatcher uses.
Two adapters implement it (`memory.InMemoryState`, `redis.RedisState`) and pass one contract suite
(`tests/contract/test_state.py`). Every operation that touches more than one key is atomic: a call
is never offered to two agents and an agent never holds two offers, however many service instances
share the state.

Vocabulary:
- a *queued* call sits in its city's queue, ordered by `queue_score` (priority first, then arrival);
- an *offered* call is held for one agent until the offer is accepted, declined, expires or is
  withdrawn; declined, expired and withdrawn offers put the call back at its original place;
- an agent is *present* while its console is connected; an absent agent is offline;
- an agent is *lent* to a host while it holds an offer or a call of a city other than its own:
  from the claim (or from reconnecting with such a call in hand) until it is available, on break
  or absent again. An agent that goes absent with such a call in hand (the voice may go on) still
  counts until it is back and done, or `finish_call` names that call. Each city's lent agents
  are counted per host, and a claim made for a surge (`Lend`) succeeds only while that count is
  below the helper's seat quota, so the quota holds however many instances dispatch at once.
- the *epoch* marks one build of the state: written when the state is (re)built from the
  database, it disappears with the data (a Redis restarted empty), which is how every instance
  notices the loss and rebuilds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

MAX_PRIORITY = 9
TRANSFERRED_PRIORITY = MAX_PRIORITY + 1
"""A transferred call's place: ahead of every fresh call of its new queue (by arrival among
them): its score is below every posted priority's."""
_SCORE_STRIDE = (
    2**40
)  # call ids stay below this; (MAX_PRIORITY + 1) * stride < 2**53 keeps it exact


def queue_score(priority: int, call_id: int) -> float:
    """Return the queue sort key: higher priority first, then lower call id (arrival order)."""
    return float((MAX_PRIORITY - priority) * _SCORE_STRIDE + call_id)


class AgentState(StrEnum):
    """Where a known agent is. `offered` and `busy` are set only by the dispatcher's claims.

    `lost`: the console stopped answering (no closing handshake, pings unanswered); unlike a
    clean logout (offline: no presence at all) the agent is still known, with the connected
    call it may still be talking on, until it connects again.
    """

    AVAILABLE = "available"
    BREAK = "break"
    OFFERED = "offered"
    BUSY = "busy"
    WRAP_UP = "wrap_up"  # after a completed call, for `SURGE_WRAP_UP_S`: no offers meanwhile
    LOST = "lost"


OFFLINE = "offline"
"""How the agent-state table names an agent with no presence (`None` in `AgentMove`)."""


@dataclass(frozen=True, slots=True)
class AgentMove:
    """A rule of the agent-state table, after Prefect's orchestration rules: an agent in one of
    `sources` may move to one of `targets`, by one of the `HotState` operations `by`, `when`
    what it says happens. `None` stands for offline (no presence)."""

    sources: frozenset[AgentState | None]
    targets: frozenset[AgentState | None]
    by: tuple[str, ...]
    when: str


_PRESENT = frozenset(AgentState) - {AgentState.LOST}

AGENT_RULES: tuple[AgentMove, ...] = (
    AgentMove(
        frozenset({None, AgentState.LOST}),
        frozenset({AgentState.BREAK, AgentState.BUSY}),
        ("agent_connect",),
        "a console connects: busy with the call in hand, else on break",
    ),
    AgentMove(
        frozenset({AgentState.AVAILABLE}),
        frozenset({AgentState.BREAK}),
        ("set_agent_state",),
        "the agent goes on break",
    ),
    AgentMove(
        frozenset({AgentState.BREAK}),
        frozenset({AgentState.AVAILABLE}),
        ("set_agent_state",),
        "the agent goes available, idle since now",
    ),
    AgentMove(
        frozenset({AgentState.AVAILABLE}),
        frozenset({AgentState.OFFERED}),
        ("claim",),
        "the dispatcher holds a call for it",
    ),
    AgentMove(
        frozenset({AgentState.OFFERED}),
        frozenset({AgentState.BUSY}),
        ("accept",),
        "it accepts the offer: busy with the call",
    ),
    AgentMove(
        frozenset({AgentState.OFFERED}),
        frozenset({AgentState.AVAILABLE}),
        ("decline", "withdraw", "end_lending"),
        "it declines (idle since now), the call is abandoned or the surge ends (idle as before)",
    ),
    AgentMove(
        frozenset({AgentState.OFFERED}),
        frozenset({AgentState.BREAK}),
        ("expire_offers",),
        "the offer expires unanswered (a missed offer)",
    ),
    AgentMove(
        frozenset({AgentState.BUSY}),
        frozenset({AgentState.AVAILABLE, AgentState.WRAP_UP}),
        ("finish_call",),
        "its call is completed: wrap-up if there is one, else (and when released) idle since now",
    ),
    AgentMove(
        frozenset({AgentState.WRAP_UP}),
        frozenset({AgentState.AVAILABLE}),
        ("end_wrap_ups", "set_agent_state"),
        "its wrap-up ends by itself (idle since its end) or the agent ends it (idle since now)",
    ),
    AgentMove(
        frozenset({AgentState.WRAP_UP}),
        frozenset({AgentState.BREAK}),
        ("set_agent_state",),
        "the agent ends its wrap-up and goes on break",
    ),
    AgentMove(
        _PRESENT,
        frozenset({AgentState.LOST}),
        ("agent_lost",),
        "its console stops answering: an offer goes back, a call stays in hand",
    ),
    AgentMove(
        frozenset(AgentState),
        frozenset({None}),
        ("agent_disconnect", "reap_instances", "agent_connect"),
        "it logs out, its instance is reaped, or it connects busy with a call the database"
        " does not hold (that presence is dropped, then it arrives afresh)",
    ),
)
"""The agent-state table: the only moves either adapter makes (the Redis one reads it in Lua)."""

AGENT_MOVES: Mapping[AgentState | None, frozenset[AgentState | None]] = {
    source: frozenset(t for rule in AGENT_RULES if source in rule.sources for t in rule.targets)
    for source in (None, *AgentState)
}
"""The table by source: where an agent in each state (`None`: offline) may move."""


def agent_place(state: AgentState | None) -> str:
    """The table's name for a state: its value, or `offline`."""
    return OFFLINE if state is None else state.value


class IllegalAgentMove(Exception):
    """A programming error: an adapter tried an agent move `AGENT_MOVES` forbids."""

    def __init__(self, source: AgentState | None, target: AgentState | None) -> None:
        super().__init__(
            f"an agent cannot move from {agent_place(source)} to {agent_place(target)}"
        )
        self.source = source
        self.target = target


def check_agent_move(source: AgentState | None, target: AgentState | None) -> None:
    """Raise `IllegalAgentMove` unless an agent may move from `source` to `target`."""
    if target not in AGENT_MOVES[source]:
        raise IllegalAgentMove(source, target)


class Outcome(StrEnum):
    """The answer to an agent's accept or decline."""

    DONE = "done"
    UNKNOWN = "unknown"  # no such live offer: never existed, expired, withdrawn or already answered
    NOT_YOURS = "not_yours"  # the offer is held for another agent


class CallLocation(StrEnum):
    """Where the hot state holds a call, if anywhere."""

    QUEUED = "queued"
    OFFERED = "offered"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """What the hot state keeps of a waiting call: enough to route and offer it without the DB."""

    call_id: int
    city: str
    priority: int
    enqueued_at: float  # epoch seconds
    caller: str
    channel: str
    # A transferred call: the note of the agent who sent it here. Only its city's own agents
    # take it (the question needs their local knowledge), ahead of the fresh calls.
    note: str | None = None
    callback: bool = False  # a callback (回拨): the agent who takes it has the caller dialled

    @property
    def score(self) -> float:
        """The call's place in its city's queue (a transferred call's ahead of the fresh)."""
        return queue_score(
            TRANSFERRED_PRIORITY if self.transferred else self.priority, self.call_id
        )

    @property
    def transferred(self) -> bool:
        """Sent to this city's queue by an agent: for the city's own agents only."""
        return self.note is not None


@dataclass(frozen=True, slots=True)
class IdleAgent:
    """An available agent and since when it has been idle (epoch seconds)."""

    agent_id: int
    city: str
    idle_since: float


@dataclass(frozen=True, slots=True)
class Lend:
    """A claim made for a surge: the call's city is the host, the agent's city a helper lending
    at most `quota` agents to it at once."""

    surge_id: int
    quota: int


@dataclass(frozen=True, slots=True)
class OfferClaim:
    """A routing decision the dispatcher wants to make real: hold `call_id` for `agent_id`."""

    offer_id: str
    call_id: int
    agent_id: int
    expires_at: float
    lend: Lend | None = None  # a helper's agent taking a host's call: within the quota


@dataclass(frozen=True, slots=True)
class HeldOffer:
    """A live (or just ended) offer, with the call it holds."""

    offer_id: str
    call: QueuedCall
    agent_id: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class WrapUp:
    """An agent's wrap-up (话后整理): the completed call it is tidying up, and when it ends by
    itself (epoch seconds)."""

    call_id: int
    until: float


@dataclass(frozen=True, slots=True)
class AgentPresence:
    """A present agent as the hot state knows it."""

    agent_id: int
    city: str
    state: AgentState
    instance: str
    idle_since: float
    offer_id: str | None = None
    call_id: int | None = None
    lent_to: str | None = None  # the host whose offer or call it holds, if not its own city's
    wrap_up: WrapUp | None = None  # while in `wrap_up`
    # When it entered its state (or connected), by the hot state's wall clock: what a
    # supervisor reads (`GET /agents`); not compared, as no move depends on it.
    since: float = field(default=0.0, compare=False)


@dataclass(frozen=True, slots=True)
class CityView:
    """One city's live figures and, up to the requested depth, the head of its queue."""

    city: str
    waiting: int
    oldest_enqueued_at: float | None
    queue: tuple[QueuedCall, ...]  # the queue's head in queue order (see `HotState.snapshot`)
    idle: tuple[IdleAgent, ...]  # the available agents, longest idle first (see `snapshot`)
    offered: int  # agents holding an offer
    busy: int  # agents on a connected call, or wrapping one up
    on_break: int
    lent: Mapping[str, int] = field(default_factory=dict)  # host -> this city's agents lent to it


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """What `withdraw` took away: the call from its queue, or the call and its live offer."""

    location: CallLocation
    offer: HeldOffer | None = None


@dataclass(frozen=True, slots=True)
class Reaped:
    """What `reap_instances` did: the silent instances it forgot (some may have had no agent
    left) and each agent of theirs it disconnected, with the offer it lost."""

    instances: tuple[str, ...] = ()
    agents: list[tuple[int, HeldOffer | None]] = field(default_factory=list)


class HotState(Protocol):
    """The operations the service needs; each is atomic across service instances."""

    @property
    def failures(self) -> int:
        """How many operations have failed here so far.

        A write that failed after the database committed (a call recorded, then not queued)
        leaves the hot state short of a call; a rise in this count tells the watcher to repair.
        """

    async def ping(self) -> None:
        """Raise `StateUnavailable` if the backend cannot answer."""

    async def close(self) -> None:
        """Release connections (and stop event listeners)."""

    async def reset(self) -> None:
        """Delete every key this state owns (tests, and `surge` tools that rebuild from the DB)."""

    async def epoch(self) -> str | None:
        """The marker of the state's current build, or None when the state was lost (or is new)."""

    async def begin_epoch(self, epoch: str) -> str:
        """Mark a (re)build with `epoch` unless one is marked already; return the one in force.

        Of instances rebuilding at once, one marker wins and all of them adopt it.
        """

    async def dispatch_view(
        self,
        cities: Sequence[str],
        *,
        queue_depth: int,
        lends_to: Mapping[str, Collection[str]] | None = None,
        spare: Mapping[str, int] | None = None,
        unless_mark: str | None = None,
    ) -> tuple[str, dict[str, CityView] | None]:
        """The change mark and, unless it is `unless_mark`, what `snapshot` reads with
        `placeable_only`, in one atomic step: a dispatch cycle's one read.

        With the mark a cycle last settled on, a cycle that has nothing new to look at costs
        this one read and gets None.
        """

    async def change_mark(self) -> str:
        """A mark that is new whenever something happened that may make an offer possible.

        A call entering a queue (arriving, or back from an offer), an agent becoming available
        and a seat a helper lends becoming free change it; nothing else need (an offer made or
        accepted, an agent on break or gone, a read). The dispatcher reads it first: while it
        is the one it saw when nothing could be placed, a cycle has nothing to do. A rebuilt
        state (new epoch) has a new mark too.
        """

    # --- queues -----------------------------------------------------------------------------
    async def enqueue(self, calls: Sequence[QueuedCall]) -> list[bool]:
        """Queue calls in their cities; a call already queued or offered is left alone (False)."""

    async def locate(self, call_ids: Sequence[int]) -> dict[int, CallLocation]:
        """Say where each call is held."""

    async def withdraw(self, call_id: int) -> Withdrawn:
        """Take a call out of the hot state (it was abandoned).

        A queued call leaves its queue. An offered call's offer ends and its agent becomes
        available again with the idle-since it had before the offer.
        """

    async def snapshot(
        self,
        cities: Sequence[str],
        *,
        queue_depth: int,
        placeable_only: bool = False,
        lends_to: Mapping[str, Collection[str]] | None = None,
        spare: Mapping[str, int] | None = None,
    ) -> dict[str, CityView]:
        """Read every named city's figures, free agents and up to `queue_depth` head calls (and,
        with any depth, the transferred calls leading a queue on top of it: they are for its own
        agents only, so the calls behind them must still be read for helpers).

        With `placeable_only`, what is read is bounded by what could be placed, not by the
        province (the dispatcher needs no more, and reading less is cheaper): no queue further
        than the free agents of all the named cities together could take, and a city's free
        agents (longest idle first) only as many as the head calls read could use, its own and
        those of the cities in `lends_to[city]` (the hosts its agents may serve), plus
        `spare[city]` more when there is any such call. A city no read call could use shows
        none; its other figures are always complete.
        """

    # --- offers -----------------------------------------------------------------------------
    async def claim(self, claims: Sequence[OfferClaim]) -> list[HeldOffer | None]:
        """Make each claim real if, at that moment, its call is queued and its agent available.

        A made claim removes the call from its queue and the agent from the free agents, marks
        the agent `offered` and records the offer with its expiry. Claims are applied in order;
        a later claim for the same call or agent fails (None). A claim with a `lend` also fails
        when the agent's city already lends `quota` agents to the call's city, or when its surge
        stopped lending (`end_lending`).
        """

    async def end_lending(self, surge_id: int, host: str) -> list[HeldOffer]:
        """A surge is ending: refuse every later claim lent for it, and end the live offers of
        `host`'s calls held by other cities' agents.

        Each call goes back to its place; each agent is available again with the idle-since it
        had before the offer (it did nothing wrong). Calls in hand are not touched.
        """

    async def accept(
        self, offer_id: str, agent_id: int, now: float
    ) -> tuple[Outcome, HeldOffer | None]:
        """End the offer: the agent becomes `busy` with the call.

        An offer whose expiry is at or before `now` is UNKNOWN (the expiry sweep will end it).
        """

    async def decline(
        self, offer_id: str, agent_id: int, now: float
    ) -> tuple[Outcome, HeldOffer | None]:
        """End the offer: the call goes back to its place, the agent is available idle since now."""

    async def expire_offers(self, now: float, *, limit: int = 200) -> list[HeldOffer]:
        """End up to `limit` offers whose expiry is at or before `now`.

        Each call goes back to its place; each agent goes on `break` (a missed offer).
        Concurrent callers never both receive the same offer.
        """

    # --- agents -----------------------------------------------------------------------------
    async def agent_connect(
        self,
        agent_id: int,
        city: str,
        *,
        instance: str,
        now: float,
        call_id: int | None,
        call_city: str | None = None,
    ) -> AgentPresence:
        """Make the agent present on `instance`.

        An agent already present keeps its state and moves to `instance`. A new presence, or a
        `lost` agent's, is `busy` with `call_id` if given (a connected call survived a
        disconnect), else on `break`. The database's `call_id` wins over a stale presence: an
        agent `busy` with another call (its instance died between the hot-state step and the
        database commit of an accept or a completion) starts afresh as a new presence.
        `call_city` is the city of `call_id`: a call of another city makes the agent lent to it
        (counted against that host's quota again).
        """

    async def agent_disconnect(self, agent_id: int, *, instance: str) -> HeldOffer | None:
        """Make the agent absent, unless it has since connected on another instance (no-op).

        An offer it held ends and its call goes back to its place (returned). A connected call
        is not touched: it lives on in the database and can be completed after reconnecting.
        """

    async def agent_lost(self, agent_id: int, *, instance: str) -> HeldOffer | None:
        """The agent's console stopped answering: it is `lost`, unless it has since connected on
        another instance (no-op).

        An offer it held ends and its call goes back to its place (returned). A connected call
        stays with it (the voice may go on); connecting again makes it `busy` with that call, or
        on `break`. A lost agent gets no offers and is not counted among present agents.
        """

    async def set_agent_state(
        self, agent_id: int, state: AgentState, now: float
    ) -> tuple[AgentPresence, WrapUp | None]:
        """Move a present agent between `available` and `break`, or out of its wrap-up; return
        the presence and the wrap-up this ended, if any.

        Raises `AgentNotPresent` (a lost agent too), or `AgentEngaged` while it holds an offer or
        a call. Becoming available sets idle-since to now; staying available keeps it.
        """

    async def finish_call(
        self,
        agent_id: int,
        call_id: int,
        now: float,
        *,
        wrap_up_s: float = 0.0,
        publish: Mapping[str, Any] | None = None,
    ) -> AgentPresence | None:
        """A present agent busy with `call_id` goes into its wrap-up for `wrap_up_s` (still lent
        to the host it served, offered nothing), or with none is available, idle since now; else
        None.

        An absent agent that left with `call_id` in hand no longer counts as lent (the call was
        finished without it). `publish`, if given, is an event sent on the bus (as `publish`
        sends it) in the same atomic step, after the change: the frames that go with it cost
        no round trip of their own, and no instance can see the agent free before them.
        """

    async def end_wrap_ups(
        self, now: float, *, instance: str, limit: int = 200
    ) -> list[tuple[int, WrapUp]]:
        """End up to `limit` wrap-ups due by `now` of agents on `instance`: each agent becomes
        available, idle since its wrap-up's end. Returns each such agent and its wrap-up.

        Only the instance holding a console ends its wrap-up, so that it can tell the console
        `available` before any other instance's offer reaches it.
        """

    async def get_agent(self, agent_id: int) -> AgentPresence | None:
        """Return the agent's presence (`lost` included), or None when it is offline."""

    async def agents(self, cities: Sequence[str]) -> list[AgentPresence]:
        """Every known agent of the named cities (present or `lost`), in one read: the
        supervisors' live list. Ordered by agent id."""

    async def present_agents(self, cities: Sequence[str]) -> dict[str, list[int]]:
        """The ids of every present agent of each named city (in any state but lost), ascending."""

    async def get_offer(self, offer_id: str) -> HeldOffer | None:
        """Return the live offer (to show it again to a console that reconnected), or None."""

    async def heartbeat(self, instance: str, now: float) -> None:
        """Record that `instance` is alive."""

    async def reap_instances(self, now: float, *, max_silence_s: float) -> Reaped:
        """Forget the instances silent for longer than `max_silence_s`; disconnect their agents.

        Returns those instances, and each reaped agent with the offer it lost (its call went
        back to its place).
        """

    # --- rate limits --------------------------------------------------------------------------
    async def count_hit(self, key: str, *, window_s: float) -> int:
        """Count one hit on `key` and return the hits in the current fixed window."""

    async def reset_hits(self, key: str) -> None:
        """Forget the hits on `key`."""

    async def forgive_hit(self, key: str) -> None:
        """Take one hit on `key` back (an attempt counted beforehand that turned out well)."""

    # --- event bus ----------------------------------------------------------------------------
    async def publish(self, event: Mapping[str, Any]) -> None:
        """Send a JSON-serialisable event to every other service instance listening (not to
        this one: what it publishes it has delivered itself)."""

    async def echo(self, event: Mapping[str, Any]) -> None:
        """Send a JSON-serialisable event to this instance's own listeners over the bus (a
        probe that they hear it)."""

    async def welcomed(self) -> None:
        """Wait until every other instance listening when this one's listener last subscribed
        knows it listens too (from then on, what they publish reaches it)."""

    def listen(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every event sent to this instance (published by another, or echoed), from
        the moment of the call on."""
