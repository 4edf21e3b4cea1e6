"""The engine against RULES.md and WIRE.md "Game", rule by rule, then a state machine.

A few tests put a player on a chosen space or stack a deck so a known card comes next;
they reach into the engine's private state through `put` and `stack` below, and only
there, because walking a player there by spins would hide what is being tested.
"""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from lgmp.game.engine import (
    AlreadyFinished,
    BadSpinNumber,
    CardDeal,
    CardPending,
    CareerAlreadyChosen,
    Duty,
    Game,
    GameNotOver,
    Move,
    NoCardPending,
    NotAwaited,
    NotFinished,
    NothingOwed,
    NotYourTurn,
    Outcome,
    PendingCard,
    PlayerResult,
    UnknownCareer,
    UnknownField,
    UnknownSeat,
    WrongAction,
    WrongAnswer,
    WrongSalary,
)
from lgmp.wire.errors import RuleError
from lgmp.game import rules
from lgmp.game.rules import (
    BOARD,
    BRAND_CRISIS_DECK,
    CAREER_POINT_DECK,
    CAREERS,
    DID_YOU_KNOW_FIELD,
    DID_YOU_KNOW_PILES,
    SPINNER_WEDGES,
    YOURE_THE_BOSS_DECK,
    Field,
    FinishCard,
    SpaceKind,
    wire_salary,
)

K = SpaceKind
F = Field


# --------------------------------------------------------------------------- helpers

def new_game(seats=(1,), seed=0) -> Game:
    return Game({s: (f"P{s}", s) for s in seats}, random.Random(seed), started_at=100.0)


def put(game: Game, seat: int, space: int) -> None:
    """Test-only: stand `seat` on `space`."""
    game._players[seat].position = space


def stack(game: Game, kind: SpaceKind, number: int) -> None:
    """Test-only: make card `number` of `kind` the next one drawn."""
    if kind is K.DID_YOU_KNOW:
        deck = game._did_you_know[rules.card(kind, number).field]
    else:
        deck = {K.BRAND_CRISIS: game._brand_crisis, K.CAREER_POINT: game._career_point,
                K.YOURE_THE_BOSS: game._youre_the_boss}[kind]
    card = next(c for c in deck.cards if c.number == number)
    deck.order = [card] + [c for c in deck.cards if c is not card]
    deck.drawn = 0


def spin_to(game: Game, seat: int, space: int) -> Outcome:
    """Stand `seat` up to 5 spaces behind `space` and spin so it ends exactly there."""
    start = max(0, space - 5)
    put(game, seat, start)
    return game.spin(seat, space - start)


def allowed_answers(p: PendingCard) -> tuple[int, list[int]]:
    """(action, legal values) for a pending card, from the rules' look-ups alone."""
    dealt = rules.card(p.kind, p.number)
    return dealt.action, list(rules.card_answers(dealt))


def play_out(game: Game, bound: int = 5000) -> int:
    """auto_play every owed duty until the game is over; returns the actions used."""
    actions = 0
    while not game.is_over:
        for seat in game.seats:
            if game.owes(seat) is not None:
                game.auto_play(seat)
                actions += 1
        assert actions <= bound, "game did not end"
    return actions


def finish(game: Game, seat: int) -> None:
    """Walk `seat` (whose turn it is, no card pending) to 55 with one spin."""
    assert game.turn == seat and game.pending is None
    put(game, seat, 50)
    game.spin(seat, 5)


# --------------------------------------------------------------------------- start

def test_start_state():
    game = new_game((2, 5, 6))
    assert game.seats == (2, 5, 6)
    assert game.turn == 2                       # lowest seat, not seat 1
    assert dict(game.positions) == {2: 0, 5: 0, 6: 0}
    assert game.occupancy() == (3,) + (0,) * 55
    assert game.pending is None
    assert [game.owes(s) for s in (1, 2, 5, 6)] == [None, Duty.SPIN, None, None]
    assert not game.board_over and not game.is_over


def test_positions_is_read_only():
    game = new_game()
    with pytest.raises(TypeError):
        game.positions[1] = 5  # type: ignore[index]


@pytest.mark.parametrize("players", [{}, {7: ("a", 1)}, {0: ("a", 1)},
                                     {1: ("a", 1), 2: ("b", 1)}, {1: ("a", 7)},
                                     {s: ("x", s) for s in range(1, 7)} | {7: ("y", 1)}])
def test_bad_players_are_a_caller_bug(players):
    with pytest.raises(ValueError):
        Game(players, random.Random(0), started_at=0)


def test_every_deck_is_shuffled_at_start_each_pile_separately():
    orders = set()
    for seed in range(20):
        game = new_game(seed=seed)
        for field, deck in game._did_you_know.items():
            assert sorted(c.number for c in deck.order) == \
                [c.number for c in DID_YOU_KNOW_PILES[field]]
        orders.add(tuple(c.number for c in game._brand_crisis.order))
    assert len(orders) > 15


def test_deck_reshuffles_when_empty():
    game = new_game()
    deck, rng = game._career_point, random.Random(5)
    first = [deck.draw(rng).number for _ in range(8)]
    second = [deck.draw(rng).number for _ in range(8)]
    assert sorted(first) == sorted(second) == list(range(1, 9))


# --------------------------------------------------------------------------- spinner

def test_draw_spin_uses_the_wedges():
    game = new_game(seed=3)
    counts = Counter(game.draw_spin() for _ in range(12000))
    assert set(counts) == set(SPINNER_WEDGES)
    # 4 and 6 have three wedges, 1 and 2 one: roughly 3000 vs 1000 of 12000.
    assert counts[4] > 2 * counts[1] and counts[6] > 2 * counts[2]


def test_draw_spin_is_seeded():
    assert [new_game(seed=9).draw_spin() for _ in range(5)] == \
           [new_game(seed=9).draw_spin() for _ in range(5)]


# --------------------------------------------------------------------------- plain

def test_plain_landing_moves_and_passes_the_turn():
    game = new_game((1, 2))
    out = game.spin(1, 2)
    assert out.moves == (Move(1, 0, 2, False),)
    assert out.landed is K.PLAIN
    assert out.cards == () and out.tokens == () and out.finished == ()
    assert not out.card_resolved
    assert out.turn == 2 == game.turn
    assert game.occupancy()[:3] == (1, 0, 1)


def test_lone_player_keeps_the_turn():
    game = new_game((4,))
    assert game.spin(4, 2).turn == 4


def test_every_space_kind_is_what_the_board_says():
    for space in range(1, 56):
        game = new_game((1, 2))
        out = spin_to(game, 1, space)
        assert out.landed is BOARD[space]
        if BOARD[space] in (K.PLAIN, K.FINISH):
            assert game.pending is None and game.turn == 2
        else:
            assert game.pending.kind is BOARD[space] and game.turn == 1


def test_landings_count_spin_landings_only():
    game = new_game((1,))
    stack(game, K.BRAND_CRISIS, 1)            # -1: 30 -> 29 (You're the Boss)
    spin_to(game, 1, 30)
    game.answer_card(1, 1, -1)
    spin_to(game, 1, 2)
    landings = game.record(ended_at=0).players[0].landings
    assert landings == (1, 1, 0, 0, 0, 0)     # the card's stop on 29 is not a landing


# --------------------------------------------------------------------------- Brand Crisis

@pytest.mark.parametrize("card", BRAND_CRISIS_DECK)
def test_brand_crisis_moves_the_mover_back(card):
    game = new_game((1, 2))
    stack(game, K.BRAND_CRISIS, card.number)
    out = spin_to(game, 1, 18)
    assert out.landed is K.BRAND_CRISIS
    assert out.cards == (CardDeal(K.BRAND_CRISIS, card.number, (1,)),)
    assert game.pending == PendingCard(K.BRAND_CRISIS, card.number, 1, frozenset({1}))
    assert out.turn == 1 and game.owes(1) is Duty.ANSWER and game.owes(2) is None
    out = game.answer_card(1, 1, card.move)
    assert out.moves == (Move(1, 18, 18 + card.move, True),)
    assert out.card_resolved and out.turn == 2 and game.pending is None
    assert game.positions[1] == 18 + card.move


def test_card_moves_never_fire_spaces():
    # Brand Crisis 1 (-1) from 30 ends on 29, a You're the Boss space: nothing happens.
    game = new_game((1, 2))
    stack(game, K.BRAND_CRISIS, 1)
    spin_to(game, 1, 30)
    out = game.answer_card(1, 1, -1)
    assert BOARD[29] is K.YOURE_THE_BOSS
    assert out.cards == () and game.pending is None and out.turn == 2
    # Career Point 7 from 37: -1 ends on 36 (YTB), +2 on 39 (DYK); neither fires.
    for value, end in ((-1, 36), (2, 39)):
        game = new_game((1, 2))
        stack(game, K.CAREER_POINT, 7)
        spin_to(game, 1, 37)
        out = game.answer_card(1, 1, value)
        assert BOARD[end] in (K.YOURE_THE_BOSS, K.DID_YOU_KNOW)
        assert game.positions[1] == end and out.cards == () and game.pending is None


# --------------------------------------------------------------------------- Career Point

@pytest.mark.parametrize("card", CAREER_POINT_DECK)
@pytest.mark.parametrize("option", ["a", "b"])
def test_career_point_applies_the_chosen_option(card, option):
    move = card.option_a if option == "a" else card.option_b
    game = new_game((1, 2))
    stack(game, K.CAREER_POINT, card.number)
    out = spin_to(game, 1, 25)
    assert out.cards == (CardDeal(K.CAREER_POINT, card.number, (1,)),)
    out = game.answer_card(1, 1, move)
    assert game.positions[1] == 25 + move
    assert out.moves == (() if move == 0 else (Move(1, 25, 25 + move, True),))
    assert out.card_resolved and out.turn == 2


def test_career_point_to_55_finishes_by_card():
    game = new_game((1, 2, 3))
    stack(game, K.CAREER_POINT, 8)            # 0 / +2
    spin_to(game, 1, 53)
    out = game.answer_card(1, 1, 2)
    assert out.moves == (Move(1, 53, 55, True),)
    assert out.finished == ((1, 1),)
    assert out.cards == (CardDeal(K.FINISH, FinishCard.FIRST, (1,)),)
    assert out.turn == 2 and game.place_of(1) == 1
    # The card's arrival on 55 is not a spin landing.
    assert game.record(ended_at=0).players[0].landings[K.FINISH] == 0


# --------------------------------------------------------------------------- You're the Boss

@pytest.mark.parametrize("card", YOURE_THE_BOSS_DECK)
def test_youre_the_boss_asks_every_seat_for_a_field(card):
    game = new_game((1, 3, 4))
    stack(game, K.YOURE_THE_BOSS, card.number)
    out = spin_to(game, 1, 8)
    assert out.cards == (CardDeal(K.YOURE_THE_BOSS, card.number, (1, 3, 4)),)
    assert game.pending.awaiting == {1, 3, 4}
    for i, seat in enumerate((4, 1, 3)):      # any order
        pick = card.options[i % len(card.options)]
        out = game.answer_card(seat, 2, pick)
        assert out.tokens == ((seat, pick),)
        assert game.tokens_of(seat)[pick - 1] == 1
        assert out.card_resolved == (seat == 3)
        assert out.turn == (3 if seat == 3 else 1)
    assert out.moves == ()


def test_youre_the_boss_refuses_a_field_the_card_lacks():
    game = new_game((1,))
    stack(game, K.YOURE_THE_BOSS, 1)          # A G B P M: no Design
    spin_to(game, 1, 8)
    with pytest.raises(WrongAnswer):
        game.answer_card(1, 2, F.DESIGN)


def test_youre_the_boss_waits_for_finished_players_too():
    game = new_game((1, 2))
    finish(game, 1)
    assert game.turn == 2
    stack(game, K.YOURE_THE_BOSS, 2)
    spin_to(game, 2, 11)
    assert game.pending.awaiting == {1, 2}
    assert game.owes(1) is Duty.ANSWER        # before its career
    game.answer_card(2, 2, F.DESIGN)
    assert game.pending is not None and game.turn == 2
    out = game.answer_card(1, 2, F.MARKETING)
    assert out.card_resolved and out.turn == 2   # seat 1 finished: back to 2


# --------------------------------------------------------------------------- Did You Know

def test_did_you_know_waits_for_finished_players_too():
    game = new_game((1, 2))
    finish(game, 1)
    spin_to(game, 2, 10)  # Marketing pile
    assert game.pending.kind is K.DID_YOU_KNOW and game.pending.awaiting == {1, 2}
    assert game.owes(1) is Duty.ANSWER        # before its career
    game.answer_card(2, 2, 0)                 # seat 2 declines
    out = game.answer_card(1, 2, F.MARKETING)  # the finished seat takes the token
    assert out.card_resolved and out.tokens == ((1, F.MARKETING),)
    assert game.tokens_of(1)[F.MARKETING - 1] >= 1


@pytest.mark.parametrize("space", sorted(DID_YOU_KNOW_FIELD))
def test_did_you_know_draws_from_the_space_colour(space):
    field = DID_YOU_KNOW_FIELD[space]
    game = new_game((1, 2), seed=space)
    out = spin_to(game, 1, space)
    number = out.cards[0].number
    assert out.cards == (CardDeal(K.DID_YOU_KNOW, number, (1, 2)),)
    assert number in [c.number for c in DID_YOU_KNOW_PILES[field]]
    with pytest.raises(WrongAnswer):           # another colour's token
        game.answer_card(1, 2, field % 6 + 1)
    out = game.answer_card(1, 2, field)
    assert out.tokens == ((1, field),)
    out = game.answer_card(2, 2, 0)            # declining is an answer too
    assert out.tokens == () and out.card_resolved and out.turn == 2
    assert game.tokens_of(2) == (0,) * 6


# --------------------------------------------------------------------------- clamping

def test_spin_past_55_stops_there_and_finishes():
    game = new_game((1, 2))
    put(game, 1, 52)
    out = game.spin(1, 6)
    assert out.moves == (Move(1, 52, 55, False),)
    assert out.landed is K.FINISH and out.finished == ((1, 1),)
    assert out.cards == (CardDeal(K.FINISH, FinishCard.FIRST, (1,)),)
    assert game.pending is None and out.turn == 2


def test_backward_card_move_stops_at_0():
    # No card space is within 3 of space 0, so play never clamps there; stand the
    # mover on 1 while its Brand Crisis card waits to check the clamp anyway.
    game = new_game((1,))
    stack(game, K.BRAND_CRISIS, 2)            # -3
    spin_to(game, 1, 18)
    put(game, 1, 1)
    out = game.answer_card(1, 1, -3)
    assert out.moves == (Move(1, 1, 0, True),) and game.positions[1] == 0


# --------------------------------------------------------------------------- finishing

@pytest.mark.parametrize("seats, cards", [
    ((3,), [FinishCard.FIRST]),
    ((1, 2), [FinishCard.FIRST, FinishCard.LAST]),
    ((1, 2, 3), [FinishCard.FIRST, FinishCard.OTHER, FinishCard.LAST]),
    ((1, 2, 3, 4, 5, 6), [1, 2, 2, 2, 2, 3]),
])
def test_finish_cards(seats, cards):
    game = new_game(seats)
    dealt = []
    for place, seat in enumerate(seats, start=1):
        put(game, seat, 50)
        out = game.spin(seat, 5)
        assert out.finished == ((seat, place),)
        dealt.append(out.cards[0].number)
        assert out.cards[0].recipients == (seat,)
    assert dealt == cards
    assert game.board_over and game.turn == 0 and out.turn == 0 and out.board_over
    assert game.occupancy()[55] == len(seats)


def test_finished_players_are_skipped():
    game = new_game((1, 2, 3))
    game.spin(1, 2)
    finish(game, 2)
    assert game.turn == 3
    game.spin(3, 2)
    assert game.turn == 1
    game.spin(1, 3)                           # 2 -> 5, plain
    assert game.turn == 3                     # 2 skipped
    finish(game, 3)
    assert game.turn == 1
    game.spin(1, 2)                           # 5 -> 7, plain
    assert game.turn == 1                     # the last one on the board keeps it
    with pytest.raises(AlreadyFinished):
        game.spin(2, 3)


def test_ranking_is_by_finish_order_only():
    game = new_game((1, 2, 3))
    game.spin(1, 2)
    finish(game, 2)
    finish(game, 3)
    play_out(game)                            # seat 1, the furthest behind, comes last
    assert [r.seat for r in game.results()] == [2, 3, 1]
    assert [r.place for r in game.results()] == [1, 2, 3]


# --------------------------------------------------------------------------- careers

def test_career_choice_and_results():
    game = new_game((1, 2))
    finish(game, 1)
    # Seat 1 may choose while seat 2 still plays; name case does not matter.
    out = game.choose_career(1, F.DESIGN, "user experience DESIGNER", 90)
    assert out.turn == 2 and not out.game_over and out.moves == () and out.cards == ()
    assert game.career_of(1).name == "User Experience Designer"
    assert game.owes(1) is None
    finish(game, 2)
    assert game.owes(2) is Duty.CAREER and not game.is_over
    with pytest.raises(GameNotOver):
        game.results()
    out = game.choose_career(2, 3, "System Architect", 105)
    assert out.game_over and out.board_over and out.turn == 0
    assert game.results() == (PlayerResult(1, 1, "User Experience Designer", 90),
                              PlayerResult(2, 2, "System Architect", 105))


def test_record():
    game = new_game((2, 4))
    stack(game, K.YOURE_THE_BOSS, 2)
    spin_to(game, 2, 8)
    game.answer_card(2, 2, F.ADVERTISING)
    game.answer_card(4, 2, F.DESIGN)
    finish(game, 4)
    finish(game, 2)
    game.choose_career(4, F.MARKETING, "Media Planner", 54)
    game.auto_play(2)
    rec = game.record(ended_at=160.5)
    assert (rec.started_at, rec.ended_at, rec.duration) == (100.0, 160.5, 60.5)
    p2, p4 = rec.players
    assert (p2.seat, p2.name, p2.avatar, p2.place) == (2, "P2", 2, 2)
    assert (p2.field, p2.career, p2.salary, p2.auto_career) == \
        (F.ADVERTISING, "Brand/Product Manager", 132840, True)
    assert p2.tokens == (0, 0, 0, 0, 0, 1) and p2.landings == (0, 0, 0, 1, 0, 1)
    assert (p4.place, p4.field, p4.career, p4.salary, p4.auto_career) == \
        (1, F.MARKETING, "Media Planner", 54000, False)
    assert p4.tokens == (1, 0, 0, 0, 0, 0) and p4.landings == (0, 0, 0, 0, 0, 1)


# --------------------------------------------------------------------------- auto_play

@pytest.mark.parametrize("card", CAREER_POINT_DECK)
def test_auto_career_point_takes_the_larger_move(card):
    game = new_game((1,))
    stack(game, K.CAREER_POINT, card.number)
    spin_to(game, 1, 25)
    game.auto_play(1)
    assert game.positions[1] == 25 + max(card.option_a, card.option_b)


def test_auto_answers():
    game = new_game((1, 2))
    stack(game, K.BRAND_CRISIS, 10)
    spin_to(game, 1, 30)
    assert game.auto_play(1).moves == (Move(1, 30, 27, True),)
    stack(game, K.YOURE_THE_BOSS, 4)          # first option: Advertising
    spin_to(game, 2, 36)
    assert game.auto_play(1).tokens == ((1, F.ADVERTISING),)
    assert game.auto_play(2).tokens == ((2, F.ADVERTISING),)
    spin_to(game, 1, 46)                      # Did You Know, Advertising pile
    assert game.auto_play(2).tokens == ((2, F.ADVERTISING),)


def test_auto_spin_draws_from_the_wedges():
    game = new_game((1,), seed=4)
    twin = copy.deepcopy(game)                # same rng state: predicts the draw
    out = game.auto_play(1)
    assert out.moves == (Move(1, 0, twin.draw_spin(), False),)


@pytest.mark.parametrize("tokens, field, career", [
    ((0, 0, 0, 0, 0, 0), F.DESIGN, "Creative Director"),               # all tied: field 1
    ((0, 2, 0, 0, 0, 2), F.PUBLIC_RELATIONS, "Marketing Director"),    # tie: lower field
    ((1, 0, 3, 0, 0, 2), F.BUSINESS_DATA_ANALYTICS, "System Architect"),
    ((0, 0, 0, 5, 0, 0), F.GRAPHIC_MEDIA_MANAGEMENT, "Customer Service Project Manager"),
    ((0, 0, 0, 0, 1, 0), F.MARKETING, "Brand/Product Manager"),
])
def test_auto_career_picks_most_tokens_then_best_salary(tokens, field, career):
    game = new_game((1,))
    game._players[1].tokens = list(tokens)
    finish(game, 1)
    game.auto_play(1)
    rec = game.record(ended_at=0).players[0]
    assert (rec.field, rec.career, rec.auto_career) == (field, career, True)
    assert rec.salary == max(c.salary for c in CAREERS[field])


def test_auto_play_refuses_when_nothing_is_owed():
    game = new_game((1, 2))
    with pytest.raises(NothingOwed):
        game.auto_play(2)
    with pytest.raises(UnknownSeat):
        game.auto_play(3)


# --------------------------------------------------------------------------- refusals

def _fresh():
    return new_game((1, 2, 3), seed=1)


def _bc_pending():
    game = _fresh()
    stack(game, K.BRAND_CRISIS, 2)            # -3
    spin_to(game, 1, 18)
    return game


def _cp_pending():
    game = _fresh()
    stack(game, K.CAREER_POINT, 4)            # +1 / -1
    spin_to(game, 1, 12)
    return game


def _ytb_pending_answered_by_2():
    game = _fresh()
    stack(game, K.YOURE_THE_BOSS, 1)          # A G B P M
    spin_to(game, 1, 22)
    game.answer_card(2, 2, F.MARKETING)
    return game


def _dyk_pending():
    game = _fresh()
    spin_to(game, 1, 21)                      # Design pile
    return game


def _seat_1_finished():
    game = _fresh()
    finish(game, 1)
    return game


def _seat_1_has_career():
    game = _seat_1_finished()
    game.choose_career(1, F.DESIGN, "Creative Director", 132)
    return game


ILLEGAL = [
    # spins
    (_fresh, lambda g: g.spin(4, 3), UnknownSeat),
    (_fresh, lambda g: g.spin(0, 3), UnknownSeat),
    (_fresh, lambda g: g.spin("1", 3), UnknownSeat),
    (_fresh, lambda g: g.spin(2, 3), NotYourTurn),
    (_fresh, lambda g: g.spin(1, 0), BadSpinNumber),
    (_fresh, lambda g: g.spin(1, 7), BadSpinNumber),
    (_fresh, lambda g: g.spin(1, -1), BadSpinNumber),
    (_fresh, lambda g: g.spin(1, 3.0), BadSpinNumber),
    (_fresh, lambda g: g.spin(1, True), BadSpinNumber),
    (_bc_pending, lambda g: g.spin(1, 3), CardPending),
    (_bc_pending, lambda g: g.spin(2, 3), CardPending),
    (_seat_1_finished, lambda g: g.spin(1, 3), AlreadyFinished),
    # answers
    (_fresh, lambda g: g.answer_card(1, 1, -1), NoCardPending),
    (_bc_pending, lambda g: g.answer_card(2, 1, -3), NotAwaited),
    (_bc_pending, lambda g: g.answer_card(4, 1, -3), UnknownSeat),
    (_bc_pending, lambda g: g.answer_card(1, 2, -3), WrongAction),
    (_bc_pending, lambda g: g.answer_card(1, 1, -2), WrongAnswer),
    (_bc_pending, lambda g: g.answer_card(1, 1, 3), WrongAnswer),
    (_cp_pending, lambda g: g.answer_card(1, 1, 0), WrongAnswer),
    (_cp_pending, lambda g: g.answer_card(1, 1, 2), WrongAnswer),
    (_cp_pending, lambda g: g.answer_card(3, 1, 1), NotAwaited),
    (_ytb_pending_answered_by_2, lambda g: g.answer_card(2, 2, F.ADVERTISING), NotAwaited),
    (_ytb_pending_answered_by_2, lambda g: g.answer_card(3, 1, F.ADVERTISING), WrongAction),
    (_ytb_pending_answered_by_2, lambda g: g.answer_card(3, 2, F.DESIGN), WrongAnswer),
    (_ytb_pending_answered_by_2, lambda g: g.answer_card(3, 2, 0), WrongAnswer),
    (_ytb_pending_answered_by_2, lambda g: g.answer_card(3, 2, 7), WrongAnswer),
    (_dyk_pending, lambda g: g.answer_card(2, 2, F.MARKETING), WrongAnswer),
    (_dyk_pending, lambda g: g.answer_card(2, 1, F.DESIGN), WrongAction),
    # careers
    (_fresh, lambda g: g.choose_career(1, F.DESIGN, "Creative Director", 132), NotFinished),
    (_seat_1_has_career, lambda g: g.choose_career(1, F.DESIGN, "Creative Director", 132),
     CareerAlreadyChosen),
    (_seat_1_finished, lambda g: g.choose_career(1, 0, "Creative Director", 132),
     UnknownField),
    (_seat_1_finished, lambda g: g.choose_career(1, 7, "Creative Director", 132),
     UnknownField),
    (_seat_1_finished, lambda g: g.choose_career(1, F.DESIGN, "Media Planner", 54),
     UnknownCareer),
    (_seat_1_finished, lambda g: g.choose_career(1, F.DESIGN, "Astronaut", 1),
     UnknownCareer),
    (_seat_1_finished, lambda g: g.choose_career(1, F.DESIGN, "Creative Director", 133),
     WrongSalary),
    (_seat_1_finished, lambda g: g.choose_career(1, F.DESIGN, "Creative Director", 132770),
     WrongSalary),
    (_seat_1_finished, lambda g: g.choose_career(9, F.DESIGN, "Creative Director", 132),
     UnknownSeat),
    # others
    (_fresh, lambda g: g.auto_play(2), NothingOwed),
    (_seat_1_has_career, lambda g: g.auto_play(1), NothingOwed),
    (_fresh, lambda g: g.results(), GameNotOver),
]


@pytest.mark.parametrize("setup, action, error", ILLEGAL)
def test_refusals_name_a_reason_and_change_nothing(setup, action, error):
    game = setup()
    before = game.snapshot()
    with pytest.raises(error) as info:
        action(game)
    assert isinstance(info.value, RuleError)
    assert info.value.reason and str(info.value) == info.value.reason
    assert game.snapshot() == before


# --------------------------------------------------------------------------- whole games

def test_every_game_ends_within_a_bound():
    most = 0
    for seed in range(300):
        seats = random.Random(seed).sample(range(1, 7), k=seed % 6 + 1)
        game = new_game(seats, seed=seed)
        most = max(most, play_out(game, bound=3000))
        assert sorted(r.place for r in game.results()) == list(range(1, len(seats) + 1))
    assert most < 3000


def test_same_seed_and_actions_give_the_same_game():
    def run(seed):
        game = new_game((1, 3, 5), seed=seed)
        play_out(game)
        return game.record(ended_at=200.0), game.snapshot()
    assert run(11) == run(11)
    assert run(11) != run(12)


# --------------------------------------------------------------------------- state machine

ALL_CAREER_NAMES = sorted({c.name for c in rules.ALL_CAREERS})


class EngineMachine(RuleBasedStateMachine):
    """Random legal and illegal actions on 1-6 players; invariants after every step."""

    @initialize(seats=st.sets(st.integers(1, 6), min_size=1),
                seed=st.integers(0, 2**32 - 1))
    def start(self, seats, seed):
        self.game = new_game(sorted(seats), seed=seed)
        self.tokens = {s: (0,) * 6 for s in seats}

    # -- legal moves, so games get somewhere

    @rule(data=st.data(), count=st.integers(1, 40))
    def play(self, data, count):
        """`count` legal board actions by whoever must act: spins and card answers.
        (Several per step, so that games reach their end in a few dozen steps.)"""
        game = self.game
        for _ in range(count):
            pending = game.pending
            if pending is not None:
                seat = data.draw(st.sampled_from(sorted(pending.awaiting)))
                action, values = allowed_answers(pending)
                out = game.answer_card(seat, action, data.draw(st.sampled_from(values)))
                assert out.card_resolved == (len(pending.awaiting) == 1)
            elif not game.board_over:
                out = game.spin(game.turn, data.draw(st.integers(1, 6)))
                assert out.landed is not None and len(out.moves) == 1
            self.check_all()

    @rule(data=st.data())
    def career(self, data):
        game = self.game
        ready = [s for s in game.seats if game.place_of(s) and not game.career_of(s)]
        if not ready:
            return
        seat = data.draw(st.sampled_from(ready))
        field = data.draw(st.sampled_from(list(Field)))
        career = data.draw(st.sampled_from(CAREERS[field]))
        name = data.draw(st.sampled_from([career.name, career.name.upper(),
                                          career.name.lower()]))
        game.choose_career(seat, field, name, wire_salary(career))
        assert game.career_of(seat) == career

    @rule(seat=st.integers(0, 7))
    def auto(self, seat):
        self._try(lambda: self.game.auto_play(seat))

    # -- anything at all: refused ones must change nothing

    @rule(seat=st.integers(-1, 7), number=st.integers(-1, 8))
    def any_spin(self, seat, number):
        self._try(lambda: self.game.spin(seat, number))

    @rule(seat=st.integers(0, 7), action=st.integers(0, 3), value=st.integers(-4, 8))
    def any_answer(self, seat, action, value):
        self._try(lambda: self.game.answer_card(seat, action, value))

    @rule(seat=st.integers(0, 7), field=st.integers(-1, 7),
          name=st.sampled_from(ALL_CAREER_NAMES + ["", "nobody"]),
          salary=st.integers(0, 140))
    def any_career(self, seat, field, name, salary):
        self._try(lambda: self.game.choose_career(seat, field, name, salary))

    def _try(self, action):
        before = self.game.snapshot()
        try:
            action()
        except RuleError:
            assert self.game.snapshot() == before

    # -- invariants, checked after every step and after every action inside `play`

    @invariant()
    def check_all(self):
        self.board_is_consistent()
        self.exactly_one_actor()
        self.tokens_only_grow()
        self.places_have_no_gaps()

    def board_is_consistent(self):
        game = self.game
        positions = game.positions
        assert all(0 <= p <= 55 for p in positions.values())
        occupancy = game.occupancy()
        assert len(occupancy) == 56 and sum(occupancy) == len(game.seats)
        on = Counter(positions.values())  # pieces per space, counted once (not once per space)
        assert occupancy == tuple(on[i] for i in range(56))
        for seat in game.seats:   # on 55 exactly when finished
            assert (positions[seat] == 55) == (game.place_of(seat) is not None)

    def exactly_one_actor(self):
        game = self.game
        duties = {s: game.owes(s) for s in game.seats}
        spinners = {s for s, d in duties.items() if d is Duty.SPIN}
        answerers = {s for s, d in duties.items() if d is Duty.ANSWER}
        if game.board_over:
            assert game.turn == 0 and game.pending is None and not spinners | answerers
        elif game.pending is not None:
            assert not spinners and answerers == game.pending.awaiting
            assert game.turn == game.pending.mover
        else:
            assert spinners == {game.turn} and not answerers
            assert game.place_of(game.turn) is None
        for seat, duty in duties.items():
            if duty is Duty.CAREER:
                assert game.place_of(seat) and game.career_of(seat) is None

    def tokens_only_grow(self):
        for seat in self.game.seats:
            now = self.game.tokens_of(seat)
            assert all(a >= b for a, b in zip(now, self.tokens[seat]))
            self.tokens[seat] = now

    def places_have_no_gaps(self):
        places = sorted(p for p in map(self.game.place_of, self.game.seats) if p)
        assert places == list(range(1, len(places) + 1))

    def teardown(self):
        """Every game ends by auto_play within a bounded number of actions."""
        game = getattr(self, "game", None)
        if game is None:
            return
        done = sum(1 for s in game.seats if game.place_of(s))
        event(f"finished on their own: {done} of {len(game.seats)}")
        for _ in range(3000):
            if game.is_over:
                break
            game.auto_play(next(s for s in game.seats if game.owes(s)))
            self.check_all()
        assert game.is_over
        assert [r.place for r in game.results()] == list(range(1, len(game.seats) + 1))


EngineMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=80, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineMachine = EngineMachine.TestCase


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), actions=st.lists(st.integers(0, 6), max_size=40))
def test_replaying_actions_gives_an_identical_record(seed, actions):
    """Same seed + same sequence of (mixed manual and auto) actions = same record."""
    def run():
        game = new_game((1, 2, 4), seed=seed)
        for a in actions:
            seat = next((s for s in game.seats if game.owes(s)), None)
            if seat is None:
                break
            if a == 0 or game.owes(seat) is not Duty.SPIN:
                game.auto_play(seat)
            else:
                game.spin(seat, a)
        play_out(game)
        return game.record(ended_at=1.0), game.snapshot()
    assert run() == run()


# --------------------------------------------------------------------------- act_* twins


@pytest.mark.parametrize("seed", range(12))
def test_act_twins_report_what_the_outcomes_do(seed):
    """Two games from one seed, one played through spin/answer_card/choose_career and
    one through act_spin/act_answer/act_career: the same state after every action, and
    the same facts in the reused Changes as in the Outcome."""
    rng = random.Random(seed)
    seats = tuple(sorted(rng.sample(range(1, 7), rng.randint(1, 6))))
    by_outcome, by_changes = new_game(seats, seed), new_game(seats, seed)
    while not by_outcome.is_over:
        seat = next(s for s in seats if by_outcome.owes(s) is not None)
        duty = by_outcome.owes(seat)
        if duty is Duty.SPIN:
            number = rng.randint(1, 6)
            out, changes = by_outcome.spin(seat, number), by_changes.act_spin(seat, number)
        elif duty is Duty.ANSWER:
            answer = by_outcome.auto_answer(seat)
            out, changes = by_outcome.answer_card(seat, *answer), by_changes.act_answer(seat, *answer)
        else:
            career = rng.choice(rules.ALL_CAREERS)
            args = (seat, int(career.field), career.name, rules.wire_salary(career))
            out, changes = by_outcome.choose_career(*args), by_changes.act_career(*args)
        assert out.moves == tuple(Move(*m) for m in changes.moves)
        assert out.cards == tuple(CardDeal(k, n, r) for k, n, r, _ in changes.cards)
        pending = by_changes.pending
        assert [a for *_, a in changes.cards] == [
            tuple(sorted(pending.awaiting)) if pending is not None and pending.kind == k else () for k, *_ in changes.cards
        ]
        assert (out.tokens, out.finished, out.landed, out.card_resolved) == (
            tuple(changes.tokens), tuple(changes.finished), changes.landed, changes.card_resolved)
        assert by_outcome.snapshot() == by_changes.snapshot()
        assert by_outcome.occupancy() == by_changes.occupancy() == tuple(
            Counter(by_outcome.positions.values()).get(space, 0) for space in range(56))
    assert by_changes.is_over
