"""``lgmp.rooms.session``'s duty clocks, kept incrementally, against a full recount.

After each action the session looks again only at the seats the action can have
changed. These tests drive rooms through random games -- spins, card answers,
careers, players leaving and coming back, clocks running out -- next to a twin
room whose session recounts every seat after every action (as it did before the
clocks were incremental), and require the same events, the same next deadline
and the same seat due at every step.
"""

from __future__ import annotations

import random

import pytest

from lgmp.game import rules
from lgmp.game.engine import Duty
from lgmp.limits import Limits
from lgmp.rooms.room import Phase, Room
from lgmp.rooms.session import GameSession
from lgmp.wire.packets import CardAnswer, CareerChoice, JoinAnswer, ReadyRequest, Spin, StartGame

HOST = 100
NAMES = ("Maya", "Jonas", "Ana", "Ben", "Cleo", "Dev")


class RecountingSession(GameSession):
    """The reference: every seat's duty is looked at again after every action."""

    def _refresh_duties(self, now, actor, seats) -> None:
        super()._refresh_duties(now, actor, list(self.room.seats))


def _seat_room(recount: bool, players: int, limits: Limits) -> Room:
    room = Room("ABCD", HOST, seed=11, now=0.0, limits=limits)
    for seat in range(1, players + 1):
        answer, _ = room.add_player(10 + seat, 0.0)
        assert answer is JoinAnswer.PLAYER
        room.handle(10 + seat, ReadyRequest(NAMES[seat - 1], seat), 0.0)
    room.handle(HOST, StartGame(), 0.0)
    assert room.phase is Phase.GAME
    if recount:  # every seat was counted at the start: from now on after every action too
        room.session.__class__ = RecountingSession
    return room


def _a_move(room: Room, rng: random.Random):
    """A random move some present seat owes now, or None."""
    game = room.game
    present = [s for s in room.seats.values() if s.member is not None]
    rng.shuffle(present)
    for seat in present:
        duty = game.owes(seat.number)
        if duty is Duty.SPIN:
            return seat.member, Spin(rng.randint(1, 6))
        if duty is Duty.ANSWER:
            pending = game.pending
            card = rules.card(pending.kind, pending.number)
            return seat.member, CardAnswer(int(card.action), rng.choice(rules.card_answers(card)))
        if duty is Duty.CAREER:
            career = rng.choice(rules.ALL_CAREERS)
            return seat.member, CareerChoice(int(career.field), career.name, rules.wire_salary(career))
    return None


def _clocks(room: Room) -> tuple:
    session = room.session
    if session is None:
        return (None, None)
    return session.next_deadline(), session.due_seat(1e18)


@pytest.mark.parametrize("seed", range(40))
def test_incremental_clocks_match_a_full_recount(seed: int) -> None:
    rng = random.Random(seed)
    players = rng.randint(1, 6)
    limits = Limits(turn_timeout=rng.choice([0.0, 3.0, 60.0]), leave_grace=rng.choice([0.0, 2.0, 5.0]))
    fast, full = _seat_room(False, players, limits), _seat_room(True, players, limits)
    assert isinstance(full.session, RecountingSession) and type(fast.session) is GameSession
    now, gone, next_member = 0.0, {}, 1000
    for _ in range(400):
        if fast.session is None or fast.closed:
            break
        now += rng.choice([0.0, 0.5, 1.0, 4.0])
        roll = rng.random()
        if roll < 0.08 and len(gone) < players - 1:  # a player leaves mid-game
            present = [s for s in fast.seats.values() if s.member is not None]
            seat = rng.choice(present)
            gone[seat.number] = seat.member
            steps = [(r, lambda r, m=seat.member: r.remove(m, now, "gone")) for r in (fast, full)]
        elif roll < 0.14 and gone:  # ...and comes back
            number = rng.choice(sorted(gone))
            del gone[number]
            next_member += 1
            for r in (fast, full):
                assert r.add_player(next_member, now)[0] is JoinAnswer.PLAYER
            seat = fast.seats[number]
            packet = ReadyRequest(seat.name, seat.avatar)
            steps = [(r, lambda r, m=next_member: r.handle(m, packet, now)) for r in (fast, full)]
        elif roll < 0.3:  # time passes: whatever is due is played by the server
            steps = [(r, lambda r: r.tick(now)) for r in (fast, full)]
        else:
            move = _a_move(fast, rng)
            if move is None:
                steps = [(r, lambda r: r.tick(now)) for r in (fast, full)]
            else:
                member, packet = move
                steps = [(r, lambda r: r.handle(member, packet, now)) for r in (fast, full)]
        (a, do_a), (b, do_b) = steps
        assert do_a(a) == do_b(b)
        assert _clocks(fast) == _clocks(full), f"step at {now}"
        assert fast.next_deadline() == full.next_deadline()


def test_a_seat_that_leaves_gets_the_grace_as_its_deadline() -> None:
    limits = Limits(turn_timeout=60.0, leave_grace=5.0)
    room = _seat_room(False, 2, limits)
    assert room.next_deadline() == 60.0  # seat 1's spin
    room.remove(11, 10.0, "gone")
    assert room.next_deadline() == 15.0  # the leave's grace, not the turn timeout
    room.add_player(50, 12.0)
    room.handle(50, ReadyRequest(NAMES[0], 1), 12.0)
    assert room.next_deadline() == 72.0  # back: a full turn from the reclaim
