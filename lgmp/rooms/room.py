"""One LGMP room: its lobby, and the game session that exists while a game runs.

Theory of operation
-------------------
A room has a host (the shared board screen), up to six seats, and, during a
game, *rejoiners*: connections that sent JOIN with the room's code while a seat
is vacant-by-leave and have yet to reclaim it with REDY. Each is a *member*,
named by the connection id the hub gives it, and has a *role*: ``HOST``,
``SEATED`` or ``REJOINER``.

The room never touches sockets or clocks. Each entry point takes ``now`` and
returns a list of events (``lgmp.rooms.events``) for the shell to carry out and
for views to watch, in order.

Entry points: ``add_player`` (a JOIN with our code), ``handle`` (any other
packet from a member), ``remove`` (a member's connection ended), ``tick`` (time
passed), ``resync`` (send a member the current state again) and ``close``.

``handle`` looks (phase, role, packet type) up in ``_ALLOWED``, the one table of
what is accepted when and from whom. A packet that is well-formed but not
allowed now -- a missing combination, or a move the rules refuse -- raises
``RuleError`` *before anything changes*; the hub answers that with a strike and
``resync``.

Phases: LOBBY -> (STRT) -> GAME -> (every career chosen: FINL, RSET) -> LOBBY.
The game's state lives in a ``GameSession`` (``lgmp.rooms.session``), made at
STRT and dropped at the end. The room ends (``closed``) when the host leaves,
when every player has left mid-game, when its lobby idles too long
(``lobby_idle`` after the last packet), or when no player ever joined it
(``empty_room_timeout`` after it was created).

Two questions the hub asks before it hands a packet over: ``invites`` -- did
the protocol ask this member for this packet now (flood control never counts
those)? -- and, through ``Refused``, whether a refusal has an answer of its own
rather than a resync (a wrong guess at a vacant seat is answered ``REDY`` 5 and
is a strike).

Reclaiming a vacant seat (PROTOCOL.md 10.5): name and avatar must match, as
v1.0 has nothing else; from the seat's own address (the source of the
connection that last held it) that is enough, at once; from another address
only once the seat has been vacant ``foreign_reclaim_delay`` and while the
room's game has had fewer than ``rejoin_guesses`` wrong guesses. A rejoiner is
shown the room's avatars with the vacant seats' as 0, so the answer is not
handed to whoever asks.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..game.engine import Duty
from ..game.rules import AVATAR_NUMBERS, SEATS
from ..limits import Limits
from ..wire.packets import (
    CardAnswer,
    CareerChoice,
    ClientPacket,
    GameUpdate,
    JoinAnswer,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)
from .events import (
    CloseMember,
    Deliver,
    Event,
    MemberId,
    PlayerBack,
    PlayerJoined,
    PlayerLeft,
    PlayerReady,
    ReadyChecked,
    RoomClosed,
    SeatFreed,
)
from .names import check_name_shape, is_profane
from .session import GameSession, NotAllowed

log = logging.getLogger("lgmp.room")

__all__ = ["NotAllowed", "Phase", "Refused", "Role", "Room", "Seat"]

#: Why a room whose host never got a player is closed.
EMPTY_ROOM = "no player joined in time"


class Refused(NotAllowed):
    """Refused, with an answer of its own for the sender instead of a resync; a strike."""

    def __init__(self, reason: str, answer: list[Event], *, guess: bool = False):
        super().__init__(reason)
        self.answer = answer
        self.guess = guess  # a wrong guess at a vacant seat's name and avatar


class Phase(enum.Enum):
    LOBBY = "lobby"
    GAME = "game"

    # Members are singletons, so identity hashes them; Enum's own hash is Python
    # code, run for every packet's _ALLOWED look-up.
    __hash__ = object.__hash__


class Role(enum.Enum):
    HOST = "the host"
    SEATED = "a seated player"
    REJOINER = "a rejoining connection"

    __hash__ = object.__hash__  # as Phase's


# Looked up once: reading a member off its enum class costs ~90 ns, every packet.
_LOBBY, _GAME = Phase.LOBBY, Phase.GAME
_HOST, _SEATED, _REJOINER = Role.HOST, Role.SEATED, Role.REJOINER


@dataclass(slots=True)
class Seat:
    number: int
    member: MemberId | None  # None: its player left mid-game; the server plays it
    name: str = ""
    avatar: int = 0  # 0 = not ready yet
    left_at: float | None = None
    source: str | None = None  # the address of the connection that last held it

    @property
    def ready(self) -> bool:
        return self.avatar != 0


class Room:
    def __init__(self, code: str, host: MemberId, *, seed: int, now: float, limits: Limits, server_spins: bool = False,
                 facts: bool = True):
        self.code = code
        self.facts = facts  # build the play facts (events.PLAY_FACTS): someone reads them
        self.host = host
        self.limits = limits
        self.server_spins = server_spins
        self.closed = False
        self.seats: dict[int, Seat] = {}
        self.session: GameSession | None = None
        self._rng = random.Random(seed)
        self._last_activity = now
        self._created_at = now
        self._ever_seated = False  # a room nobody ever joined closes after empty_room_timeout
        self.closed_empty = False  # closed because nobody ever joined it
        # Who is where, derived from ``seats`` by _roster_changed whenever a seat is
        # taken, vacated, reclaimed or freed -- not on every packet or broadcast.
        self._in_order: tuple[Seat, ...] = ()
        self._seat_by_member: dict[MemberId, Seat] = {}
        self._members: tuple[MemberId, ...] = (host,)

    # --- who is here ---------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return _LOBBY if self.session is None else _GAME

    @property
    def game(self):
        """The running game's engine, or None in the lobby."""
        return None if self.session is None else self.session.game

    @property
    def rejoiners(self) -> frozenset[MemberId]:
        return frozenset() if self.session is None else frozenset(self.session.rejoiners)

    @property
    def last_game(self) -> GameUpdate | None:
        """The latest GAME the room was sent (what a resync repeats)."""
        return None if self.session is None else self.session.last_game

    def seat_of(self, member: MemberId) -> Seat | None:
        return self._seat_by_member.get(member)

    def role_of(self, member: MemberId) -> Role | None:
        if member == self.host:
            return _HOST
        if member in self._seat_by_member:
            return _SEATED
        if self.session is not None and member in self.session.rejoiners:
            return _REJOINER
        return None

    def members(self) -> tuple[MemberId, ...]:
        """Everyone who receives room-wide packets: the host and the seated players.

        Rejoiners are left out until they reclaim their seat: a client still on
        its name screen should not be sent the board.
        """
        return self._members

    def describe(self, member: MemberId) -> str:
        """For log lines: room code and role."""
        if member == self.host:
            return f"{self.code} host"
        seat = self.seat_of(member)
        if seat is not None:
            return f"{self.code} seat {seat.number}"
        return f"{self.code} rejoining"

    def avatars(self) -> tuple[int, ...]:
        return tuple(self.seats[n].avatar if n in self.seats else 0 for n in SEATS)

    def rejoiner_avatars(self) -> tuple[int, ...]:
        """The avatars as a rejoiner sees them: a vacant seat's is 0, as its avatar is
        half of what proves who may reclaim it."""
        seats = self.seats
        return tuple(seats[n].avatar if n in seats and seats[n].member is not None else 0 for n in SEATS)

    def seats_in_order(self) -> list[Seat]:
        return list(self._in_order)

    def _roster_changed(self) -> None:
        """A seat was taken, vacated, reclaimed or freed: derive who is where again."""
        self._in_order = in_order = tuple(self.seats[n] for n in sorted(self.seats))
        self._seat_by_member = {s.member: s for s in in_order if s.member is not None}
        self._members = (self.host, *(s.member for s in in_order if s.member is not None))

    def _others(self, member: MemberId) -> tuple[MemberId, ...]:
        return tuple(m for m in self.members() if m != member)

    def _avatar_update(self, to: Iterable[MemberId]) -> list[Event]:
        to = tuple(to)
        return [Deliver(to, ReadyResponse(ReadyAnswer.UPDATE, self.avatars()))] if to else []

    # --- entry points ----------------------------------------------------------

    def add_player(self, member: MemberId, now: float, *, source: str | None = None) -> tuple[JoinAnswer, list[Event]]:
        """A JOIN with this room's code from ``source`` (an address; None: unknown).
        Returns the answer and the events after it."""
        self._last_activity = now
        if self.session is not None:
            if not any(seat.member is None for seat in self.seats.values()):
                return JoinAnswer.GAME_STARTED, []
            self.session.rejoiners[member] = source
            log.info("[%s] a connection from %s may reclaim a vacant seat", self.code, source or "an unknown address")
            return JoinAnswer.PLAYER, [Deliver((member,), ReadyResponse(ReadyAnswer.UPDATE, self.rejoiner_avatars()))]
        free = [n for n in SEATS if n not in self.seats]
        if not free:
            return JoinAnswer.LOBBY_FULL, []
        self.seats[free[0]] = Seat(free[0], member, source=source)
        self._ever_seated = True
        self._roster_changed()
        log.info("[%s seat %d] joined", self.code, free[0])
        return JoinAnswer.PLAYER, [PlayerJoined(self.code, free[0], member), *self._avatar_update([member])]

    def invites(self, member: MemberId, packet: ClientPacket) -> bool:
        """Did the protocol ask ``member`` for ``packet`` now? A spin on its turn with no
        card waiting, an answer to a card waiting for it, its career once finished, the
        host's STRT when every seated player is ready. Flood control never counts these
        (a wrong value in one is still refused, and a strike). Cheap: the hot path."""
        kind = type(packet)
        session = self.session
        if session is None:
            return kind is StartGame and member == self.host and bool(self.seats) and all(s.avatar for s in self.seats.values())
        if kind is not Spin and kind is not CardAnswer and kind is not CareerChoice:
            return False
        seat = self.seat_of(member)
        if seat is None:
            return False
        game = session.game
        if kind is CareerChoice:
            return game.place_of(seat.number) is not None and game.career_of(seat.number) is None
        return game.owes(seat.number) is (Duty.SPIN if kind is Spin else Duty.ANSWER)

    def touch(self, now: float) -> None:
        """A member sent a packet (even one that is ignored): the lobby is not idle."""
        if self.session is None:
            self._last_activity = now

    def handle(self, member: MemberId, packet: ClientPacket, now: float) -> list[Event]:
        """Any packet but JOIN from a member. Raises RuleError (nothing changed) if not allowed."""
        phase, role = self.phase, self.role_of(member)
        if phase is _LOBBY:
            self._last_activity = now  # even a refused packet: someone is there
        handler = _ALLOWED.get((phase, role, type(packet)))
        if handler is None:
            raise NotAllowed(f"{type(packet).__name__} from {role.value if role else 'a stranger'} is not allowed in the {phase.value}")
        return handler(self, member, packet, now)

    def remove(self, member: MemberId, now: float, reason: str) -> list[Event]:
        """``member``'s connection has ended."""
        if self.closed:
            return []
        role = self.role_of(member)
        if role is Role.HOST:
            log.info("[%s host] left (%s): the room ends", self.code, reason)
            return self.close("the host left", exclude=member)
        if role is Role.REJOINER:
            self.session.rejoiners.pop(member, None)
            return []
        if role is None:
            return []
        seat = self.seat_of(member)
        if self.session is None:
            del self.seats[seat.number]
            self._roster_changed()
            log.info("[%s seat %d] left the lobby (%s)", self.code, seat.number, reason)
            return [PlayerLeft(self.code, seat.number, reason, False), *self._avatar_update(self.members())]
        seat.member, seat.left_at = None, now
        self._roster_changed()
        self.session.seat_vacated(seat.number)
        log.info("[%s seat %d] left mid-game (%s): the server plays the seat", self.code, seat.number, reason)
        events: list[Event] = [PlayerLeft(self.code, seat.number, reason, True)]
        if all(s.member is None for s in self.seats.values()):
            events += self.close("every player left")
        return events

    def resync(self, member: MemberId) -> list[Event]:
        """Send ``member`` the current state again: GAME in a game, the avatars in the lobby
        (and to a rejoiner, who has not reclaimed its seat yet)."""
        session = self.session
        if session is not None and member in session.rejoiners:
            return [Deliver((member,), ReadyResponse(ReadyAnswer.UPDATE, self.rejoiner_avatars()))]
        if session is not None and session.last_game is not None:
            return [Deliver((member,), session.last_game)]
        return self._avatar_update([member])

    def close(self, reason: str, *, exclude: MemberId | None = None) -> list[Event]:
        """End the room: RSET to every member, then close them."""
        self.closed = True
        rejoiners = sorted(self.session.rejoiners) if self.session is not None else []
        members = tuple(m for m in (*self.members(), *rejoiners) if m != exclude)
        events: list[Event] = [Deliver(members, Reset())] if members else []
        events += [CloseMember(m, reason) for m in members]
        events.append(RoomClosed(self.code, reason))
        return events

    def next_deadline(self) -> float | None:
        if self.closed:
            return None
        if self.session is None:
            idle = self._last_activity + self.limits.lobby_idle if self.limits.lobby_idle > 0 else None
            empty = self._empty_deadline()
            return idle if empty is None else empty if idle is None else min(idle, empty)
        return self.session.next_deadline()

    def _empty_deadline(self) -> float | None:
        if self._ever_seated or self.limits.empty_room_timeout <= 0:
            return None
        return self._created_at + self.limits.empty_room_timeout

    def tick(self, now: float) -> list[Event]:
        """Fire what is due at ``now``: auto-play for idle or absent seats, lobby idle."""
        if self.closed:
            return []
        if self.session is None:
            empty = self._empty_deadline()
            if empty is not None and now >= empty:
                log.info("[%s] no player joined within %.0f s: closing", self.code, self.limits.empty_room_timeout)
                self.closed_empty = True
                return self.close(EMPTY_ROOM)
            deadline = self.next_deadline()
            if deadline is not None and now >= deadline:
                log.info("[%s] lobby idle for %.0f s: closing", self.code, self.limits.lobby_idle)
                return self.close("the lobby was idle too long")
            return []
        events: list[Event] = []
        # Auto-play may hand a new duty to a seat that is due at once (a vacant
        # seat whose grace ran out long ago): loop until nothing is due.
        while self.session is not None and not self.closed:
            seat = self.session.due_seat(now)
            if seat is None:
                break
            log.info("[%s seat %d] %s: the server plays for it", self.code, seat,
                     "absent" if self.seats[seat].member is None else "idle")
            events += self._after_session(self.session.auto_play(seat, now), now)
        return events

    # --- lobby -----------------------------------------------------------------

    def _on_ready(self, member: MemberId, packet: ReadyRequest, now: float) -> list[Event]:
        seat = self.seat_of(member)
        checked, answer = self._judge_ready(seat, packet)
        if answer is not ReadyAnswer.ACCEPTED:
            return [checked, Deliver((member,), ReadyResponse(answer, self.avatars()))]
        seat.name, seat.avatar = packet.name, packet.avatar
        log.info("[%s seat %d] ready as %r, avatar %d", self.code, seat.number, seat.name, seat.avatar)
        return [
            checked,
            PlayerReady(self.code, seat.number, seat.name, seat.avatar),
            Deliver((member,), ReadyResponse(ReadyAnswer.ACCEPTED, self.avatars())),
            *self._avatar_update(self._others(member)),
        ]

    def _judge_ready(self, seat: Seat, packet: ReadyRequest) -> tuple[ReadyChecked, ReadyAnswer]:
        """The name and the avatar, each on its own (``ReadyChecked``), and the one
        answer code: the first failure in the order 2, 3, 4 (the name's characters,
        then an avatar outside 1-6), 5 (name or avatar taken), 6 (profane)."""
        shape = check_name_shape(packet.name)
        others = [s for s in self.seats.values() if s is not seat and s.ready]
        name_taken = any(s.name.casefold() == packet.name.casefold() for s in others)
        avatar_known = packet.avatar in AVATAR_NUMBERS
        avatar_taken = any(s.avatar == packet.avatar for s in others)
        profane = shape is ReadyAnswer.ACCEPTED and not name_taken and is_profane(packet.name)
        if shape is not ReadyAnswer.ACCEPTED:
            name_answer = shape
        else:
            name_answer = ReadyAnswer.ALREADY_TAKEN if name_taken else ReadyAnswer.PROFANE if profane else ReadyAnswer.ACCEPTED
        if shape is not ReadyAnswer.ACCEPTED:
            answer = shape
        elif not avatar_known:
            answer = ReadyAnswer.INVALID_CHARACTERS
        elif name_taken or avatar_taken:
            answer = ReadyAnswer.ALREADY_TAKEN
        else:
            answer = ReadyAnswer.PROFANE if profane else ReadyAnswer.ACCEPTED
        checked = ReadyChecked(self.code, seat.number, seat.member, int(name_answer), avatar_known and not avatar_taken)
        return checked, answer

    def _on_start(self, member: MemberId, packet: StartGame, now: float) -> list[Event]:
        if not self.seats:
            raise NotAllowed("no player is seated")
        if not all(seat.ready for seat in self.seats.values()):
            raise NotAllowed("not every seated player is ready")
        self.session = GameSession(self, seed=self._rng.getrandbits(63), now=now, server_spins=self.server_spins)
        return self.session.start(now)

    # --- game --------------------------------------------------------------------

    def _on_reclaim(self, member: MemberId, packet: ReadyRequest, now: float) -> list[Event]:
        session = self.session
        source = session.rejoiners[member]
        refusal = [Deliver((member,), ReadyResponse(ReadyAnswer.ALREADY_TAKEN, self.rejoiner_avatars()))]
        for seat in self.seats_in_order():
            if seat.member is None and seat.name.casefold() == packet.name.casefold() and seat.avatar == packet.avatar:
                break
        else:
            session.wrong_guesses += 1
            log.info("[%s] wrong guess at a vacant seat from %s (%d this game)", self.code, source or "an unknown address", session.wrong_guesses)
            raise Refused(f"REDY matches no vacant seat (wrong guess {session.wrong_guesses} this game)", refusal, guess=True)
        if seat.source != source:
            # Right name and avatar from another address: a phone that changed network, or
            # someone who read the host screen. Only once the seat's own device has had its
            # head start, and only while the room has not seen too many guesses.
            vacant_for = now - seat.left_at
            if vacant_for < self.limits.foreign_reclaim_delay or session.wrong_guesses >= self.limits.rejoin_guesses:
                why = (f"vacant {vacant_for:.1f} s of {self.limits.foreign_reclaim_delay:g}" if vacant_for < self.limits.foreign_reclaim_delay
                       else f"{session.wrong_guesses} wrong guesses this game")
                log.info("[%s seat %d] reclaim from another address (%s) refused: %s", self.code, seat.number, source or "unknown", why)
                return refusal  # answered, not a strike: the guess was right
        log.info("[%s seat %d] %r is back (from %s)", self.code, seat.number, seat.name, source or "an unknown address")
        seat.source = source
        back = session.reclaim(member, seat, now)
        self._roster_changed()
        return [
            PlayerBack(self.code, seat.number, member),
            Deliver((member,), ReadyResponse(ReadyAnswer.ACCEPTED, self.avatars())),
            *back,
        ]

    def _on_spin(self, member: MemberId, packet: Spin, now: float) -> list[Event]:
        return self._after_session(self.session.spin(self.seat_of(member).number, packet.number, now), now)

    def _on_card(self, member: MemberId, packet: CardAnswer, now: float) -> list[Event]:
        return self._after_session(self.session.answer(self.seat_of(member).number, packet.action, packet.value, now), now)

    def _on_career(self, member: MemberId, packet: CareerChoice, now: float) -> list[Event]:
        seat = self.seat_of(member).number
        return self._after_session(self.session.choose_career(seat, packet.field, packet.career, packet.salary, now), now)

    def _after_session(self, events: list[Event], now: float) -> list[Event]:
        """After a game event: if the game ended, back to the lobby.

        Same code, seats, avatars and readiness; seats whose players left and
        never came back are freed.
        """
        if self.session is None or not self.session.game.is_over:
            return events
        self.session = None
        self._last_activity = now
        for seat in [s for s in self.seats.values() if s.member is None]:
            del self.seats[seat.number]
            events.append(SeatFreed(self.code, seat.number))
        self._roster_changed()
        events += self._avatar_update(self.members())
        return events


#: What each member may send in each phase: (phase, role, packet type) -> handler.
#: Anything missing is refused with a strike. JOIN never reaches a room (the hub
#: answers a second JOIN itself).
_ALLOWED: dict[tuple[Phase, Role, type], Callable[..., list[Event]]] = {
    (Phase.LOBBY, Role.SEATED, ReadyRequest): Room._on_ready,
    (Phase.LOBBY, Role.HOST, StartGame): Room._on_start,
    (Phase.GAME, Role.REJOINER, ReadyRequest): Room._on_reclaim,
    (Phase.GAME, Role.SEATED, Spin): Room._on_spin,
    (Phase.GAME, Role.SEATED, CardAnswer): Room._on_card,
    (Phase.GAME, Role.SEATED, CareerChoice): Room._on_career,
}
