"""One game in one room, from STRT to FINL: it exists only while the game runs.

The session turns what the engine did (its ``Changes``) into events -- the GAME
and CARD packets WIRE.md asks for, and the room facts a view needs (the play
facts only when the room's ``facts`` is set: someone reads them) -- and keeps
the per-seat duty clocks: each seat that owes something (a spin, a card answer, a
career) has a deadline, ``turn_timeout`` after the duty began, or
``leave_grace`` after its player left, when the server plays for it with the
engine's ``auto_play``.

The clocks are kept incrementally: after an action only the seats it can have
given or taken a duty are looked at again (the actor, the turn before and after,
the seats a new card awaits, a seat that moved or finished), and a seat's
deadline is recomputed only when its duty or its player's presence changed. The
room's next deadline is the smallest of at most six cached ones.

It also holds the *rejoiners*: connections that sent JOIN with the room's code
while a seat is vacant-by-leave and have yet to reclaim it with REDY (with the
address each came from), and the count of wrong guesses at a vacant seat this
game (the room's reclaim policy reads both).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from ..game.engine import Changes, Duty, Game
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

# Looked up once: reading a member off its enum class costs ~90 ns.
_CAREER, _PLAIN = Duty.CAREER, SpaceKind.PLAIN


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
        self._duties: dict[int, tuple[Duty | None, float]] = {}  # seat -> (duty, when it began)
        self._career_since: dict[int, float] = {}  # seat -> when its career choice became due
        self._deadlines: dict[int, float] = {}  # seat -> when the server plays for it (seats that have one)
        self._next_deadline: float | None = None  # the smallest of _deadlines

    # --- starting and playing -------------------------------------------------------

    def start(self, now: float) -> list[Event]:
        players = tuple((s.number, s.name, s.avatar) for s in self.room.seats_in_order())
        log.info("[%s] game started with seats %s (seed %d)", self.code, [p[0] for p in players], self.seed)
        events: list[Event] = [GameStarted(self.code, players, self.game.turn, self.seed)]
        self._broadcast_game(self.game.turn, SpaceKind.PLAIN, events)
        self._refresh_duties(now, None, self.room.seats)
        return events

    def spin(self, seat: int, number: int, now: float) -> list[Event]:
        game = self.game
        if self.server_spins:
            if game.owes(seat) is not Duty.SPIN:
                raise NotAllowed("not this seat's spin")
            number = game.draw_spin()
        turn = game.turn
        return self._apply(game.act_spin(seat, number), now, seat, turn, [], spin=number)

    def answer(self, seat: int, action: int, value: int, now: float) -> list[Event]:
        turn = self.game.turn
        changes = self.game.act_answer(seat, action, value)
        events: list[Event] = [CardAnswered(self.code, seat, action, value, False)] if self.room.facts else []
        return self._apply(changes, now, seat, turn, events)

    def choose_career(self, seat: int, field: int, career: str, salary: int, now: float) -> list[Event]:
        turn = self.game.turn
        changes = self.game.act_career(seat, field, career, salary)
        events: list[Event] = [self._career_chosen(seat, by_server=False)] if self.room.facts else []
        return self._apply(changes, now, seat, turn, events)

    def auto_play(self, seat: int, now: float) -> list[Event]:
        """Do what ``seat`` owes now, by the engine's rule for idle or absent players."""
        game = self.game
        duty, turn = game.owes(seat), game.turn
        if duty is Duty.SPIN:
            number = game.draw_spin()
            return self._apply(game.act_spin(seat, number), now, seat, turn, [], spin=number)
        facts = self.room.facts
        if duty is Duty.ANSWER:
            action, value = game.auto_answer(seat)
            changes = game.act_answer(seat, action, value)
            return self._apply(changes, now, seat, turn, [CardAnswered(self.code, seat, action, value, True)] if facts else [])
        changes = game.act_auto(seat)  # the career
        return self._apply(changes, now, seat, turn, [self._career_chosen(seat, by_server=True)] if facts else [])

    def _career_chosen(self, seat: int, *, by_server: bool) -> CareerChosen:
        career = self.game.career_of(seat)
        return CareerChosen(self.code, seat, int(career.field), career.name, career.salary, by_server)

    def _apply(self, changes: Changes, now: float, actor: int, turn_before: int, events: list[Event], *,
               spin: int = 0) -> list[Event]:
        """Add to ``events`` what the engine did, per WIRE.md's GAME and CARD rules.

        ``changes`` is the game's reused record of its latest action, read here
        before anything else acts; ``turn_before`` is whose turn it was before it.
        """
        game, code, room = self.game, self.code, self.room
        facts = room.facts  # else only the effects are built: nobody reads the rest
        # Seats whose duty the action may have changed (see _refresh_duties).
        touched = {actor, turn_before, game.turn}
        for seat, start, end, by_card in changes.moves:
            if facts:
                events.append(PieceMoved(code, seat, start, end, by_card, 0 if by_card else spin))
            touched.add(seat)
        if facts:
            for seat, field in changes.tokens:
                events.append(TokenGained(code, seat, int(field)))
        if changes.landed is not None:
            # A card waits for answers only from the mover's own turn: its turn still.
            self._broadcast_game(game.turn, changes.landed, events)
        elif changes.card_resolved:
            self._broadcast_game(game.turn, _PLAIN, events)
        for seat, place in changes.finished:
            log.info("[%s seat %d] finished in place %d", code, seat, place)
            if facts:
                events.append(PlayerFinished(code, seat, place))
            touched.add(seat)
        for kind, number, recipients, awaiting in changes.cards:
            if facts:
                events.append(CardDrawn(code, int(kind), number, recipients, awaiting))
            seats = room.seats
            to = [room.host]
            for n in recipients:
                member = seats[n].member
                if member is not None:
                    to.append(member)
            events.append(Deliver(tuple(to), CardDealt(kind, number)))
            touched.update(awaiting)
        if game.is_over:
            events += self._finish(now)
        else:
            touched.discard(0)  # "nobody's turn"
            self._refresh_duties(now, actor, touched)
        return events

    def _broadcast_game(self, turn: int, space: int, events: list[Event]) -> list[Event]:
        update = self.last_game = GameUpdate(turn, space, self.game.occupancy())
        room = self.room
        if room.facts:
            events.append(TurnChanged(self.code, turn, space, update.occupancy))
        events.append(Deliver(room.members(), update))
        return events

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
        self._update_deadline(seat.number)
        events: list[Event] = []
        if self.last_game is not None:
            events.append(Deliver((member,), self.last_game))
        pending = self.game.pending
        if pending is not None and seat.number in pending.awaiting:
            events.append(Deliver((member,), CardDealt(pending.kind, pending.number)))
        return events

    # --- duty timers ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._next_deadline

    def due_seat(self, now: float) -> int | None:
        """The lowest seat whose duty is due at ``now``, if any."""
        deadlines = self._deadlines
        for number in SEATS:  # in ascending order
            deadline = deadlines.get(number)
            if deadline is not None and deadline <= now:
                return number
        return None

    def seat_vacated(self, number: int) -> None:
        """Seat ``number``'s player left mid-game (the room set ``left_at``): its clock
        is now the leave's grace."""
        self._update_deadline(number)

    def _refresh_duties(self, now: float, actor: int | None, seats) -> None:
        """Note when the current duty of each seat in ``seats`` began.

        A new duty restarts its clock, and so does any duty of the seat that just
        acted (a lone player spins again right after spinning). Only the seats an
        action can have changed are passed: the others' duties, clocks and
        deadlines stay as they are.
        """
        owes, duties, deadlines = self.game.owes, self._duties, self._deadlines
        changed = False
        for number in seats:
            duty = owes(number)
            old = duties.get(number)
            if number != actor and (duty is None if old is None else old[0] is duty):
                continue  # the same duty (Duty members are singletons): its clock runs on
            if duty is _CAREER:
                # The career clock starts at the Finish card; answering group
                # cards in between does not restart it.
                since = self._career_since.setdefault(number, now)
            else:
                since = now
            duties[number] = (duty, since)
            deadline = self._deadline(number)
            if deadline != deadlines.get(number):
                changed = True
                if deadline is None:
                    del deadlines[number]
                else:
                    deadlines[number] = deadline
        if changed:
            self._next_deadline = min(deadlines.values()) if deadlines else None

    def _update_deadline(self, number: int) -> None:
        if self._set_deadline(number, self._deadline(number)):
            self._next_deadline = min(self._deadlines.values()) if self._deadlines else None

    def _set_deadline(self, number: int, deadline: float | None) -> bool:
        """Store seat ``number``'s deadline; True when it changed."""
        deadlines = self._deadlines
        if deadline is None:
            return deadlines.pop(number, None) is not None
        if deadlines.get(number) == deadline:
            return False
        deadlines[number] = deadline
        return True

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
