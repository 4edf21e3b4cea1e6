"""One game in one room, from STRT to FINL: it exists only while the game runs.

The session turns what the engine did (``Outcome``) into events -- the GAME and
CARD packets WIRE.md asks for, and the room facts a view needs -- and keeps the
per-seat duty clocks: each seat that owes something (a spin, a card answer, a
career) has a deadline, ``turn_timeout`` after the duty began, or
``leave_grace`` after its player left, when the server plays for it with the
engine's ``auto_play``.

It also holds the *rejoiners*: connections that sent JOIN with the room's code
while a seat is vacant-by-leave and have yet to reclaim it with REDY (with the
address each came from), and the count of wrong guesses at a vacant seat this
game (the room's reclaim policy reads both).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from ..game.engine import Duty, Game, Outcome
from ..game.rules import SEATS, SpaceKind
from ..limits import Limits
from ..wire.errors import RuleError
from ..wire.packets import CardDealt, FinalResults, GameUpdate, Reset
from .events import (
    CardAnswered,
    CardDrawn,
    CareerChosen,
    CloseMember,
    Deliver,
    Event,
    GameOver,
    GameStarted,
    MemberId,
    PieceMoved,
    PlayerFinished,
    StoreGame,
    TokenGained,
    TurnChanged,
)

if TYPE_CHECKING:
    from .room import Room, Seat

log = logging.getLogger("lgmp.room")


class NotAllowed(RuleError):
    """A well-formed packet that the room does not accept from this member now."""


class GameSession:
    def __init__(self, room: Room, *, seed: int, now: float, server_spins: bool):
        self.room = room
        self.code = room.code
        self.limits: Limits = room.limits
        self.seed = seed
        self.server_spins = server_spins
        players = {seat.number: (seat.name, seat.avatar) for seat in room.seats.values()}
        self.game = Game(players, random.Random(seed), started_at=now)
        self.rejoiners: dict[MemberId, str | None] = {}  # member -> its source address
        self.wrong_guesses = 0  # REDYs from rejoiners that matched no vacant seat, this game
        self.last_game: GameUpdate | None = None
        self._duties: dict[int, tuple[Duty | None, float]] = {}
        self._career_since: dict[int, float] = {}  # seat -> when its career choice became due

    # --- starting and playing -------------------------------------------------------

    def start(self, now: float) -> list[Event]:
        players = tuple((s.number, s.name, s.avatar) for s in self.room.seats_in_order())
        log.info("[%s] game started with seats %s (seed %d)", self.code, [p[0] for p in players], self.seed)
        events: list[Event] = [GameStarted(self.code, players, self.game.turn, self.seed)]
        events += self._broadcast_game(self.game.turn, SpaceKind.PLAIN)
        self._refresh_duties(now, None)
        return events

    def spin(self, seat: int, number: int, now: float) -> list[Event]:
        if self.server_spins:
            if self.game.owes(seat) is not Duty.SPIN:
                raise NotAllowed("not this seat's spin")
            number = self.game.draw_spin()
        return self._apply(self.game.spin(seat, number), now, seat, spin=number)

    def answer(self, seat: int, action: int, value: int, now: float) -> list[Event]:
        outcome = self.game.answer_card(seat, action, value)
        return [CardAnswered(self.code, seat, action, value, False), *self._apply(outcome, now, seat)]

    def choose_career(self, seat: int, field: int, career: str, salary: int, now: float) -> list[Event]:
        outcome = self.game.choose_career(seat, field, career, salary)
        return [self._career_chosen(seat, by_server=False), *self._apply(outcome, now, seat)]

    def auto_play(self, seat: int, now: float) -> list[Event]:
        """Do what ``seat`` owes now, by the engine's rule for idle or absent players."""
        game = self.game
        duty = game.owes(seat)
        if duty is Duty.SPIN:
            number = game.draw_spin()
            return self._apply(game.spin(seat, number), now, seat, spin=number)
        if duty is Duty.ANSWER:
            action, value = game.auto_answer(seat)
            return [CardAnswered(self.code, seat, action, value, True), *self._apply(game.answer_card(seat, action, value), now, seat)]
        outcome = game.auto_play(seat)  # the career
        return [self._career_chosen(seat, by_server=True), *self._apply(outcome, now, seat)]

    def _career_chosen(self, seat: int, *, by_server: bool) -> CareerChosen:
        career = self.game.career_of(seat)
        return CareerChosen(self.code, seat, int(career.field), career.name, career.salary, by_server)

    def _apply(self, outcome: Outcome, now: float, actor: int, *, spin: int = 0) -> list[Event]:
        """Turn what the engine did into events, per WIRE.md's GAME and CARD rules."""
        game, code, room = self.game, self.code, self.room
        events: list[Event] = []
        for move in outcome.moves:
            events.append(PieceMoved(code, move.seat, move.start, move.end, move.by_card, 0 if move.by_card else spin))
        for seat, field in outcome.tokens:
            events.append(TokenGained(code, seat, int(field)))
        if outcome.landed is not None:
            pending = game.pending
            turn = pending.mover if pending is not None else game.turn
            events += self._broadcast_game(turn, outcome.landed)
        elif outcome.card_resolved:
            events += self._broadcast_game(game.turn, SpaceKind.PLAIN)
        for seat, place in outcome.finished:
            log.info("[%s seat %d] finished in place %d", code, seat, place)
            events.append(PlayerFinished(code, seat, place))
        for deal in outcome.cards:
            pending = game.pending
            awaiting = tuple(sorted(pending.awaiting)) if pending is not None and pending.kind == deal.kind else ()
            events.append(CardDrawn(code, int(deal.kind), deal.number, tuple(deal.recipients), awaiting))
            to = [room.host] + [room.seats[n].member for n in deal.recipients if room.seats[n].member is not None]
            events.append(Deliver(tuple(to), CardDealt(deal.kind, deal.number)))
        if outcome.game_over:
            events += self._finish(now)
        else:
            self._refresh_duties(now, actor)
        return events

    def _broadcast_game(self, turn: int, space: int) -> list[Event]:
        update = self.last_game = GameUpdate(turn, space, self.game.occupancy())
        return [TurnChanged(self.code, turn, space, update.occupancy), Deliver(self.room.members(), update)]

    def _finish(self, now: float) -> list[Event]:
        """FINL and RSET, after the game is stored (``StoreGame`` comes first and holds them)."""
        game = self.game
        results = game.results()
        by_seat = {r.seat: r for r in results}
        final = FinalResults(
            places=tuple(by_seat[n].place if n in by_seat else 0 for n in SEATS),
            careers=tuple(by_seat[n].career_name if n in by_seat else "" for n in SEATS),
            salaries=tuple(by_seat[n].wire_salary if n in by_seat else 0 for n in SEATS),
        )
        record = game.record(ended_at=now)
        members = self.room.members()
        standings = tuple((r.seat, r.place, r.career_name, game.career_of(r.seat).salary) for r in results)
        log.info("[%s] game over: places %s", self.code, final.places)
        events: list[Event] = [
            GameOver(self.code, standings, record.duration),
            StoreGame(self.code, self.seed, record, members),
            Deliver(members, final),
            Deliver(members, Reset()),
        ]
        # Rejoiners who never reclaimed a seat: the game they came back for is over.
        rejoiners = tuple(sorted(self.rejoiners))
        if rejoiners:
            events.append(Deliver(rejoiners, Reset()))
            events += [CloseMember(m, "the game ended before the seat was reclaimed") for m in rejoiners]
        self.rejoiners.clear()
        return events

    # --- rejoining ----------------------------------------------------------------------

    def reclaim(self, member: MemberId, seat: Seat, now: float) -> list[Event]:
        """``member`` (a rejoiner) named the absent ``seat``'s name and avatar."""
        self.rejoiners.pop(member, None)
        seat.member, seat.left_at = member, None
        # Their duty clock restarts: they are back and deserve a full turn.
        duty, _ = self._duties.get(seat.number, (None, now))
        self._duties[seat.number] = (duty, now)
        if seat.number in self._career_since:
            self._career_since[seat.number] = now
        events: list[Event] = []
        if self.last_game is not None:
            events.append(Deliver((member,), self.last_game))
        pending = self.game.pending
        if pending is not None and seat.number in pending.awaiting:
            events.append(Deliver((member,), CardDealt(pending.kind, pending.number)))
        return events

    # --- duty timers ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._deadline(n) for n in self.room.seats) if d is not None]
        return min(deadlines, default=None)

    def due_seat(self, now: float) -> int | None:
        """The lowest seat whose duty is due at ``now``, if any."""
        for number in sorted(self.room.seats):
            deadline = self._deadline(number)
            if deadline is not None and deadline <= now:
                return number
        return None

    def _refresh_duties(self, now: float, actor: int | None) -> None:
        """Note when each seat's current duty began.

        A new duty restarts its clock, and so does any duty of the seat that just
        acted (a lone player spins again right after spinning).
        """
        for number in self.room.seats:
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
        seat = self.room.seats[number]
        if seat.member is None:
            # The grace is counted once from the leave; after it every duty is played at once.
            return max(since, seat.left_at + self.limits.leave_grace)
        if self.limits.turn_timeout <= 0:
            return None
        return since + self.limits.turn_timeout
