"""The hot state in Redis, shared by every service instance; each change is one Lua script.

Key layout, under the prefix P (default ``surge:``):

- ``P call:{id}`` hash of a held call: city, score, enqueued_at, data (the whole call as a JSON
  array), and ``offer`` while it is offered;
- ``P q:{city}`` zset call data -> queue score (queued calls only): the member is the data so that
  reading the head of a queue needs no lookup per call; ``P qt:{city}`` zset call id ->
  enqueued_at (the same calls, for the oldest one);
- ``P agent:{id}`` hash of a present agent: city, state, instance, idle_since, since (Redis's
  clock when it entered its state or connected), ``offer`` or ``call`` while it holds one,
  ``lent`` (the host) while that offer or call is another city's (and through the wrap-up after
  it), ``wrap_call`` and ``wrap_until`` while wrapping up;
- ``P lending:{city}`` hash host -> how many of the city's agents are lent to it (kept in step
  with the ``lent`` fields and ``away`` hashes by the same scripts); ``P away:{agent}`` hash
  (city, host, call) of an absent agent that left with a host's call in hand, which still counts;
  ``P ended_surges`` set of surge ids no claim may lend for any more;
- ``P idle:{city}`` zset agent id -> idle_since (available agents), ``P offered:{city}``,
  ``P busy:{city}``, ``P wrap_up:{city}``, ``P break:{city}``, ``P lost:{city}`` sets of agent ids:
  every known agent is in exactly one; ``P wrap_ups`` zset agent id -> end of its wrap-up;
- ``P offer:{offer_id}`` hash: call, agent, expires_at; ``P offers`` zset offer id -> expires_at;
- ``P inst`` zset instance -> last heartbeat, ``P members:{instance}`` set of its agents' ids;
- ``P rl:{key}`` fixed-window hit counters (INCR, then PEXPIRE on the first hit);
- ``P epoch`` the marker of the state's current build (SET NX when it is rebuilt): a Redis
  restarted empty has none, which tells every instance to rebuild;
- ``P changes`` a counter the scripts raise whenever an offer may have become possible (a call
  queued, an agent available, a lent seat free): with the epoch, the dispatcher's change mark;
- pub/sub channel ``P events:{instance}`` per instance, carrying orjson-encoded events: a
  message is sent to the channel of every instance listening but its sender (the channels
  Redis has subscribers on, which a flushed or restarted server still knows once its listeners
  are back), so no instance reads back its own.

Scripts build their keys from the prefix (ARGV[1]) because most keys depend on data read inside
the script (a call's city, an agent's instance). On a Redis Cluster (a `RedisCluster` client) that
needs a prefix with a hash tag (``{surge}:``, which the settings insist on) so that every key lives
in one slot; each script also names ``P epoch`` as its one key (KEYS[1]), which is how the client
knows the node that holds the slot (standalone Redis ignores it). The commands sent outside the
scripts name keys of that slot too, and none is one a cluster client refuses to pipeline.

Replies may be bytes (the default, ``decode_responses=False``) or str: both are read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    MaxConnectionsError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

from surge import metrics
from surge.errors import AgentEngaged, AgentNotPresent, StateUnavailable
from surge.state.base import (
    AGENT_MOVES,
    OFFLINE,
    AgentPresence,
    AgentState,
    CallLocation,
    CityView,
    HeldOffer,
    IdleAgent,
    IllegalAgentMove,
    OfferClaim,
    Outcome,
    QueuedCall,
    Reaped,
    Withdrawn,
    WrapUp,
    agent_place,
)

log = logging.getLogger(__name__)

# The per-city sets of present agents not available.
_ENGAGED = ("offered", "busy", "wrap_up", "break")


def _lua_moves() -> str:
    """`AGENT_MOVES` as a Lua table: source name -> {target name = true}."""
    rows = []
    for source, targets in AGENT_MOVES.items():
        allowed = ", ".join(
            f"['{agent_place(t)}'] = true" for t in sorted(targets, key=agent_place)
        )
        rows.append(f"  ['{agent_place(source)}'] = {{{allowed}}},")
    return "local MOVES = {\n" + "\n".join(rows) + "\n}\n"


# Helpers shared by the scripts. Floats travel as the strings Python wrote (repr round-trips),
# never as Lua numbers, which Lua would print with only 14 significant digits.
# Every change of an agent's state goes through `check`, before any write of its caller's
# helper: a move the table forbids fails the script with an error reply the adapter raises as
# `IllegalAgentMove`.
_LUA_PRELUDE = (
    """
local P = ARGV[1]

-- The bus channels of every instance listening but `instance`.
local function others_listening(instance)
  local own = P .. 'events:' .. instance
  local listening = P:gsub('[%*%?%[%]%^\\\\]', '\\\\%0') .. 'events:*'
  local others = {}
  for _, channel in ipairs(redis.call('PUBSUB', 'CHANNELS', listening)) do
    if channel ~= own then
      table.insert(others, channel)
    end
  end
  return others
end

-- Send a message to the bus channel of every instance listening but the sender's; return
-- those channels.
local function broadcast(sender, message)
  local reached = others_listening(sender)
  for _, channel in ipairs(reached) do
    redis.call('PUBLISH', channel, message)
  end
  return reached
end
"""
    + _lua_moves()
    + """
local function check(source, target)
  local allowed = MOVES[source or 'offline']
  if not (allowed and allowed[target]) then
    error({err = 'ILLEGAL_AGENT_MOVE ' .. (source or 'offline') .. ' ' .. target})
  end
end

-- Redis's own clock as the string of a float: when an agent entered its state.
local function clock()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end

-- Something happened that may make an offer possible: a new change mark for the dispatcher.
local function changed()
  redis.call('INCR', P .. 'changes')
end

local function leave(agent, city, state)
  if state == 'available' then
    redis.call('ZREM', P .. 'idle:' .. city, agent)
  else
    redis.call('SREM', P .. state .. ':' .. city, agent)
  end
end

local function enter(agent, city, state, idle_since)
  if state == 'available' then
    redis.call('ZADD', P .. 'idle:' .. city, idle_since, agent)
    changed()
  else
    redis.call('SADD', P .. state .. ':' .. city, agent)
  end
end

-- An agent holding an offer or a call of another city is lent to that host: counted per host in
-- its city's ``lending`` hash, which seat quotas are checked against.
local function lend(agent, city, host)
  if host ~= city then
    redis.call('HSET', P .. 'agent:' .. agent, 'lent', host)
    redis.call('HINCRBY', P .. 'lending:' .. city, host, 1)
  end
end

local function uncount(city, host)
  if redis.call('HINCRBY', P .. 'lending:' .. city, host, -1) <= 0 then
    redis.call('HDEL', P .. 'lending:' .. city, host)
  end
  changed()
end

local function unlend(agent)
  local key = P .. 'agent:' .. agent
  local a = redis.call('HMGET', key, 'city', 'lent')
  if a[2] then
    redis.call('HDEL', key, 'lent')
    uncount(a[1], a[2])
  end
end

-- Move a present agent to `state` (idle_since kept unless given); it loses its offer, call and
-- wrap-up, then holds `field` = `value` if given. A lent agent stays lent while offered, busy (an
-- accepted offer) or wrapping its call up, and no longer once it is available or on break.
local function move(agent, state, idle_since, field, value)
  local key = P .. 'agent:' .. agent
  local a = redis.call('HMGET', key, 'city', 'state', 'idle_since')
  check(a[2], state)
  idle_since = idle_since or a[3]
  if state == 'available' or state == 'break' then
    unlend(agent)
  end
  leave(agent, a[1], a[2])
  enter(agent, a[1], state, idle_since)
  if a[2] == 'wrap_up' then
    redis.call('ZREM', P .. 'wrap_ups', agent)
  end
  redis.call('HDEL', key, 'offer', 'call', 'wrap_call', 'wrap_until')
  redis.call('HSET', key, 'state', state, 'idle_since', idle_since, 'since', clock())
  if field then
    redis.call('HSET', key, field, value)
  end
end

-- ARGV from `first` on: the names of per-city sets of agents ('break', ...), '', then cities.
-- Returns the sets' names and where the cities start.
local function sets_then_cities(first)
  local sets, i = {}, first
  while ARGV[i] ~= '' do
    table.insert(sets, ARGV[i])
    i = i + 1
  end
  return sets, i + 1
end

-- The ids of a city's agents: the available ones, then those in each of the named sets.
local function members(city, sets)
  local ids = redis.call('ZRANGE', P .. 'idle:' .. city, 0, -1)
  for _, state in ipairs(sets) do
    for _, agent in ipairs(redis.call('SMEMBERS', P .. state .. ':' .. city)) do
      table.insert(ids, agent)
    end
  end
  return ids
end

local function presence(agent)
  return redis.call('HMGET', P .. 'agent:' .. agent,
    'city', 'state', 'instance', 'idle_since', 'offer', 'call', 'lent', 'since', 'wrap_call',
    'wrap_until')
end

-- Put a held call (back) at its place: its score alone decides where.
local function queue(call)
  local key = P .. 'call:' .. call
  local c = redis.call('HMGET', key, 'city', 'score', 'enqueued_at', 'data')
  redis.call('HDEL', key, 'offer')
  redis.call('ZADD', P .. 'q:' .. c[1], c[2], c[4])
  redis.call('ZADD', P .. 'qt:' .. c[1], c[3], call)
  changed()
end

local function unqueue(call)
  local c = redis.call('HMGET', P .. 'call:' .. call, 'city', 'data')
  redis.call('ZREM', P .. 'q:' .. c[1], c[2])
  redis.call('ZREM', P .. 'qt:' .. c[1], call)
end

-- Forget a live offer; return it as {offer, agent, expires_at, call data}, and its call id.
-- The caller decides where the call and the agent go.
local function end_offer(offer)
  local key = P .. 'offer:' .. offer
  local o = redis.call('HMGET', key, 'call', 'agent', 'expires_at')
  redis.call('DEL', key)
  redis.call('ZREM', P .. 'offers', offer)
  return {offer, o[2], o[3], redis.call('HGET', P .. 'call:' .. o[1], 'data')}, o[1]
end

-- Make an agent absent; an offer it held ends and its call goes back to its place.
local function drop(agent)
  local key = P .. 'agent:' .. agent
  local a = redis.call('HMGET', key, 'city', 'state', 'instance', 'offer', 'lent', 'call')
  check(a[2], 'offline')
  local held, call = false, nil
  if a[4] then
    held, call = end_offer(a[4])
    queue(call)
  end
  if a[5] and a[6] then
    -- It left with a host's call in hand (the voice may go on): it still counts until it is
    -- back and done, or the call is finished without it.
    redis.call('HSET', P .. 'away:' .. agent, 'city', a[1], 'host', a[5], 'call', a[6])
  else
    unlend(agent)
  end
  leave(agent, a[1], a[2])
  redis.call('ZREM', P .. 'wrap_ups', agent)
  redis.call('DEL', key)
  redis.call('SREM', P .. 'members:' .. a[3], agent)
  return held
end
"""
)

# ARGV: P, then (call id, city, score, enqueued_at, data) per call.
_ENQUEUE = """
local added = {}
for i = 2, #ARGV, 5 do
  local call = ARGV[i]
  local key = P .. 'call:' .. call
  if redis.call('EXISTS', key) == 1 then
    table.insert(added, 0)
  else
    redis.call('HSET', key, 'city', ARGV[i + 1], 'score', ARGV[i + 2], 'enqueued_at', ARGV[i + 3],
      'data', ARGV[i + 4])
    queue(call)
    table.insert(added, 1)
  end
end
return added
"""

# ARGV: P, call id... Returns one letter per call: q(ueued), o(ffered) or a(bsent).
_LOCATE = """
local places = {}
for i = 2, #ARGV do
  local c = redis.call('HMGET', P .. 'call:' .. ARGV[i], 'city', 'offer')
  if c[2] then
    table.insert(places, 'o')
  elseif c[1] then
    table.insert(places, 'q')
  else
    table.insert(places, 'a')
  end
end
return table.concat(places)
"""
_PLACES = {"q": CallLocation.QUEUED, "o": CallLocation.OFFERED, "a": CallLocation.ABSENT}

# ARGV: P, then (offer id, call id, agent id, expires_at, surge id or '', quota or '') per claim.
# Returns per claim false or the call's data.
_CLAIM = """
-- A claim lent for a surge needs the surge still lending and the helper below its quota.
local function may_lend(surge, quota, helper, host)
  if surge == '' then
    return true
  end
  local lent = tonumber(redis.call('HGET', P .. 'lending:' .. helper, host) or '0')
  return lent < tonumber(quota)
    and redis.call('SISMEMBER', P .. 'ended_surges', surge) == 0
end

local made = {}
for i = 2, #ARGV, 6 do
  local offer, call, agent, expires_at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local c = redis.call('HMGET', P .. 'call:' .. call, 'offer', 'data', 'city')
  local a = redis.call('HMGET', P .. 'agent:' .. agent, 'state', 'city')
  if c[2] and not c[1]
      and a[1] == 'available'
      and redis.call('EXISTS', P .. 'offer:' .. offer) == 0
      and may_lend(ARGV[i + 4], ARGV[i + 5], a[2], c[3]) then
    unqueue(call)
    redis.call('HSET', P .. 'call:' .. call, 'offer', offer)
    move(agent, 'offered', nil, 'offer', offer)
    lend(agent, a[2], c[3])
    redis.call('HSET', P .. 'offer:' .. offer, 'call', call, 'agent', agent,
      'expires_at', expires_at)
    redis.call('ZADD', P .. 'offers', expires_at, offer)
    table.insert(made, c[2])
  else
    table.insert(made, false)
  end
end
return made
"""

# ARGV: P, offer id, agent id, now, 'accept' | 'decline'.
# Returns {'unknown'}, {'not_yours'} or {'done', held offer}.
_ANSWER = """
local offer, agent, now = ARGV[2], ARGV[3], ARGV[4]
local o = redis.call('HMGET', P .. 'offer:' .. offer, 'agent', 'expires_at')
if not o[1] or tonumber(o[2]) <= tonumber(now) then
  return {'unknown'}
end
if o[1] ~= agent then
  return {'not_yours'}
end
local held, call = end_offer(offer)
if ARGV[5] == 'accept' then
  redis.call('DEL', P .. 'call:' .. call)
  move(agent, 'busy', nil, 'call', call)
else
  queue(call)
  move(agent, 'available', now)
end
return {'done', held}
"""

# ARGV: P, now, limit. Returns the ended offers, soonest expiry first.
_EXPIRE = """
local ended = {}
local due = redis.call('ZRANGEBYSCORE', P .. 'offers', '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, offer in ipairs(due) do
  local held, call = end_offer(offer)
  queue(call)
  move(held[2], 'break')
  table.insert(ended, held)
end
return ended
"""

# ARGV: P, surge id, host. Returns the ended offers.
_END_LENDING = """
redis.call('SADD', P .. 'ended_surges', ARGV[2])
local ended = {}
for _, offer in ipairs(redis.call('ZRANGE', P .. 'offers', 0, -1)) do
  local agent = redis.call('HGET', P .. 'offer:' .. offer, 'agent')
  if redis.call('HGET', P .. 'agent:' .. agent, 'lent') == ARGV[3] then
    local held, call = end_offer(offer)
    queue(call)
    move(agent, 'available')
    table.insert(ended, held)
  end
end
return ended
"""

# ARGV: P, call id. Returns {'absent'}, {'queued'} or {'offered', held offer}.
_WITHDRAW = """
local call = ARGV[2]
local key = P .. 'call:' .. call
local c = redis.call('HMGET', key, 'city', 'offer')
if not c[1] then
  return {'absent'}
end
if not c[2] then
  unqueue(call)
  redis.call('DEL', key)
  return {'queued'}
end
local held = end_offer(c[2])
redis.call('DEL', key)
move(held[2], 'available')
return {'offered', held}
"""

# ARGV: P, agent id, city, instance, now, call id or '', the call's city or ''.
# Returns the presence.
_CONNECT = """
local agent, city, instance, now, call = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = P .. 'agent:' .. agent
local old = redis.call('HMGET', key, 'instance', 'state', 'call')
if old[2] == 'busy' and old[3] ~= call then
  -- Busy with a call the database does not have in its hand (an instance died between taking
  -- an accept here and recording it, or between recording a completion and releasing the
  -- agent): that presence is stale, the agent starts afresh.
  drop(agent)
  old = {false, false, false}
end
if old[1] then
  redis.call('SREM', P .. 'members:' .. old[1], agent)
  redis.call('HSET', key, 'instance', instance)
  if old[2] == 'lost' then
    if call ~= '' then
      move(agent, 'busy', now, 'call', call)
      if ARGV[7] ~= '' and not redis.call('HGET', key, 'lent') then
        lend(agent, redis.call('HGET', key, 'city'), ARGV[7])
      end
    else
      move(agent, 'break', now)
    end
  end
else
  local state = 'break'
  if call ~= '' then
    state = 'busy'
  end
  check(nil, state)
  if call ~= '' then
    redis.call('HSET', key, 'call', call)
  end
  redis.call('HSET', key, 'city', city, 'state', state, 'instance', instance, 'idle_since', now,
    'since', clock())
  enter(agent, city, state, now)
  local away = redis.call('HMGET', P .. 'away:' .. agent, 'city', 'host', 'call')
  redis.call('DEL', P .. 'away:' .. agent)
  if away[1] and away[3] == call then
    redis.call('HSET', key, 'lent', away[2])  -- back with the call it left with: still counted
  else
    if away[1] then  -- that call was finished without it
      uncount(away[1], away[2])
    end
    if call ~= '' and ARGV[7] ~= '' then
      lend(agent, city, ARGV[7])
    end
  end
end
redis.call('SADD', P .. 'members:' .. instance, agent)
-- An instance that dies before its first heartbeat must still be reapable.
redis.call('ZADD', P .. 'inst', 'NX', now, instance)
return presence(agent)
"""

# ARGV: P, agent id, instance. Returns the lost offer, or {} when there was none.
_DISCONNECT = """
if redis.call('HGET', P .. 'agent:' .. ARGV[2], 'instance') ~= ARGV[3] then
  return {}
end
return drop(ARGV[2]) or {}
"""

# ARGV: P, agent id, instance. Returns the lost offer, or {} when there was none.
_LOST = """
local agent = ARGV[2]
local key = P .. 'agent:' .. agent
local a = redis.call('HMGET', key, 'city', 'state', 'instance', 'offer')
if a[3] ~= ARGV[3] or a[2] == 'lost' then
  return {}
end
check(a[2], 'lost')
local held = {}
if a[4] then
  local call
  held, call = end_offer(a[4])
  queue(call)
end
local call = redis.call('HGET', key, 'call')
move(agent, 'lost')
if call then
  redis.call('HSET', key, 'call', call)  -- the voice may go on: it keeps its call
else
  unlend(agent)  -- it lost an offer only: it serves no host now
end
return held
"""

# ARGV: P, agent id, 'available' | 'break', now. Returns {'absent'}, {'engaged'} or
# {'ok', presence after, presence before}.
_SET_STATE = """
local agent, state, now = ARGV[2], ARGV[3], ARGV[4]
local current = redis.call('HGET', P .. 'agent:' .. agent, 'state')
if not current or current == 'lost' then
  return {'absent'}
end
if current == 'offered' or current == 'busy' then
  return {'engaged'}
end
local before = presence(agent)
if current ~= state then
  local idle_since = nil
  if state == 'available' then
    idle_since = now
  end
  move(agent, state, idle_since)
end
return {'ok', presence(agent), before}
"""

# ARGV: P, now, instance, limit. Returns the presences (before) of the agents whose wrap-up ended.
_END_WRAP_UPS = """
local ended = {}
for _, agent in ipairs(redis.call('ZRANGEBYSCORE', P .. 'wrap_ups', '-inf', ARGV[2])) do
  local key = P .. 'agent:' .. agent
  if redis.call('HGET', key, 'instance') == ARGV[3] then
    local before = presence(agent)
    move(agent, 'available', redis.call('HGET', key, 'wrap_until'))
    table.insert(ended, {agent, before})
    if #ended == tonumber(ARGV[4]) then break end
  end
end
return ended
"""

# ARGV: P, agent id, call id, now, end of the wrap-up or '', an event to publish or '', the
# publishing instance. Returns the presence, or {} when nothing changed; the event goes out
# after the change.
_FINISH = """
local function finish()
  local agent = ARGV[2]
  local away = redis.call('HMGET', P .. 'away:' .. agent, 'city', 'host', 'call')
  if away[3] == ARGV[3] then  -- finished without the agent that left with it
    redis.call('DEL', P .. 'away:' .. agent)
    uncount(away[1], away[2])
  end
  local a = redis.call('HMGET', P .. 'agent:' .. agent, 'state', 'call')
  if a[1] == 'lost' and a[2] == ARGV[3] then
    unlend(agent)  -- its call was finished without it (released)
  end
  if a[1] ~= 'busy' or a[2] ~= ARGV[3] then
    return {}
  end
  if ARGV[5] == '' then
    move(agent, 'available', ARGV[4])
  else
    move(agent, 'wrap_up', ARGV[4], 'wrap_call', ARGV[3])
    redis.call('HSET', P .. 'agent:' .. agent, 'wrap_until', ARGV[5])
    redis.call('ZADD', P .. 'wrap_ups', ARGV[5], agent)
  end
  return presence(agent)
end
local result = finish()
if ARGV[6] ~= '' then
  broadcast(ARGV[7], ARGV[6])
end
return result
"""

# ARGV: P, the publishing instance, the message. Returns the channels it was sent to.
_BROADCAST = """
return broadcast(ARGV[2], ARGV[3])
"""

# ARGV: P, instance, now, the instance whose bus this is. Returns {how many instances the
# registry holds, the bus channels of the other instances listening}.
_HEARTBEAT = """
redis.call('ZADD', P .. 'inst', ARGV[3], ARGV[2])
return {redis.call('ZCARD', P .. 'inst'), others_listening(ARGV[4])}
"""

# ARGV: P, then the names of the per-city sets of agents not available ('break', ...), '',
# then the cities. Returns every known agent's id and presence, city by city.
_AGENTS = """
local sets, first = sets_then_cities(2)
local found = {}
for c = first, #ARGV do
  for _, agent in ipairs(members(ARGV[c], sets)) do
    table.insert(found, {agent, presence(agent)})
  end
end
return found
"""

# ARGV: P, then the names of the per-city sets of present agents not available, '', then the
# cities. Returns per city the ids of its present agents.
_PRESENT = """
local sets, first = sets_then_cities(2)
local found = {}
for c = first, #ARGV do
  table.insert(found, members(ARGV[c], sets))
end
return found
"""

# ARGV: P, exclusive upper bound on the last heartbeat ('(' .. cutoff).
# Returns {the reaped instances, then {agent id, held offer or false} per reaped agent}.
_REAP = """
local silent = redis.call('ZRANGEBYSCORE', P .. 'inst', '-inf', ARGV[2])
local reaped = {silent}
for _, instance in ipairs(silent) do
  local members = P .. 'members:' .. instance
  for _, agent in ipairs(redis.call('SMEMBERS', members)) do
    table.insert(reaped, {agent, drop(agent)})
  end
  redis.call('DEL', members)
  redis.call('ZREM', P .. 'inst', instance)
end
return reaped
"""

# ARGV: P, a change mark or '', queue depth, placeable only ('1' or '0'), n, n cities, then when
# placeable only one reach per city: "spare host host ...", the hosts as 1-based places in the
# city list.
# Returns {the change mark} alone when it is the one given, else {the change mark, one JSON
# array holding per city [waiting, oldest enqueued_at (a string) or null, head calls, "agent
# idle_since agent idle_since ...", offered, busy, on break, "host lent ..."]}: one string
# instead of hundreds of reply elements keeps the client's parsing cheap (scores stay the
# strings Redis wrote, so they round-trip exactly).
# Placeable only, a city's free agents are read only as far as the head calls read could use
# (its own and its hosts', plus the spare), so the cost follows the calls, not the agents.
_SNAPSHOT = """
local t = redis.call('MGET', P .. 'epoch', P .. 'changes')
local mark = (t[1] or '') .. ':' .. (t[2] or '0')
if mark == ARGV[2] then
  return {mark}
end
local depth = tonumber(ARGV[3])
local placeable = ARGV[4] == '1'
local n = tonumber(ARGV[5])
local free = {}
local total = 0
for i = 1, n do
  free[i] = redis.call('ZCARD', P .. 'idle:' .. ARGV[5 + i])
  total = total + free[i]
end
if placeable and total < depth then depth = total end
local heads = {}
local waiting = {}
for i = 1, n do
  local q = P .. 'q:' .. ARGV[5 + i]
  waiting[i] = redis.call('ZCARD', q)
  heads[i] = {}
  if depth > 0 and waiting[i] > 0 then
    -- Transferred calls lead the queue (scores below 0) and come on top of the depth.
    local handed = redis.call('ZCOUNT', q, '-inf', '(0')
    heads[i] = redis.call('ZRANGE', q, 0, depth + handed - 1)
  end
end
local views = {}
for i = 1, n do
  local city = ARGV[5 + i]
  local take = free[i]
  if placeable then
    local usable = #heads[i]
    local words = string.gmatch(ARGV[5 + n + i], '%S+')
    local spare = tonumber(words())
    for host in words do
      usable = usable + #heads[tonumber(host)]
    end
    if usable > 0 then usable = usable + spare end
    if usable < take then take = usable end
  end
  local idle = ''
  if take > 0 then
    idle = table.concat(
      redis.call('ZRANGE', P .. 'idle:' .. city, 0, take - 1, 'WITHSCORES'), ' ')
  end
  local oldest = redis.call('ZRANGE', P .. 'qt:' .. city, 0, 0, 'WITHSCORES')[2]
  table.insert(views, '[' .. table.concat({
    waiting[i],
    oldest and ('"' .. oldest .. '"') or 'null',
    '[' .. table.concat(heads[i], ',') .. ']',
    '"' .. idle .. '"',
    redis.call('SCARD', P .. 'offered:' .. city),
    redis.call('SCARD', P .. 'busy:' .. city) + redis.call('SCARD', P .. 'wrap_up:' .. city),
    redis.call('SCARD', P .. 'break:' .. city),
    cjson.encode(table.concat(redis.call('HGETALL', P .. 'lending:' .. city), ' ')),
  }, ',') .. ']')
end
return {mark, '[' .. table.concat(views, ',') .. ']'}
"""

# KEYS: the counter. ARGV: window in ms. Testing the TTL rather than `hits == 1` means a counter
# that somehow lost its expiry gets one back instead of blocking its key for good.
# ARGV[2] offer id. Returns the live offer, or false.
_GET_OFFER = """
local o = redis.call('HMGET', P .. 'offer:' .. ARGV[2], 'call', 'agent', 'expires_at')
if not o[1] then return false end
return {ARGV[2], o[2], o[3], redis.call('HGET', P .. 'call:' .. o[1], 'data')}
"""

_COUNT_HIT = """
local hits = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return hits
"""

# Never below zero, and never a key without its expiry (an expired window is simply gone).
_FORGIVE_HIT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""

_CLOSE_WAIT_S = 5.0  # how long close() waits for a listener to leave its read
CONNECTION_WAIT_S = 10.0  # how long a command waits for a free connection (standalone too)
_SUBSCRIPTIONS = 8  # connections a cluster client keeps for pub/sub beyond max_connections


@contextmanager
def _mapped(failed: Callable[[], None]) -> Iterator[None]:
    """Turn a backend failure into `StateUnavailable`, the one error callers handle."""
    try:
        yield
    except (RedisError, RedisClusterException, OSError) as exc:  # a cluster's is no RedisError
        failed()
        metrics.BACKEND_ERRORS.labels("redis").inc()
        raise StateUnavailable(f"hot state unavailable: {exc}") from exc


@contextmanager
def _in_use(at_rest: asyncio.Event, failed: Callable[[], None]) -> Iterator[None]:
    """Flag a listener's connection as busy for `close()`, mapping failures as `_mapped` does."""
    at_rest.clear()
    try:
        with _mapped(failed):
            yield
    finally:
        at_rest.set()


def _illegal_move(exc: ResponseError) -> IllegalAgentMove | ResponseError:
    """The `IllegalAgentMove` a script's `check` refused, or the error itself if it is another."""
    words = str(exc).split()
    if len(words) < 3 or words[0] != "ILLEGAL_AGENT_MOVE":
        return exc
    source, target = (None if name == OFFLINE else AgentState(name) for name in words[1:3])
    return IllegalAgentMove(source, target)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _float(value: bytes | str) -> float:
    return float(_text(value))


def _arg(value: float) -> str:
    """Write a float so that Redis and Lua read back exactly the same double."""
    return repr(float(value))


def _data(call: QueuedCall) -> bytes:
    """Encode a call as the JSON array its hash and its queue entry carry (a transferred call's
    note last)."""
    fields = [call.call_id, call.city, call.priority, float(call.enqueued_at)]
    fields += [call.caller, call.channel, call.callback]
    return orjson.dumps(fields if call.note is None else [*fields, call.note])


def _call(fields: Sequence[Any]) -> QueuedCall:
    """Rebuild a call from its decoded JSON array (six fields when written before callbacks;
    a transferred call's note last)."""
    call_id, city, priority, enqueued_at, caller, channel, *rest = fields
    callback = bool(rest[0]) if rest else False
    note = rest[1] if len(rest) > 1 else None
    return QueuedCall(call_id, city, priority, enqueued_at, caller, channel, note, callback)


def _held(row: Sequence[Any]) -> HeldOffer:
    """Read (offer, agent, expires_at, call data)."""
    offer_id, agent_id, expires_at, data = row
    return HeldOffer(
        offer_id=_text(offer_id),
        call=_call(orjson.loads(data)),
        agent_id=int(agent_id),
        expires_at=_float(expires_at),
    )


def _presence(agent_id: int, row: Sequence[Any]) -> AgentPresence:
    """Read (city, state, instance, idle_since, offer, call, lent, since, wrap_call, wrap_until);
    offer, call, lent and the wrap-up may be None (since too, on a presence older than that
    field)."""
    city, state, instance, idle_since, offer_id, call_id, lent_to, since, wrap_call, wrap_until = (
        row
    )
    return AgentPresence(
        agent_id=agent_id,
        city=_text(city),
        state=AgentState(_text(state)),
        instance=_text(instance),
        idle_since=_float(idle_since),
        offer_id=None if offer_id is None else _text(offer_id),
        call_id=None if call_id is None else int(call_id),
        lent_to=None if lent_to is None else _text(lent_to),
        wrap_up=None if wrap_call is None else WrapUp(int(wrap_call), _float(wrap_until)),
        since=0.0 if since is None else _float(since),
    )


def _city_view(city: str, row: Sequence[Any]) -> CityView:
    """Read a city's row; most rows have no queue, free agents or loans (nothing to build)."""
    waiting, oldest, head, idle, offered, busy, on_break, lent = row
    pairs = idle.split() if idle else ()
    loans = lent.split() if lent else ()
    return CityView(
        city=city,
        waiting=waiting,
        oldest_enqueued_at=None if oldest is None else float(oldest),
        queue=tuple([_call(fields) for fields in head]) if head else (),
        idle=tuple(
            [
                IdleAgent(int(agent_id), city, float(idle_since))
                for agent_id, idle_since in zip(pairs[::2], pairs[1::2], strict=True)
            ]
        )
        if pairs
        else (),
        offered=int(offered),
        busy=int(busy),
        on_break=int(on_break),
        lent={host: int(n) for host, n in zip(loans[::2], loans[1::2], strict=True)}
        if loans
        else {},
    )


def _glob_escape(text: str) -> str:
    """Quote the characters SCAN MATCH treats as patterns."""
    return "".join("\\" + ch if ch in "*?[]\\^" else ch for ch in text)


class ClusterClient(RedisCluster):
    """A Redis Cluster client that learns the cluster before routing any command, and whose
    commands wait for a connection (as a standalone `BlockingConnectionPool`'s do) instead of
    failing at once when `max_connections` are in use, as redis-py's cluster pools would.

    redis-py 8.1's `RedisCluster` routes a command issued before it knows the nodes as if it had
    no key (to any node); several at once on a fresh client then meet a refresh of the topology
    that closes connections in use (`AttributeError` on a writer that is gone). Learning the
    nodes first, under the client's own lock, routes each by its slot from the start.
    """

    def __init__(self, *, max_connections: int = 100, **kwargs: Any) -> None:
        # The event bus's subscriptions hold a connection each, beside the commands' share.
        super().__init__(max_connections=max_connections + _SUBSCRIPTIONS, **kwargs)
        self._commands = asyncio.Semaphore(max_connections)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        await self.initialize()  # at once when done: it only checks a flag
        try:
            async with asyncio.timeout(CONNECTION_WAIT_S):
                await self._commands.acquire()
        except TimeoutError:
            raise MaxConnectionsError(
                f"no Redis Cluster connection free within {CONNECTION_WAIT_S:g} s"
            ) from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._commands.release()

    def pubsub(self, *args: Any, **kwargs: Any) -> ClusterPubSub:
        return _ClusterPubSub(self, *args, **kwargs)


class _ClusterPubSub(ClusterPubSub):
    """A cluster pubsub that learns the cluster before it subscribes (it looks up the node of
    its channel's slot, which a fresh client does not know yet)."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        await self.cluster.initialize()
        return await super().execute_command(*args, **kwargs)


class _Lane:
    """The hot commands' own connections to a standalone Redis, past redis-py's layers.

    `execute_command` wraps each command in a retry, observability records, the pool's
    condition and timeout, a health check and a task per send (its socket timeout); an EVALSHA
    costs about 100 µs of CPU through it and 55 µs here, and a call's life sends eight or nine.
    Up to `size` commands run at once, each on a connection of its own, one more waiting at
    most `wait_s` for one to be free; a connection that waits idle and is found closed (the
    server restarted) is replaced, one that fails or is cut short is closed. The socket timeout
    of the pool's connections bounds each command as a whole.
    """

    def __init__(self, pool: ConnectionPool, *, size: int, wait_s: float) -> None:
        settings = dict(pool.connection_kwargs)
        # The URL's socket timeout, or the connection class's own default (redis-py's 5 s):
        # read off a connection made as the pool makes them (making one does not connect).
        self._timeout_s: float | None = pool.connection_class(**settings).socket_timeout
        settings["socket_timeout"] = None  # the deadline is the command's, not each read's
        self._settings = settings
        self._connection_class = pool.connection_class
        self._free = asyncio.Semaphore(size)
        self._wait_s = wait_s
        self._idle: list[AbstractConnection] = []
        self._closed = False

    async def command(self, *args: EncodableT) -> Any:
        """Send one command and return its reply; an error reply is raised (`ResponseError`)."""
        if self._free.locked():
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._free.acquire()
            except TimeoutError:
                raise MaxConnectionsError(
                    f"no Redis connection free within {self._wait_s:g} s"
                ) from None
        else:
            await self._free.acquire()
        try:
            connection = await self._take()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await connection.send_packed_command(
                        connection.pack_command(*args), check_health=False
                    )
                    reply = await connection.read_response()
            except ResponseError:
                await self._give(connection)  # the reply was read: the connection is in step
                raise
            except BaseException as exc:
                # Cut short (a failure, a timeout, a cancellation): a reply may still come.
                await connection.disconnect(nowait=True)
                if isinstance(exc, TimeoutError):
                    raise RedisTimeoutError(f"no reply within {self._timeout_s:g} s") from None
                raise
            await self._give(connection)
            return reply
        finally:
            self._free.release()

    async def drop_idle(self) -> None:
        """Close the idle connections (all may be stale once one was: the server restarted)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect(nowait=True)

    async def close(self) -> None:
        """Close the idle connections, and each busy one as its command ends."""
        self._closed = True
        await self.drop_idle()

    async def _take(self) -> AbstractConnection:
        while self._idle:
            connection = self._idle.pop()
            with suppress(RedisConnectionError):
                if connection.is_connected and not await connection.can_read():
                    return connection
            await connection.disconnect(nowait=True)
        made: AbstractConnection = self._connection_class(**self._settings)
        return made  # it connects on its first send

    async def _give(self, connection: AbstractConnection) -> None:
        if self._closed:
            await connection.disconnect(nowait=True)
        else:
            self._idle.append(connection)


class _Peers:
    """Whether another instance may hear this one's bus messages: one alone sends none, each
    of which would be a round trip to Redis for nobody.

    An instance is alone once its listener has been subscribed, and every heartbeat's reading
    has found no other instance registered nor any other listening, for `alone_after_s` (the
    reaper's threshold: any live instance heartbeats well within it, a Redis restarted empty
    included) with no hello heard meanwhile. Between two readings a listener may subscribe: it
    says hello to every instance listening each time it does, and each answers with a welcome
    once it has stopped being alone; an instance starting waits for the welcomes before it
    serves (`RedisState.welcomed`), so nothing meant for its sockets goes unsent.
    """

    def __init__(self, alone_after_s: float | None) -> None:
        self._alone_after_s = alone_after_s
        self.alone = False
        self.hellos = 0  # heard so far: a registry read older than one says nothing
        self.welcomed = asyncio.Event()
        self._since: float | None = None  # since when every read found this instance alone
        self._listening = 0  # listeners subscribed
        self._unwelcomed: set[str] | None = None  # None: no hello answered yet

    def listening(self, change: int) -> None:
        """A listener subscribed (+1) or left (-1): either way, alone is to be learnt again."""
        self._listening += change
        self.not_alone()
        if change < 0:  # welcomed again once the next subscription's hello is answered
            self._unwelcome()

    def not_alone(self) -> None:
        self.alone = False
        self._since = None

    def heard_hello(self) -> None:
        self.hellos += 1
        self.not_alone()

    def saying_hello(self) -> None:
        """A hello is on its way: whom it reaches is not known yet."""
        self._unwelcome()

    def _unwelcome(self) -> None:
        self.welcomed.clear()
        self._unwelcomed = None

    def expect(self, instances: set[str]) -> None:
        """The instances a hello reached, whose welcomes are awaited."""
        self._unwelcomed = instances
        self._check_welcomed()

    def welcomed_by(self, instance: str) -> None:
        if self._unwelcomed is not None:
            self._unwelcomed.discard(instance)
            self._check_welcomed()

    def _check_welcomed(self) -> None:
        if self._unwelcomed is not None and not self._unwelcomed:
            self.welcomed.set()

    def registry_read(self, count: int, listening: set[str], *, hellos_before: int) -> None:
        """The registry held `count` instances and `listening` were the other instances
        listening, in a read begun after `hellos_before` hellos."""
        if self._unwelcomed is not None:
            self._unwelcomed &= listening  # one no longer listening will not answer
            self._check_welcomed()
        if (
            self._alone_after_s is None
            or count > 1
            or listening
            or self.hellos != hellos_before
            or self._listening == 0
        ):
            self.not_alone()
            return
        now = time.monotonic()
        if self._since is None:
            self._since = now
        self.alone = now - self._since >= self._alone_after_s


class RedisState:
    """`HotState` in Redis.

    The state owns `client`: `close()` closes it. Every Redis or socket failure surfaces as
    `StateUnavailable`.
    """

    def __init__(
        self,
        client: aioredis.Redis | RedisCluster,
        *,
        instance: str,
        prefix: str = "surge:",
        alone_after_s: float | None = None,
    ) -> None:
        """`alone_after_s`: how long the heartbeats must find no other instance registered nor
        listening before this one's bus messages go unsent (`_Peers`); None, never."""
        self._client = client
        self._prefix = prefix
        self._instance = instance  # whose bus channel this state listens on
        self._slot_key = f"{prefix}epoch"  # each script's KEYS[1]: where a cluster routes it
        self._channel = self._channel_of(instance)
        self._peers = _Peers(alone_after_s)
        self._welcomes: set[asyncio.Task[None]] = set()  # answers to hellos, under way
        # Each listener's pubsub, with an event set while its connection is at rest.
        self._listeners: dict[PubSub, asyncio.Event] = {}
        self._closed = False
        self.failures = 0
        # The hot commands (scripts, publishes) run on a lane of their own on a standalone
        # server, as many at once as the client's pool allows; a cluster's client routes them.
        self._lane = (
            None
            if isinstance(client, RedisCluster)
            else _Lane(
                client.connection_pool,
                size=client.connection_pool.max_connections,
                wait_s=CONNECTION_WAIT_S,
            )
        )

        def script(body: str) -> AsyncScript:
            return client.register_script(_LUA_PRELUDE + body)

        self._enqueue = script(_ENQUEUE)
        self._locate = script(_LOCATE)
        self._claim = script(_CLAIM)
        self._answer = script(_ANSWER)
        self._expire = script(_EXPIRE)
        self._withdraw = script(_WITHDRAW)
        self._end_lending = script(_END_LENDING)
        self._connect = script(_CONNECT)
        self._disconnect = script(_DISCONNECT)
        self._lost = script(_LOST)
        self._set_state = script(_SET_STATE)
        self._finish = script(_FINISH)
        self._end_wrap_ups = script(_END_WRAP_UPS)
        self._reap = script(_REAP)
        self._agents = script(_AGENTS)
        self._present = script(_PRESENT)
        self._snapshot = script(_SNAPSHOT)
        self._get_offer = script(_GET_OFFER)
        self._broadcast = script(_BROADCAST)
        self._heartbeat = script(_HEARTBEAT)
        self._count_hit = client.register_script(_COUNT_HIT)
        self._forgive_hit = client.register_script(_FORGIVE_HIT)

    def _failed(self) -> None:
        self.failures += 1

    async def ping(self) -> None:
        """Raise `StateUnavailable` if Redis cannot answer."""
        with _mapped(self._failed):
            await self._client.ping()

    async def close(self) -> None:
        """Stop the listeners, then close the client and with it every connection."""
        if self._closed:
            return
        self._closed = True
        # Closing the client cuts every connection, and a read cut short reconnects (and leaks
        # the new socket). So a listener blocked in a read is woken by unsubscribing it, and
        # closing waits until its connection is at rest; a listener not reading ends on its
        # next iteration, when it sees `_closed`.
        for pubsub, at_rest in list(self._listeners.items()):
            if not at_rest.is_set():
                with suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(_CLOSE_WAIT_S):
                        await pubsub.unsubscribe()
                        await at_rest.wait()
        for task in self._welcomes:
            task.cancel()
        if self._lane is not None:
            await self._lane.close()
        await self._client.aclose()

    async def reset(self) -> None:
        """Delete every key under the prefix."""
        batch: list[Any] = []
        with _mapped(self._failed):
            async for key in self._client.scan_iter(
                match=_glob_escape(self._prefix) + "*", count=1000
            ):
                batch.append(key)
                if len(batch) == 1000:
                    await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                await self._client.unlink(*batch)

    async def epoch(self) -> str | None:
        """The marker of the state's current build, or None when Redis lost it."""
        with _mapped(self._failed):
            value = await self._client.get(f"{self._prefix}epoch")
        return None if value is None else _text(value)

    async def begin_epoch(self, epoch: str) -> str:
        """Mark a rebuild with `epoch` unless one is marked (SET NX); return the one in force."""
        key = f"{self._prefix}epoch"
        with _mapped(self._failed):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(key, epoch, nx=True)
                pipe.get(key)
                _, current = await pipe.execute()
        return _text(current)

    async def change_mark(self) -> str:
        """The epoch and the change counter, read together (one round trip)."""
        with _mapped(self._failed):
            epoch, changes = await self._client.mget(
                f"{self._prefix}epoch", f"{self._prefix}changes"
            )
        return f"{_text(epoch or b'')}:{_text(changes or b'0')}"

    async def _run(
        self, script: AsyncScript, *args: str | int | bytes, idempotent: bool = False
    ) -> Any:
        keys, argv = [self._slot_key], [self._prefix, *args]
        with _mapped(self._failed):
            try:
                try:
                    return await self._evalsha(script, keys, argv)
                except RedisConnectionError:
                    # A broken connection is most often one to a server that restarted (its
                    # socket found closed only now): the pool's idle ones are stale too, so
                    # they go, and the next command opens a fresh one.
                    await self._drop_idle_connections()
                    if not idempotent:
                        raise  # it may have run before its connection broke
                    # One that may run twice runs again, on a fresh connection.
                    return await self._evalsha(script, keys, argv)
            except ResponseError as exc:
                raise _illegal_move(exc) from None

    async def _evalsha(
        self, script: AsyncScript, keys: list[str], argv: list[str | int | bytes]
    ) -> Any:
        if self._lane is None:
            return await script(keys=keys, args=argv)
        command = ("EVALSHA", script.sha, len(keys), *keys, *argv)
        try:
            return await self._lane.command(*command)
        except NoScriptError:  # the server does not have it yet (or lost it): it did not run
            await self._lane.command("SCRIPT", "LOAD", script.script)  # under the same SHA
            return await self._lane.command(*command)

    async def _drop_idle_connections(self) -> None:
        if self._lane is not None:
            await self._lane.drop_idle()
        if isinstance(self._client, RedisCluster):
            for node in self._client.get_nodes():
                await node.disconnect_free_connections()
        else:
            await self._client.connection_pool.disconnect(inuse_connections=False)

    # --- queues -----------------------------------------------------------------------------
    async def enqueue(self, calls: Sequence[QueuedCall]) -> list[bool]:
        """Queue calls in their cities; one already queued or offered is left alone (False)."""
        if not calls:
            return []
        args: list[str | int | bytes] = []
        for c in calls:
            args += [c.call_id, c.city, _arg(c.score), _arg(c.enqueued_at), _data(c)]
        added = await self._run(self._enqueue, *args, idempotent=True)  # queued once, however often
        return [bool(one) for one in added]

    async def locate(self, call_ids: Sequence[int]) -> dict[int, CallLocation]:
        """Say where each call is held."""
        if not call_ids:
            return {}
        places = _text(await self._run(self._locate, *call_ids, idempotent=True))
        return {call_id: _PLACES[place] for call_id, place in zip(call_ids, places, strict=True)}

    async def withdraw(self, call_id: int) -> Withdrawn:
        """Take a call out of the hot state; an offered call's agent is idle as before the offer."""
        location, *held = await self._run(self._withdraw, call_id)
        return Withdrawn(CallLocation(_text(location)), _held(held[0]) if held else None)

    async def snapshot(
        self,
        cities: Sequence[str],
        *,
        queue_depth: int,
        placeable_only: bool = False,
        lends_to: Mapping[str, Collection[str]] | None = None,
        spare: Mapping[str, int] | None = None,
    ) -> dict[str, CityView]:
        """Read every named city's figures, free agents and head calls in one atomic script."""
        if not cities:
            return {}
        _, views = await self._read_views(
            cities, queue_depth, placeable_only=placeable_only, lends_to=lends_to, spare=spare
        )
        assert views is not None  # no mark given: always read
        return views

    async def dispatch_view(
        self,
        cities: Sequence[str],
        *,
        queue_depth: int,
        lends_to: Mapping[str, Collection[str]] | None = None,
        spare: Mapping[str, int] | None = None,
        unless_mark: str | None = None,
    ) -> tuple[str, dict[str, CityView] | None]:
        """The change mark and, unless it is `unless_mark`, the placeable-only snapshot: the
        same script, one round trip."""
        return await self._read_views(
            cities,
            queue_depth,
            placeable_only=True,
            lends_to=lends_to,
            spare=spare,
            unless_mark=unless_mark,
        )

    async def _read_views(
        self,
        cities: Sequence[str],
        queue_depth: int,
        *,
        placeable_only: bool,
        lends_to: Mapping[str, Collection[str]] | None,
        spare: Mapping[str, int] | None,
        unless_mark: str | None = None,
    ) -> tuple[str, dict[str, CityView] | None]:
        # A mark always holds a ':', so '' never matches one.
        args: list[str | int] = [unless_mark or "", max(queue_depth, 0)]
        args += [1 if placeable_only else 0, len(cities), *cities]
        if placeable_only:
            place = {city: str(i) for i, city in enumerate(cities, 1)}
            lends_to, spare = lends_to or {}, spare or {}
            for city in cities:
                hosts = [place[host] for host in lends_to.get(city, ()) if host in place]
                args.append(" ".join([str(spare.get(city, 0)), *hosts]))
        mark, *read = await self._run(self._snapshot, *args, idempotent=True)
        if not read:
            return _text(mark), None
        rows = orjson.loads(read[0])
        views = {city: _city_view(city, row) for city, row in zip(cities, rows, strict=True)}
        return _text(mark), views

    # --- offers -----------------------------------------------------------------------------
    async def claim(self, claims: Sequence[OfferClaim]) -> list[HeldOffer | None]:
        """Make each claim real if its call is queued and its agent available, in order."""
        if not claims:
            return []
        args: list[str | int] = []
        for c in claims:
            args += [c.offer_id, c.call_id, c.agent_id, _arg(c.expires_at)]
            args += ["", ""] if c.lend is None else [c.lend.surge_id, c.lend.quota]
        rows = await self._run(self._claim, *args)
        return [
            None
            if row is None
            else HeldOffer(c.offer_id, _call(orjson.loads(row)), c.agent_id, c.expires_at)
            for c, row in zip(claims, rows, strict=True)
        ]

    async def end_lending(self, surge_id: int, host: str) -> list[HeldOffer]:
        """Refuse later claims lent for the surge; end the host's offers to other cities' agents."""
        return [_held(row) for row in await self._run(self._end_lending, surge_id, host)]

    async def accept(
        self, offer_id: str, agent_id: int, now: float
    ) -> tuple[Outcome, HeldOffer | None]:
        """End the offer: the agent becomes `busy` with the call, which leaves the hot state."""
        return await self._answer_offer(offer_id, agent_id, now, "accept")

    async def decline(
        self, offer_id: str, agent_id: int, now: float
    ) -> tuple[Outcome, HeldOffer | None]:
        """End the offer: the call goes back to its place, the agent is available idle since now."""
        return await self._answer_offer(offer_id, agent_id, now, "decline")

    async def _answer_offer(
        self, offer_id: str, agent_id: int, now: float, answer: str
    ) -> tuple[Outcome, HeldOffer | None]:
        outcome, *held = await self._run(self._answer, offer_id, agent_id, _arg(now), answer)
        return Outcome(_text(outcome)), _held(held[0]) if held else None

    async def expire_offers(self, now: float, *, limit: int = 200) -> list[HeldOffer]:
        """End up to `limit` offers due by `now`, soonest first; their agents go on break."""
        if limit <= 0:
            return []  # ZRANGEBYSCORE reads a negative count as "all"
        return [_held(row) for row in await self._run(self._expire, _arg(now), limit)]

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
        """Make the agent present on `instance`; a known agent keeps its city and state."""
        call = "" if call_id is None else call_id
        # Connecting twice leaves the agent as connecting once does: it may run again.
        row = await self._run(
            self._connect,
            *(agent_id, city, instance, _arg(now), call, call_city or ""),
            idempotent=True,
        )
        return _presence(agent_id, row)

    async def agent_disconnect(self, agent_id: int, *, instance: str) -> HeldOffer | None:
        """Make the agent absent unless it is now on another instance; return the offer it lost."""
        row = await self._run(self._disconnect, agent_id, instance)
        return _held(row) if row else None

    async def agent_lost(self, agent_id: int, *, instance: str) -> HeldOffer | None:
        """The agent stopped answering: `lost`, keeping its call; return the offer it lost."""
        row = await self._run(self._lost, agent_id, instance)
        return _held(row) if row else None

    async def set_agent_state(
        self, agent_id: int, state: AgentState, now: float
    ) -> tuple[AgentPresence, WrapUp | None]:
        """Move a present agent between `available` and `break`, or out of its wrap-up."""
        if state not in (AgentState.AVAILABLE, AgentState.BREAK):
            raise ValueError(f"agents can only choose available or break, not {state}")
        verdict, *row = await self._run(self._set_state, agent_id, state.value, _arg(now))
        match _text(verdict):
            case "absent":
                raise AgentNotPresent(f"agent {agent_id} is not connected")
            case "engaged":
                raise AgentEngaged(f"agent {agent_id} holds an offer or a call")
        after, before = row
        return _presence(agent_id, after), _presence(agent_id, before).wrap_up

    async def finish_call(
        self,
        agent_id: int,
        call_id: int,
        now: float,
        *,
        wrap_up_s: float = 0.0,
        publish: Mapping[str, Any] | None = None,
    ) -> AgentPresence | None:
        """A present agent busy with `call_id` goes into its wrap-up (available when there is
        none), idle since now; else None. Then `publish`, if given, goes on the bus (the same
        script)."""
        until = _arg(now + wrap_up_s) if wrap_up_s > 0 else ""
        event = b"" if publish is None or self._peers.alone else orjson.dumps(publish)
        row = await self._run(
            self._finish, agent_id, call_id, _arg(now), until, event, self._instance
        )
        return _presence(agent_id, row) if row else None

    async def end_wrap_ups(
        self, now: float, *, instance: str, limit: int = 200
    ) -> list[tuple[int, WrapUp]]:
        """End the due wrap-ups of agents on `instance`: available, idle since the end."""
        rows = await self._run(self._end_wrap_ups, _arg(now), instance, limit)
        ended = [_presence(int(agent), before) for agent, before in rows]
        return [(p.agent_id, p.wrap_up) for p in ended if p.wrap_up is not None]

    async def get_agent(self, agent_id: int) -> AgentPresence | None:
        """Return the agent's presence, or None when it is offline."""
        fields = ["city", "state", "instance", "idle_since", "offer", "call", "lent", "since"]
        fields += ["wrap_call", "wrap_until"]
        with _mapped(self._failed):
            row = await self._client.hmget(f"{self._prefix}agent:{agent_id}", fields)
        return None if row[0] is None else _presence(agent_id, row)

    async def agents(self, cities: Sequence[str]) -> list[AgentPresence]:
        """Every known agent of the named cities (present or lost), by id: one script."""
        if not cities:
            return []
        unavailable = [state.value for state in AgentState if state is not AgentState.AVAILABLE]
        rows = await self._run(self._agents, *unavailable, "", *cities, idempotent=True)
        return sorted((_presence(int(agent), row) for agent, row in rows), key=lambda p: p.agent_id)

    async def present_agents(self, cities: Sequence[str]) -> dict[str, list[int]]:
        """The ids of every present agent of each named city (in any state), ascending."""
        if not cities:
            return {}
        rows = await self._run(self._present, *_ENGAGED, "", *cities, idempotent=True)
        return {city: sorted(map(int, ids)) for city, ids in zip(cities, rows, strict=True)}

    async def get_offer(self, offer_id: str) -> HeldOffer | None:
        """Return the live offer, or None."""
        row = await self._run(self._get_offer, offer_id, idempotent=True)
        return None if row is None else _held(row)

    async def heartbeat(self, instance: str, now: float) -> None:
        """Record that `instance` is alive; learn whether any other instance is registered or
        listens."""
        hellos = self._peers.hellos
        count, channels = await self._run(self._heartbeat, instance, _arg(now), self._instance)
        listening = {self._instance_of(channel) for channel in channels}
        self._peers.registry_read(int(count), listening, hellos_before=hellos)

    async def reap_instances(self, now: float, *, max_silence_s: float) -> Reaped:
        """Forget the instances silent for longer than `max_silence_s`; disconnect their agents."""
        silent, *rows = await self._run(self._reap, "(" + _arg(now - max_silence_s))
        return Reaped(
            tuple(_text(name) for name in silent),
            [(int(agent), None if held is None else _held(held)) for agent, held in rows],
        )

    async def _say_hello(self) -> None:
        """Tell every instance listening that this one listens too; expect each one's welcome."""
        self._peers.saying_hello()
        hello = orjson.dumps({"hello": self._instance})
        reached = await self._run(self._broadcast, self._instance, hello)
        self._peers.expect({self._instance_of(channel) for channel in reached})

    def _channel_of(self, instance: str) -> str:
        return f"{self._prefix}events:{instance}"

    def _instance_of(self, channel: bytes | str) -> str:
        return _text(channel)[len(self._channel_of("")) :]

    def _welcome(self, instance: str) -> None:
        """Answer a hello: this instance stops being alone first, so that nothing it sends after
        the welcome goes unsent. The answer goes from a task of its own: the listener waits for
        no connection (a failure is logged; the newcomer waits for it a bounded time)."""
        self._peers.heard_hello()
        task = asyncio.create_task(self._send_welcome(instance))
        self._welcomes.add(task)
        task.add_done_callback(self._welcomes.discard)

    async def _send_welcome(self, instance: str) -> None:
        welcome = orjson.dumps({"welcome": self._instance})
        try:
            with _mapped(self._failed):
                await self._client.publish(self._channel_of(instance), welcome)
        except StateUnavailable as exc:
            log.warning("the welcome to instance %s was not sent: %s", instance, exc)

    # --- rate limits --------------------------------------------------------------------------
    async def count_hit(self, key: str, *, window_s: float) -> int:
        """Count one hit on `key` and return the hits in the current fixed window."""
        window_ms = max(1, round(window_s * 1000))
        with _mapped(self._failed):
            hits = await self._count_hit(keys=[f"{self._prefix}rl:{key}"], args=[window_ms])
        return int(hits)

    async def reset_hits(self, key: str) -> None:
        """Forget the hits on `key`."""
        with _mapped(self._failed):
            await self._client.unlink(f"{self._prefix}rl:{key}")

    async def forgive_hit(self, key: str) -> None:
        """Take one hit on `key` back (an attempt counted beforehand that turned out well)."""
        with _mapped(self._failed):
            await self._forgive_hit(keys=[f"{self._prefix}rl:{key}"])

    # --- event bus ----------------------------------------------------------------------------
    async def publish(self, event: Mapping[str, Any]) -> None:
        """Send a JSON-serialisable event to every other instance listening (one script), or
        to nobody without a round trip while this instance is alone (`_Peers`)."""
        if not self._peers.alone:
            await self._run(self._broadcast, self._instance, orjson.dumps(event))

    async def welcomed(self) -> None:
        """Wait until every instance that listened when this one's listener last subscribed has
        answered its hello."""
        await self._peers.welcomed.wait()

    async def echo(self, event: Mapping[str, Any]) -> None:
        """Send a JSON-serialisable event to this instance's own listeners, over the bus (a
        probe, not a hot command: the client's own path)."""
        with _mapped(self._failed):
            await self._client.publish(self._channel, orjson.dumps(event))

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every event sent to this instance once the subscription is confirmed, until
        `close()`."""
        if self._closed:
            return  # a closed client would quietly reconnect
        pubsub = self._client.pubsub()
        at_rest = asyncio.Event()
        at_rest.set()
        self._listeners[pubsub] = at_rest
        counted = False
        try:
            with _in_use(at_rest, self._failed):
                await pubsub.subscribe(self._channel)
            # Redis confirms the subscription before any message on it, so the first event
            # yielded was published after the listener was in place.
            self._peers.listening(+1)
            counted = True
            await self._say_hello()
            while not self._closed:
                with _in_use(at_rest, self._failed):
                    message = await pubsub.get_message(timeout=None)
                if message is None:  # a health-check reply
                    continue
                if message["type"] == "unsubscribe":  # close() woke us
                    return
                if message["type"] == "message":
                    event = orjson.loads(message["data"])
                    if "hello" in event:
                        self._welcome(event["hello"])
                    elif "welcome" in event:
                        self._peers.welcomed_by(event["welcome"])
                    else:
                        yield event
        finally:
            if counted:
                self._peers.listening(-1)
            del self._listeners[pubsub]
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
