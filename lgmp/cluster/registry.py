"""The cluster's state in Redis (or Valkey): members, letter leases, room directories.

Keys (``PREFIX`` = ``lgmp:``; one Redis database per cluster, or another prefix):

    lgmp:member:<id>     the member's facts (JSON), PX ttl: its registration lease
    lgmp:members         sorted set, member id -> when its lease ends (ms, Redis clock):
                         the index to list members by (dead ones are pruned from it)
    lgmp:letter:<L>      the member id holding letter L, PX ttl: the letter's lease
    lgmp:rooms:<id>      the member's rooms (JSON), PX ttl: its room directory

A member id is its relay address, ``host:port``, so a letter's owner is also where to
relay a JOIN for it. Every change that must be atomic is one Lua script (run with
EVALSHA; coredis sends the script again after a Redis restart emptied its cache):

* ``heartbeat``: renew the member's registration and each letter it still holds (a
  letter whose key is gone -- it lapsed, or Redis restarted empty -- is taken back
  with SET NX if nobody took it meanwhile), prune dead members, and read the whole
  table back: one round trip per renewal, however many letters and rooms.
* ``claim``: SET NX PX each free letter wanted; ``release``: DEL each letter still
  ours; ``leave``: release everything and deregister (a graceful stop).

Scripts read member keys they do not declare, which a standalone Redis, Valkey or
Sentinel set-up allows; Redis Cluster (sharded keyspace) is not supported.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .leases import LETTERS, Member, Table

PREFIX = "lgmp:"

_HEARTBEAT = """
local members, me_key, id, info, ttl, letters, prefix = KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', me_key, info, 'PX', ttl)
redis.call('ZADD', members, now + ttl, id)
redis.call('ZREMRANGEBYSCORE', members, '-inf', now)
local held = {}
for i = 1, #letters do
  local letter = string.sub(letters, i, i)
  local key = KEYS[2 + string.byte(letter) - 64]
  local owner = redis.call('GET', key)
  if owner == id then
    redis.call('PEXPIRE', key, ttl)
    held[#held + 1] = letter
  elseif not owner and redis.call('SET', key, id, 'NX', 'PX', ttl) then
    held[#held + 1] = letter
  end
end
local owners = redis.call('MGET', unpack(KEYS, 3, 28))
for i = 1, 26 do if not owners[i] then owners[i] = '' end end
local ids = redis.call('ZRANGE', members, 0, -1)
local infos = {}
for i = 1, #ids do infos[i] = redis.call('GET', prefix .. 'member:' .. ids[i]) or '' end
return {table.concat(held), owners, ids, infos}
"""

_CLAIM = """
local got = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then got[#got + 1] = KEYS[i] end
end
return got
"""

_RELEASE = """
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]); n = n + 1 end
end
return n
"""

_LEAVE = """
local n = 0
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]); n = n + 1 end
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return n
"""


def letter_key(letter: str, prefix: str = PREFIX) -> str:
    return f"{prefix}letter:{letter}"


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat found: the letters still ours (renewed), and the table."""

    held: str
    table: Table
    infos: dict[str, dict]  # member id -> its published facts


@dataclass(frozen=True, slots=True)
class RoomEntry:
    """One room of the directory, as ``lgmp rooms`` shows it."""

    code: str
    member: str  # the member (node, or node's worker) that has it: its relay address
    created: float  # unix time
    players: int
    phase: str  # lobby | game


class Registry:
    """The cluster's keys in one Redis database, through a coredis client (the caller
    owns the client and bounds every call with its own timeout)."""

    def __init__(self, client, prefix: str = PREFIX):
        self.client = client
        self.prefix = prefix
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._leave = client.register_script(_LEAVE)
        self._letter_keys = [letter_key(letter, prefix) for letter in LETTERS]

    def _member_key(self, member: str) -> str:
        return f"{self.prefix}member:{member}"

    def _rooms_key(self, member: str) -> str:
        return f"{self.prefix}rooms:{member}"

    async def heartbeat(self, me: str, info: dict, ttl: float, held: str) -> Beat:
        reply = await self._heartbeat(
            keys=[f"{self.prefix}members", self._member_key(me), *self._letter_keys],
            args=[me, json.dumps(info, separators=(",", ":")), _ms(ttl), held, self.prefix],
        )
        still, owners, ids, raw_infos = reply
        infos = {}
        for member, raw in zip(ids, raw_infos):
            try:
                infos[member] = json.loads(raw) if raw else {}
            except ValueError:
                infos[member] = {}
        members = tuple(Member(m, str(infos[m].get("prefer", ""))) for m in ids)
        table = Table(tuple(owner or None for owner in owners), members)
        return Beat(held=str(still), table=table, infos=infos)

    async def claim(self, me: str, letters: str, ttl: float) -> str:
        """SET NX PX each of ``letters``; the letters now ours."""
        if not letters:
            return ""
        got = await self._claim(keys=[letter_key(letter, self.prefix) for letter in letters], args=[me, _ms(ttl)])
        return "".join(sorted(key[-1] for key in got))

    async def release(self, me: str, letters: str) -> int:
        if not letters:
            return 0
        return int(await self._release(keys=[letter_key(letter, self.prefix) for letter in letters], args=[me]))

    async def leave(self, me: str) -> int:
        """Give up every letter and the registration (a graceful stop): the others take
        the letters at their next renewal instead of after the TTL."""
        keys = [f"{self.prefix}members", self._member_key(me), self._rooms_key(me), *self._letter_keys]
        return int(await self._leave(keys=keys, args=[me]))

    async def publish_rooms(self, me: str, rooms: list[list], ttl: float) -> None:
        payload = json.dumps({"member": me, "at": round(time.time(), 3), "rooms": rooms}, separators=(",", ":"))
        await self.client.set(self._rooms_key(me), payload, px=_ms(ttl))

    async def directory(self) -> list[RoomEntry]:
        """Every room every live member published, by code."""
        members = await self.client.zrange(f"{self.prefix}members", 0, -1)
        if not members:
            return []
        payloads = await self.client.mget([self._rooms_key(m) for m in members])
        entries = []
        for member, payload in zip(members, payloads):
            if not payload:
                continue  # a dead member's directory expired with it
            for code, created, players, phase in json.loads(payload)["rooms"]:
                entries.append(RoomEntry(code, str(member), float(created), int(players), str(phase)))
        return sorted(entries, key=lambda e: e.code)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def parse_redis_url(url: str) -> dict:
    """``redis://HOST:PORT[/DB]`` as coredis.Redis keyword arguments (a password as
    ``redis://:PASSWORD@HOST:PORT/DB``); ValueError for anything else."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "valkey") or not parts.hostname:
        raise ValueError(f"not a redis://HOST:PORT[/DB] URL: {url!r}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database in {url!r} must be a number")
    return {
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(path) if path else 0,
        "username": parts.username or None,
        "password": parts.password or None,
    }
