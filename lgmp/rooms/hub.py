"""The server's pure core: connections, JOIN routing, per-connection limits, timers.

Theory of operation
-------------------
The trio shell (``lgmp.server.shell``) tells the hub four things, each with ``now``:
a connection opened (``connect``, after ``admit`` said it may), a decoded packet
arrived (``receive``, or ``notice`` for one that asks nothing of the core), a
connection ended (``disconnect``), time passed (``tick``). Each call returns a
list of events (``lgmp.rooms.events``): effects for the shell to carry out and
room facts for views to watch. The hub never reads a clock or a socket, so
every limit is testable by passing ``now``.

What the hub owns (rooms own the rest):
* **Admission**: ``admit`` refuses a connection from a source address that
  already holds its share (``lgmp.rooms.sources``); at ``max_connections`` it
  makes room by evicting the oldest connection that is in no room, and refuses
  only when every connection is in one: seated players come first.
* **JOIN**: ``"HOST"`` creates a room with a fresh code (answer 3 at the room
  limit or the source's room limit); any other code is matched
  case-insensitively (4 when there is none) and handed to the room. A refused
  JOIN is answered and is a strike; a refused JOIN with a code also counts
  against its source's failed-JOIN allowance, past which JOINs are answered 4
  without looking. A connection that has not joined must send JOIN within
  ``join_timeout`` (counted again after each refused JOIN, up to
  ``unjoined_lifetime`` in all).
* **Strikes**: a well-formed packet that is not allowed now (the room or engine
  raised ``RuleError``) is ignored (a ``PacketIgnored`` event), the sender is
  resynced (or answered, for a refusal that has an answer: ``Refused``), and it
  counts a strike; ``max_strikes`` inside ``strike_window`` close it.
* **Flood control**: a token bucket per connection (``packet_burst`` deep,
  refilled at ``packet_rate``/s) for the packets the protocol did not invite
  (``Room.invites``: a spin on your turn, an answer to your card, your career
  never count); an empty bucket closes the connection.
* **Shards** (``shard``, a ``lgmp.rooms.shards.ShardPlan``, or None for a lone
  server): new codes start with one of this process's letters; a JOIN for a
  letter another process owns does not reach ``receive`` -- the shell relays it
  and tells the hub only that it did (``join_elsewhere``, which may answer it
  here instead: a flood, or a source past its failed-JOIN allowance) and, when
  that process refused it, the answer (``refused_elsewhere``: a failed JOIN here
  too). A relayed connection that got in is then forgotten (``disconnect``): its
  room and its limits are the owner's, which sees the client's address in the
  relay's PROXY header. (A connection that itself came through a relay is never
  relayed again: its JOIN reaches ``receive``, and a code this hub does not have
  is answered 4.)
* **Timers**: a heap of (deadline, key). Entries are found stale when popped
  (the room or connection no longer wants that deadline), and a new entry is
  pushed only when it is earlier than what is already scheduled, so the heap
  stays about one entry per room. A closed room's entry is forgotten when the
  room closes (and a connection's JOIN deadline when it joins or ends), and the
  heap is compacted once such dead entries are a quarter of it, rather than
  each waiting (up to ``lobby_idle``) for its deadline; ``next_deadline`` drops
  the dead ones it finds on top, so the timer does not wake for them.

A ``CloseMember`` from the hub has already detached the connection (its room was
told with ``remove``); a later ``disconnect`` for it is ignored.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections import deque
from dataclasses import dataclass

from ..wire.errors import RuleError
from ..limits import Limits
from .names import ROOM_CODE_LETTERS, new_room_code, normalize_room_code
from ..wire.packets import HOST_ROOM, ClientPacket, JoinAnswer, JoinRequest, JoinResponse
from .events import CloseMember, Deliver, Event, MemberId, PacketIgnored, RoomOpened
from .room import Refused, Room
from .shards import ShardPlan
from .sources import AbuseCounters, Source, Sources

log = logging.getLogger("lgmp.rooms.hub")


@dataclass(slots=True)
class _Connection:
    id: MemberId
    room: str | None = None
    join_deadline: float = 0.0
    tokens: float = 0.0
    refilled_at: float = 0.0
    strikes: deque[float] | None = None  # made at the first strike: most connections never get one
    source: Source = None
    connected_at: float = 0.0
    hosting: bool = False
    joins: int = 0  # JOINs sent while in no room: the first one is invited


class Hub:
    def __init__(self, *, limits: Limits | None = None, seed: int | None = None, server_spins: bool = False,
                 shard: ShardPlan | None = None, facts: bool = True):
        """``facts``: build the play facts (``events.PLAY_FACTS``) -- False when nothing
        will read them (no observer, no renderer): the effects are the same."""
        self.limits = limits or Limits()
        self.facts = facts
        self.server_spins = server_spins
        self.shard = shard  # replaced whole when the table changes; None: every code is ours
        self.rooms: dict[str, Room] = {}
        self._connections: dict[MemberId, _Connection] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._timers: list[tuple[float, int, str, object]] = []
        self._timer_seq = itertools.count()
        self._scheduled: dict[tuple[str, object], float] = {}
        self._latest = 0.0  # the latest ``now`` the hub was given (for calls that take none)
        self.sources = Sources(self.limits)
        self.counters = AbuseCounters()
        # Connections in no room, oldest first: whom to evict at max_connections.
        self._unjoined: dict[MemberId, None] = {}
        self._dead_timers = 0  # heap entries of closed rooms, dropped at the next compaction

    # --- introspection ------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def describe(self, member: MemberId) -> str:
        """``ABCD seat 2``, ``ABCD host`` or ``not joined``: for log lines."""
        conn = self._connections.get(member)
        if conn is None or conn.room is None or conn.room not in self.rooms:
            return "not joined"
        return self.rooms[conn.room].describe(member)

    def room_of(self, member: MemberId) -> Room | None:
        conn = self._connections.get(member)
        return None if conn is None or conn.room is None else self.rooms.get(conn.room)

    # --- entry points ---------------------------------------------------------------

    def admit(self, now: float, *, source: Source = None) -> tuple[str | None, list[Event]]:
        """May a new connection from ``source`` open? ``(None, events)`` if so -- carry the
        events out (an eviction) and ``connect`` it; ``(reason, [])`` if it must be refused.

        Cheap whatever the load: a dictionary look-up, and at ``max_connections``
        the oldest connection in no room (a dictionary kept in age order).
        """
        self._latest = now
        reason = self.sources.refusal(source)
        if reason is None and len(self._connections) >= self.limits.max_connections:
            if not self._unjoined:
                reason = f"the server is full (max_connections={self.limits.max_connections}) and every connection is in a room"
            else:
                oldest = self._connections[next(iter(self._unjoined))]
                self.counters.evicted_connections += 1
                return None, self._drop(oldest, now, "evicted: the server is full and this connection was in no room")
        if reason is not None:
            self.counters.refused_connections += 1
        return reason, []

    def connect(self, now: float, *, source: Source = None) -> MemberId:
        """A connection opened from ``source`` (an IP address; None: unknown, never
        limited per source): its id. It must send JOIN within ``join_timeout``.
        Call ``admit`` first: ``connect`` itself refuses nothing."""
        self._latest = now
        member = next(self._ids)
        self._connections[member] = _Connection(
            member, join_deadline=now + self.limits.join_timeout, tokens=self.limits.packet_burst, refilled_at=now,
            source=source, connected_at=now,
        )
        self._unjoined[member] = None
        self.sources.opened(source)
        self._schedule(("conn", member), now + self.limits.join_timeout)
        return member

    def receive(self, member: MemberId, packet: ClientPacket, now: float) -> list[Event]:
        self._latest = now
        conn = self._connections.get(member)
        if conn is None:
            return []  # already closed by us; bytes were still in flight
        room = self.rooms[conn.room] if conn.room is not None else None
        if room is None:
            # A connection's first JOIN is what it connected to say.
            invited = conn.joins == 0 and type(packet) is JoinRequest
        else:
            invited = room.invites(member, packet)
        if not invited and not self._take_token(conn, now):
            self.counters.flood_closes += 1
            return self._drop(conn, now, "packet flood")
        if room is None:
            if isinstance(packet, JoinRequest):
                conn.joins += 1
                return self._join(conn, packet, now)
            return self._strike(conn, now, f"{type(packet).__name__} before JOIN")
        room.touch(now)
        if isinstance(packet, JoinRequest):
            return self._strike(conn, now, "a second JOIN", room)
        try:
            outputs = room.handle(member, packet, now)
        except Refused as exc:  # refused with an answer of its own (a wrong reclaim guess)
            if exc.guess:
                self.counters.wrong_rejoin_guesses += 1
            return self._strike(conn, now, str(exc), room, answer=exc.answer)
        except RuleError as exc:
            return self._strike(conn, now, str(exc), room)
        return self._after_room(room, outputs, now)

    def notice(self, member: MemberId, now: float) -> list[Event]:
        """A packet that asks nothing of the core (a client's courtesy the server does
        not need, like another dialect's "my piece landed"). It changes nothing, but
        it is a packet: it counts against flood control, and a lobby is not idle."""
        self._latest = now
        conn = self._connections.get(member)
        if conn is None:
            return []
        if not self._take_token(conn, now):
            self.counters.flood_closes += 1
            return self._drop(conn, now, "packet flood")
        room = self.rooms.get(conn.room) if conn.room is not None else None
        if room is not None:
            room.touch(now)
        return []

    def disconnect(self, member: MemberId, now: float, reason: str) -> list[Event]:
        """The connection ended (peer closed, bad bytes, write failed...)."""
        self._latest = now
        conn = self._connections.pop(member, None)
        if conn is None:
            return []
        self._forget(conn, now)
        self._unschedule(("conn", member))
        room = self.rooms.get(conn.room) if conn.room else None
        if room is None:
            return []
        return self._after_room(room, room.remove(member, now, reason), now)

    def tick(self, now: float) -> list[Event]:
        """Fire every deadline that is due at ``now``."""
        self._latest = now
        outputs: list[Event] = []
        while self._timers and self._timers[0][0] <= now:
            when, _, kind, key = heapq.heappop(self._timers)
            if self._scheduled.get((kind, key)) == when:
                del self._scheduled[(kind, key)]
            if kind == "conn":
                conn = self._connections.get(key)
                if conn is not None and conn.room is None:
                    if conn.join_deadline <= now:
                        outputs += self._drop(conn, now, "no JOIN in time")
                    elif conn.join_deadline < math.inf:  # a refused JOIN moved the deadline later
                        self._schedule(("conn", key), conn.join_deadline)
            elif kind == "source":
                again = self.sources.forget(key, now)
                if again is not None:
                    self._schedule(("source", key), again)
            else:
                room = self.rooms.get(key)
                if room is not None:
                    try:
                        room_outputs = room.tick(now)
                    except Exception:  # a bug in one room's timers ends that room only
                        log.exception("[%s] timer handling failed: closing the room", room.code)
                        room_outputs = room.close("internal error")
                    outputs += self._after_room(room, room_outputs, now)
        return outputs

    def next_deadline(self) -> float | None:
        timers, scheduled = self._timers, self._scheduled
        while timers:
            when, _, kind, key = timers[0]
            if scheduled.get((kind, key)) == when:
                return when
            heapq.heappop(timers)  # superseded or forgotten: nothing is due then
        return None

    def close_room(self, code: str, reason: str) -> list[Event]:
        """Close room ``code`` (any letter case) as its host leaving would, but with the
        host sent RSET too: RSET to every member, then close them. [] if there is none."""
        room = self.rooms.get(normalize_room_code(code))
        if room is None:
            return []
        log.info("[%s] closing the room: %s", room.code, reason)
        return self._after_room(room, room.close(reason), self._latest)

    def shutdown(self, reason: str = "the server is shutting down") -> list[Event]:
        """RSET to every member of every room, then close every connection."""
        outputs: list[Event] = []
        for room in list(self.rooms.values()):
            outputs += room.close(reason)
        outputs += [CloseMember(m, reason) for m, c in self._connections.items() if c.room is None]
        self.rooms.clear()
        self._connections.clear()
        self._unjoined.clear()
        self.sources.clear()
        return outputs

    # --- JOINs another process answers (the shell relays them) ----------------------

    def join_elsewhere(self, member: MemberId, now: float) -> list[Event]:
        """``member`` sent a JOIN whose room another process owns; the shell relays it.

        The JOIN costs a flood token like any uninvited packet (a connection's first
        JOIN is invited), and the JOIN clock stops while the owner answers. Returns
        nothing when the relay may go on; else the events that answered it here: a
        close for flooding, or -- the source has used up its failed JOINs -- the
        same unlooked-up 4 a local code would get.
        """
        conn = self._connections.get(member)
        if conn is None or conn.room is not None:
            return []
        self._latest = now
        invited = conn.joins == 0
        conn.joins += 1
        if not invited and not self._take_token(conn, now):
            self.counters.flood_closes += 1
            return self._drop(conn, now, "packet flood")
        if not self.sources.may_join(conn.source, now):
            self.counters.joins_over_allowance += 1
            return self._refuse_join(conn, now, JoinAnswer.ROOM_NOT_FOUND, "JOIN beyond the failed-JOIN allowance", log_it=False)
        conn.join_deadline = math.inf
        return []

    def refused_elsewhere(self, member: MemberId, now: float, answer: JoinAnswer) -> list[Event]:
        """The owner answered a relayed JOIN 3, 4 or 5 (or could not be reached: 4).

        The member gets that answer from here, as if this hub had refused it: a
        strike, a failed JOIN of its source, and a fresh JOIN window to try another code.
        """
        conn = self._connections.get(member)
        if conn is None or conn.room is not None:
            return []
        self._latest = now
        return self._failed_join(conn, "(relayed)", now, answer)

    # --- helpers -----------------------------------------------------------------------

    def _join(self, conn: _Connection, packet: JoinRequest, now: float) -> list[Event]:
        code = normalize_room_code(packet.room)
        if code == HOST_ROOM:
            letters = self.shard.letters if self.shard is not None else ROOM_CODE_LETTERS
            if len(self.rooms) >= self.limits.max_rooms or not letters:
                return self._refuse_join(conn, now, JoinAnswer.LOBBY_FULL, "JOIN HOST at the room limit")
            if not self.sources.may_host(conn.source):
                return self._refuse_join(conn, now, JoinAnswer.LOBBY_FULL, f"JOIN HOST beyond {self.limits.max_rooms_per_source} rooms from {conn.source}")
            code = new_room_code(self._rng, self.rooms, letters)
            room = Room(code, conn.id, seed=self._rng.getrandbits(63), now=now, limits=self.limits, server_spins=self.server_spins,
                        facts=self.facts)
            self.rooms[code] = room
            self._joined(conn, code, hosting=True)
            log.info("[%s host] room created", code)
            outputs: list[Event] = [RoomOpened(code, conn.id, now), Deliver((conn.id,), JoinResponse(JoinAnswer.HOST, code))]
            return self._after_room(room, outputs, now)
        if not self.sources.may_join(conn.source, now):
            # The allowance is used up: the answer must not tell whether the code is live.
            self.counters.joins_over_allowance += 1
            return self._refuse_join(conn, now, JoinAnswer.ROOM_NOT_FOUND, "JOIN beyond the failed-JOIN allowance", log_it=False)
        room = self.rooms.get(code)
        if room is None:
            return self._failed_join(conn, code, now, JoinAnswer.ROOM_NOT_FOUND)
        answer, outputs = room.add_player(conn.id, now, source=conn.source)
        if answer is not JoinAnswer.PLAYER:
            return self._failed_join(conn, code, now, answer)
        self._joined(conn, code, hosting=False)
        return self._after_room(room, [Deliver((conn.id,), JoinResponse(answer)), *outputs], now)

    def _joined(self, conn: _Connection, code: str, *, hosting: bool) -> None:
        conn.room, conn.hosting = code, hosting
        self._unschedule(("conn", conn.id))  # joined: no JOIN deadline any more
        self._unjoined.pop(conn.id, None)
        self.sources.joined(conn.source, hosting=hosting)

    def _failed_join(self, conn: _Connection, code: str, now: float, answer: JoinAnswer) -> list[Event]:
        """A JOIN with a code was refused: counted against its source (enumeration), logged."""
        self.counters.failed_joins += 1
        failures = self.sources.join_failed(conn.source, now)
        limit = self.limits.failed_joins_per_minute
        if conn.source is not None and limit and failures >= limit:
            log.warning("[not joined] %s: %d failed JOINs within a minute; its JOINs are answered 4 unlooked-up for now", conn.source, failures)
        reason = f"JOIN {code!r} refused ({int(answer)}) from {conn.source or 'an unknown address'}"
        if failures:
            reason += f", failed JOIN {failures} of {limit} this minute"
        return self._refuse_join(conn, now, answer, reason)

    def _refuse_join(self, conn: _Connection, now: float, answer: JoinAnswer, reason: str, *, log_it: bool = True) -> list[Event]:
        # A person may mistype a code: give them a fresh JOIN window to try again,
        # but a connection may not stay out of a room for ever by failing JOINs.
        conn.join_deadline = min(now + self.limits.join_timeout, conn.connected_at + self.limits.unjoined_lifetime)
        self._schedule(("conn", conn.id), conn.join_deadline)
        return self._strike(conn, now, reason, answer=[Deliver((conn.id,), JoinResponse(answer))], log_it=log_it)

    def _take_token(self, conn: _Connection, now: float) -> bool:
        limits = self.limits
        conn.tokens = min(limits.packet_burst, conn.tokens + (now - conn.refilled_at) * limits.packet_rate)
        conn.refilled_at = now
        if conn.tokens < 1:
            return False
        conn.tokens -= 1
        return True

    def _strike(self, conn: _Connection, now: float, reason: str, room: Room | None = None, *,
                answer: list[Event] | None = None, log_it: bool = True) -> list[Event]:
        """An ignored or refused packet: a strike, then the resync (or ``answer``, the
        refusal's own reply), or the close when it is the last strike allowed."""
        strikes = conn.strikes
        if strikes is None:
            strikes = conn.strikes = deque()
        strikes.append(now)
        while strikes and strikes[0] <= now - self.limits.strike_window:
            strikes.popleft()
        if log_it:
            where = room.describe(conn.id) if room else "not joined"
            log.info("[%s] ignored: %s (strike %d)", where, reason, len(strikes))
        ignored = PacketIgnored(conn.id, room.code if room else None, reason, len(strikes))
        if len(strikes) >= self.limits.max_strikes:
            self.counters.strike_closes += 1
            return [ignored, *(answer or ()), *self._drop(conn, now, f"too many ignored packets (last: {reason})")]
        if answer is not None:
            return [ignored, *answer]
        return [ignored, *room.resync(conn.id)] if room else [ignored]

    def _drop(self, conn: _Connection, now: float, reason: str) -> list[Event]:
        """Close a connection on the hub's own initiative."""
        log.info("[%s] closing connection: %s", self.describe(conn.id), reason)
        outputs = self.disconnect(conn.id, now, reason)
        return [*outputs, CloseMember(conn.id, reason)]

    def _after_room(self, room: Room, outputs: list[Event], now: float) -> list[Event]:
        """Book-keeping after a room acted: detach closed members, drop ended rooms, timers."""
        for out in outputs:
            if isinstance(out, CloseMember):
                conn = self._connections.pop(out.member, None)
                if conn is not None:
                    self._forget(conn, now)
                    conn.room = None
        if room.closed:
            if room.closed_empty:
                self.counters.empty_rooms_closed += 1
            self.rooms.pop(room.code, None)
            self._unschedule(("room", room.code))
            log.info("[%s] room closed", room.code)
        else:
            deadline = room.next_deadline()
            if deadline is not None:
                self._schedule(("room", room.code), deadline)
        return outputs

    def _forget(self, conn: _Connection, now: float) -> None:
        """``conn`` is no longer the hub's: its source's tally drops it."""
        self._unjoined.pop(conn.id, None)
        again = self.sources.ended(conn.source, joined=conn.room is not None, hosting=conn.hosting, now=now)
        if again is not None:
            self._schedule(("source", conn.source), again)

    def _schedule(self, key: tuple[str, object], when: float) -> None:
        current = self._scheduled.get(key)
        if current is not None and current <= when:
            return  # an earlier entry will fire and re-schedule what is then due
        self._scheduled[key] = when
        heapq.heappush(self._timers, (when, next(self._timer_seq), key[0], key[1]))

    def _unschedule(self, key: tuple[str, object]) -> None:
        """``key`` wants no deadline any more: forget it, and drop its heap entries
        with the other dead ones once they are a quarter of the heap (amortised:
        each compaction costs about what the closes since the last one saved)."""
        if self._scheduled.pop(key, None) is None:
            return
        self._dead_timers += 1
        if self._dead_timers * 4 >= len(self._timers):
            scheduled = self._scheduled
            self._timers = [e for e in self._timers if scheduled.get((e[2], e[3])) == e[0]]
            heapq.heapify(self._timers)
            self._dead_timers = 0
