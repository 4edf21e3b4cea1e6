"""One LGMP room: its lobby and its game, as a pure state machine.

Theory of operation
-------------------
A room has a host (the shared board screen), up to six seated players, and,
during a game, *rejoiners*: connections that sent JOIN with the room's code while
a seat is vacant-by-leave and have yet to reclaim it with REDY. Every one of them
is a *member*, named by the connection id the hub gives it.

The room never touches sockets or clocks. Each entry point takes ``now`` and
returns a list of outputs for the shell to carry out, in order:

* ``Send(to, packet)`` -- encode ``packet`` once and queue it to every member in ``to``;
* ``Close(member, reason)`` -- close that member after what was queued before;
* ``GameFinished(...)`` -- a finished game's record, to be stored.

Entry points: ``add_player`` (a JOIN with our code), ``handle`` (any other packet
from a member), ``remove`` (a member's connection ended), ``tick`` (time passed),
``resync`` (send a member the current state again) and ``close``.

``handle`` dispatches through ``_HANDLERS``: packet type -> (handler, phases in
which it is allowed). A packet that is well-formed but not allowed now -- wrong
phase, wrong member, a move the rules refuse -- raises ``RuleError`` *before
anything changes*; the hub answers that with a strike and ``resync``.

Phases: LOBBY -> (STRT) -> GAME -> (every career chosen: FINL, RSET) -> LOBBY.
The room ends (``closed``) when the host leaves, when every player has left
mid-game, or when its lobby idles too long.

Timers: in a game, each seat that owes something (a spin, a card answer, a
career) has a deadline -- ``turn_timeout`` after the duty began, or
``leave_grace`` after its player left -- when the server plays for it with the
engine's ``auto_play``. In the lobby, ``lobby_idle`` after the last packet.
``next_deadline`` is the earliest of these; ``tick(now)`` fires what is due.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..game.engine import Duty, Game, GameRecord, Outcome
from ..wire.errors import RuleError
from ..limits import Limits
from .names import check_name_shape, is_profane
from ..wire.packets import (
    CardAnswer,
    CardDealt,
    CareerChoice,
    ClientPacket,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    ServerPacket,
    Spin,
    StartGame,
)
from ..game.rules import SEATS, SpaceKind

log = logging.getLogger("lgmp.rooms.room")

MemberId = int


class NotAllowed(RuleError):
    """A well-formed packet that the room does not accept from this member now."""


@dataclass(frozen=True, slots=True)
class Send:
    to: tuple[MemberId, ...]
    packet: ServerPacket


@dataclass(frozen=True, slots=True)
class Close:
    member: MemberId
    reason: str


@dataclass(frozen=True, slots=True)
class GameFinished:
    room: str
    seed: int
    record: GameRecord


Output = Send | Close | GameFinished


class Phase(enum.Enum):
    LOBBY = "lobby"
    GAME = "game"


@dataclass(slots=True)
class Seat:
    number: int
    member: MemberId | None  # None: its player left mid-game; the server plays it
    name: str = ""
    avatar: int = 0  # 0 = not ready yet
    left_at: float | None = None

    @property
    def ready(self) -> bool:
        return self.avatar != 0


class Room:
    def __init__(self, code: str, host: MemberId, *, seed: int, now: float, limits: Limits, server_spins: bool = False):
        self.code = code
        self.host = host
        self.limits = limits
        self.server_spins = server_spins
        self.phase = Phase.LOBBY
        self.closed = False
        self.seats: dict[int, Seat] = {}
        self.rejoiners: set[MemberId] = set()
        self.game: Game | None = None
        self.game_seed = 0
        self._rng = random.Random(seed)
        self._last_activity = now
        self._last_game: GameUpdate | None = None
        self._duties: dict[int, tuple[Duty | None, float]] = {}
        self._career_since: dict[int, float] = {}  # seat -> when its career choice became due

    # --- who is here ---------------------------------------------------------

    def seat_of(self, member: MemberId) -> Seat | None:
        for seat in self.seats.values():
            if seat.member == member:
                return seat
        return None

    def members(self) -> tuple[MemberId, ...]:
        """Everyone who receives room-wide packets: the host and the seated players.

        Rejoiners are left out until they reclaim their seat: a client still on
        its name screen should not be sent the board.
        """
        seated = [s.member for s in self._seats_in_order() if s.member is not None]
        return (self.host, *seated)

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

    def _seats_in_order(self) -> list[Seat]:
        return [self.seats[n] for n in sorted(self.seats)]

    def _others(self, member: MemberId) -> tuple[MemberId, ...]:
        return tuple(m for m in self.members() if m != member)

    def _avatar_update(self, to: Iterable[MemberId]) -> list[Output]:
        to = tuple(to)
        return [Send(to, ReadyResponse(ReadyAnswer.UPDATE, self.avatars()))] if to else []

    # --- entry points ----------------------------------------------------------

    def add_player(self, member: MemberId, now: float) -> tuple[JoinAnswer, list[Output]]:
        """A JOIN with this room's code. Returns the answer and what to send."""
        self._last_activity = now
        if self.phase is Phase.GAME:
            if not any(seat.member is None for seat in self.seats.values()):
                return JoinAnswer.GAME_STARTED, []
            self.rejoiners.add(member)
            log.info("[%s] a connection may reclaim a vacant seat", self.code)
            return JoinAnswer.PLAYER, self._avatar_update([member])
        free = [n for n in SEATS if n not in self.seats]
        if not free:
            return JoinAnswer.LOBBY_FULL, []
        self.seats[free[0]] = Seat(free[0], member)
        log.info("[%s seat %d] joined", self.code, free[0])
        return JoinAnswer.PLAYER, self._avatar_update([member])

    def touch(self, now: float) -> None:
        """A member sent a packet (even one that is ignored): the lobby is not idle."""
        if self.phase is Phase.LOBBY:
            self._last_activity = now

    def handle(self, member: MemberId, packet: ClientPacket, now: float) -> list[Output]:
        """Any packet but JOIN from a member. Raises RuleError (nothing changed) if not allowed."""
        handler, phases = _HANDLERS.get(type(packet), (None, ()))
        if handler is None:
            raise NotAllowed(f"{type(packet).__name__} is not accepted from a room member")
        if self.phase not in phases:
            raise NotAllowed(f"{type(packet).__name__} is not allowed in the {self.phase.value}")
        if self.phase is Phase.LOBBY:
            self._last_activity = now
        return handler(self, member, packet, now)

    def remove(self, member: MemberId, now: float, reason: str) -> list[Output]:
        """``member``'s connection has ended."""
        if self.closed:
            return []
        if member == self.host:
            log.info("[%s host] left (%s): the room ends", self.code, reason)
            return self.close("the host left", exclude=member)
        if member in self.rejoiners:
            self.rejoiners.discard(member)
            return []
        seat = self.seat_of(member)
        if seat is None:
            return []
        if self.phase is Phase.LOBBY:
            del self.seats[seat.number]
            log.info("[%s seat %d] left the lobby (%s)", self.code, seat.number, reason)
            return self._avatar_update(self.members())
        seat.member, seat.left_at = None, now
        log.info("[%s seat %d] left mid-game (%s): the server plays the seat", self.code, seat.number, reason)
        if all(s.member is None for s in self.seats.values()):
            return self.close("every player left")
        return []

    def resync(self, member: MemberId) -> list[Output]:
        """Send ``member`` the current state again: GAME in a game, the avatars in the lobby
        (and to a rejoiner, who has not reclaimed its seat yet)."""
        if self.phase is Phase.GAME and self._last_game is not None and member not in self.rejoiners:
            return [Send((member,), self._last_game)]
        return self._avatar_update([member])

    def close(self, reason: str, *, exclude: MemberId | None = None) -> list[Output]:
        """End the room: RSET to every member, then close them."""
        self.closed = True
        members = tuple(m for m in (*self.members(), *sorted(self.rejoiners)) if m != exclude)
        outputs: list[Output] = [Send(members, Reset())] if members else []
        outputs += [Close(m, reason) for m in members]
        return outputs

    def next_deadline(self) -> float | None:
        if self.closed:
            return None
        if self.phase is Phase.LOBBY:
            return self._last_activity + self.limits.lobby_idle if self.limits.lobby_idle > 0 else None
        deadlines = [d for d in (self._deadline(n) for n in self.seats) if d is not None]
        return min(deadlines, default=None)

    def tick(self, now: float) -> list[Output]:
        """Fire what is due at ``now``: auto-play for idle or absent seats, lobby idle."""
        if self.closed:
            return []
        if self.phase is Phase.LOBBY:
            deadline = self.next_deadline()
            if deadline is not None and now >= deadline:
                log.info("[%s] lobby idle for %.0f s: closing", self.code, self.limits.lobby_idle)
                return self.close("the lobby was idle too long")
            return []
        outputs: list[Output] = []
        # Auto-play may hand a new duty to a seat that is due at once (a vacant
        # seat whose grace ran out long ago): loop until nothing is due.
        while self.phase is Phase.GAME and not self.closed:
            due = [n for n in sorted(self.seats) if (d := self._deadline(n)) is not None and d <= now]
            if not due:
                break
            seat = due[0]
            log.info("[%s seat %d] %s: the server plays for it", self.code, seat,
                     "absent" if self.seats[seat].member is None else "idle")
            outputs += self._apply(self.game.auto_play(seat), now, seat)
        return outputs

    # --- lobby -----------------------------------------------------------------

    def _on_ready(self, member: MemberId, packet: ReadyRequest, now: float) -> list[Output]:
        if member == self.host:
            raise NotAllowed("the host holds no seat")
        if self.phase is Phase.GAME:
            return self._reclaim(member, packet, now)
        seat = self.seat_of(member)
        answer = check_name_shape(packet.name)
        if answer is ReadyAnswer.ACCEPTED and packet.avatar not in SEATS:
            answer = ReadyAnswer.INVALID_CHARACTERS
        if answer is ReadyAnswer.ACCEPTED:
            others = [s for s in self.seats.values() if s is not seat and s.ready]
            if any(s.name.casefold() == packet.name.casefold() or s.avatar == packet.avatar for s in others):
                answer = ReadyAnswer.ALREADY_TAKEN
        if answer is ReadyAnswer.ACCEPTED and is_profane(packet.name):
            answer = ReadyAnswer.PROFANE
        if answer is not ReadyAnswer.ACCEPTED:
            return [Send((member,), ReadyResponse(answer, self.avatars()))]
        seat.name, seat.avatar = packet.name, packet.avatar
        log.info("[%s seat %d] ready as %r, avatar %d", self.code, seat.number, seat.name, seat.avatar)
        return [Send((member,), ReadyResponse(ReadyAnswer.ACCEPTED, self.avatars()))] + self._avatar_update(self._others(member))

    def _reclaim(self, member: MemberId, packet: ReadyRequest, now: float) -> list[Output]:
        if member not in self.rejoiners:
            raise NotAllowed("REDY after the start is only for reclaiming a vacant seat")
        for seat in self._seats_in_order():
            if seat.member is None and seat.name.casefold() == packet.name.casefold() and seat.avatar == packet.avatar:
                break
        else:
            return [Send((member,), ReadyResponse(ReadyAnswer.ALREADY_TAKEN, self.avatars()))]
        self.rejoiners.discard(member)
        seat.member, seat.left_at = member, None
        # Their duty clock restarts: they are back and deserve a full turn.
        duty, _ = self._duties.get(seat.number, (None, now))
        self._duties[seat.number] = (duty, now)
        if seat.number in self._career_since:
            self._career_since[seat.number] = now
        log.info("[%s seat %d] %r is back", self.code, seat.number, seat.name)
        outputs: list[Output] = [Send((member,), ReadyResponse(ReadyAnswer.ACCEPTED, self.avatars()))]
        outputs += self.resync(member)
        pending = self.game.pending
        if pending is not None and seat.number in pending.awaiting:
            outputs.append(Send((member,), CardDealt(pending.kind, pending.number)))
        return outputs

    def _on_start(self, member: MemberId, packet: StartGame, now: float) -> list[Output]:
        if member != self.host:
            raise NotAllowed("only the host starts the game")
        if not self.seats:
            raise NotAllowed("no player is seated")
        if not all(seat.ready for seat in self.seats.values()):
            raise NotAllowed("not every seated player is ready")
        self.game_seed = self._rng.getrandbits(63)
        players = {seat.number: (seat.name, seat.avatar) for seat in self.seats.values()}
        self.game = Game(players, random.Random(self.game_seed), started_at=now)
        self.phase = Phase.GAME
        self._duties, self._career_since = {}, {}
        log.info("[%s] game started with seats %s (seed %d)", self.code, sorted(players), self.game_seed)
        outputs = self._broadcast_game(self.game.turn, SpaceKind.PLAIN)
        self._refresh_duties(now, None)
        return outputs

    # --- game --------------------------------------------------------------------

    def _player_seat(self, member: MemberId) -> int:
        seat = self.seat_of(member)
        if seat is None:
            raise NotAllowed("the host and rejoining connections do not play")
        return seat.number

    def _on_spin(self, member: MemberId, packet: Spin, now: float) -> list[Output]:
        seat = self._player_seat(member)
        number = packet.number
        if self.server_spins:
            if self.game.owes(seat) is not Duty.SPIN:
                raise NotAllowed("not this seat's spin")
            number = self.game.draw_spin()
        return self._apply(self.game.spin(seat, number), now, seat)

    def _on_card(self, member: MemberId, packet: CardAnswer, now: float) -> list[Output]:
        seat = self._player_seat(member)
        return self._apply(self.game.answer_card(seat, packet.action, packet.value), now, seat)

    def _on_career(self, member: MemberId, packet: CareerChoice, now: float) -> list[Output]:
        seat = self._player_seat(member)
        return self._apply(self.game.choose_career(seat, packet.field, packet.career, packet.salary), now, seat)

    def _apply(self, outcome: Outcome, now: float, actor: int) -> list[Output]:
        """Turn what the engine did into packets, per WIRE.md's GAME and CARD rules."""
        game = self.game
        outputs: list[Output] = []
        if outcome.landed is not None:
            pending = game.pending
            turn = pending.mover if pending is not None else game.turn
            outputs += self._broadcast_game(turn, outcome.landed)
        elif outcome.card_resolved:
            outputs += self._broadcast_game(game.turn, SpaceKind.PLAIN)
        for deal in outcome.cards:
            to = [self.host] + [self.seats[n].member for n in deal.recipients if self.seats[n].member is not None]
            outputs.append(Send(tuple(to), CardDealt(deal.kind, deal.number)))
        for seat, place in outcome.finished:
            log.info("[%s seat %d] finished in place %d", self.code, seat, place)
        if outcome.game_over:
            outputs += self._finish(now)
        else:
            self._refresh_duties(now, actor)
        return outputs

    def _broadcast_game(self, turn: int, space: int) -> list[Output]:
        self._last_game = GameUpdate(turn, space, self.game.occupancy())
        return [Send(self.members(), self._last_game)]

    def _finish(self, now: float) -> list[Output]:
        game = self.game
        by_seat = {r.seat: r for r in game.results()}
        final = FinalResults(
            places=tuple(by_seat[n].place if n in by_seat else 0 for n in SEATS),
            careers=tuple(by_seat[n].career_name if n in by_seat else "" for n in SEATS),
            salaries=tuple(by_seat[n].wire_salary if n in by_seat else 0 for n in SEATS),
        )
        record = game.record(ended_at=now)
        members = self.members()
        outputs: list[Output] = [Send(members, final), Send(members, Reset()), GameFinished(self.code, self.game_seed, record)]
        log.info("[%s] game over: places %s", self.code, final.places)
        # Back to the lobby: same code, seats, avatars and readiness; seats whose
        # players left and never came back are freed.
        self.phase, self.game, self._last_game, self._duties, self._career_since = Phase.LOBBY, None, None, {}, {}
        self._last_activity = now
        for seat in [s for s in self.seats.values() if s.member is None]:
            del self.seats[seat.number]
        # Rejoiners who never reclaimed a seat: the game they came back for is over.
        rejoiners = tuple(sorted(self.rejoiners))
        if rejoiners:
            outputs += [Send(rejoiners, Reset())] + [Close(m, "the game ended before the seat was reclaimed") for m in rejoiners]
        self.rejoiners.clear()
        outputs += self._avatar_update(self.members())
        return outputs

    # --- duty timers ------------------------------------------------------------------

    def _refresh_duties(self, now: float, actor: int | None) -> None:
        """Note when each seat's current duty began.

        A new duty restarts its clock, and so does any duty of the seat that just
        acted (a lone player spins again right after spinning).
        """
        for number in self.seats:
            duty = self.game.owes(number)
            if number == actor or self._duties.get(number, (None, 0.0))[0] != duty:
                if duty is Duty.CAREER:
                    # The career clock starts at the Finish card; answering group
                    # cards in between does not restart it.
                    since = self._career_since.setdefault(number, now)
                else:
                    since = now
                self._duties[number] = (duty, since)

    def _deadline(self, number: int) -> float | None:
        duty, since = self._duties.get(number, (None, 0.0))
        if duty is None:
            return None
        seat = self.seats[number]
        if seat.member is None:
            # The grace is counted once from the leave; after it every duty is played at once.
            return max(since, seat.left_at + self.limits.leave_grace)
        if self.limits.turn_timeout <= 0:
            return None
        return since + self.limits.turn_timeout


_ALL = (Phase.LOBBY, Phase.GAME)
_HANDLERS: dict[type, tuple[Callable[..., list[Output]], tuple[Phase, ...]]] = {
    ReadyRequest: (Room._on_ready, _ALL),
    StartGame: (Room._on_start, (Phase.LOBBY,)),
    Spin: (Room._on_spin, (Phase.GAME,)),
    CardAnswer: (Room._on_card, (Phase.GAME,)),
    CareerChoice: (Room._on_career, (Phase.GAME,)),
}
