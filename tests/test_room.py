"""``lgmp.rooms.room.Room`` on its own: the lobby and the game as WIRE.md and PROTOCOL.md state them.

No sockets and no clock: every call gets ``now``. Players are steered with the spin
numbers they send (the client chooses the number), so a test can put a piece on the
space kind it needs without reaching into the engine.

Member ids are ``10 + seat`` so that a seat number used where a member id belongs
(or the other way round) shows up as a wrong recipient.
"""

from __future__ import annotations

import pytest

from lgmp.game.engine import Duty
from lgmp.wire.errors import RuleError
from lgmp.limits import Limits
from lgmp.wire.packets import (
    CardAnswer,
    CardDealt,
    CareerChoice,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)
from lgmp.rooms.events import CloseMember, Deliver, StoreGame
from lgmp.rooms.room import Phase, Refused
from tests.effects import Room
from lgmp.game import rules
from lgmp.game.rules import (
    BOARD,
    DID_YOU_KNOW_FIELD,
    FINISH_SPACE,
    Field,
    SpaceKind,
)

K = SpaceKind
HOST = 100
NAMES = {1: "Maya", 2: "Jonas", 3: "Ana", 4: "Ben", 5: "Cleo", 6: "Dev"}
AVATARS = {1: 3, 2: 1, 3: 2, 4: 6, 5: 5, 6: 4}
#: 0 -> 55 landing only on plain spaces: 5 9 14 20 26 31 35 40 45 51 55.
PLAIN_PATH = (5, 4, 5, 6, 6, 5, 4, 5, 5, 6, 4)


def m(seat: int) -> int:
    """The member id the tests give the player of ``seat``."""
    return 10 + seat


# --------------------------------------------------------------------------- helpers

def new_room(*, seed: int = 7, **limits) -> Room:
    return Room("ABCD", HOST, seed=seed, now=0.0, limits=Limits(**limits))


def seated(n: int, *, ready: bool = True, **kw) -> Room:
    room = new_room(**kw)
    for seat in range(1, n + 1):
        answer, _ = room.add_player(m(seat), 0.0)
        assert answer is JoinAnswer.PLAYER
        if ready:
            out = room.handle(m(seat), ReadyRequest(NAMES[seat], AVATARS[seat]), 0.0)
            assert out[0].packet.response == ReadyAnswer.ACCEPTED
    return room


def started(n: int, **kw) -> Room:
    room = seated(n, **kw)
    room.handle(HOST, StartGame(), 0.0)
    assert room.phase is Phase.GAME
    return room


def sends(outputs) -> list[Deliver]:
    return [o for o in outputs if isinstance(o, Deliver)]


def got(outputs, member: int) -> list:
    """The packets ``member`` is sent, in order."""
    return [o.packet for o in sends(outputs) if member in o.to]


def games(outputs) -> list[Deliver]:
    return [o for o in sends(outputs) if isinstance(o.packet, GameUpdate)]


def cards(outputs) -> list[Deliver]:
    return [o for o in sends(outputs) if isinstance(o.packet, CardDealt)]


def answer_for(kind: int, number: int, *, option: str = "a") -> CardAnswer:
    """A valid answer to card (kind, number), from the rules' look-ups: the first value
    the card allows (Career Point: option A), or its second with ``option="b"``."""
    dealt = rules.card(kind, number)
    values = rules.card_answers(dealt)
    return CardAnswer(dealt.action, values[1] if option == "b" else values[0])


def resolve(room: Room, now: float = 0.0) -> list:
    """Every seat a pending card waits for answers it; the outputs."""
    outputs = []
    pending = room.game.pending
    if pending is None:
        return outputs
    for seat in sorted(pending.awaiting):
        outputs += room.handle(m(seat), answer_for(pending.kind, pending.number), now)
    return outputs


def plain_step(pos: int) -> int:
    """The largest spin from ``pos`` that lands on a plain space (or the finish)."""
    for d in range(6, 0, -1):
        if BOARD[min(FINISH_SPACE, pos + d)] in (K.PLAIN, K.FINISH):
            return d
    return 1


def small_step(pos: int) -> int:
    """The smallest spin from ``pos`` that lands on a plain space: others dawdle."""
    for d in range(1, 7):
        if BOARD[min(FINISH_SPACE, pos + d)] is K.PLAIN:
            return d
    return plain_step(pos)


def step_onto(pos: int, kind: int) -> int | None:
    for d in range(1, 7):
        if BOARD[min(FINISH_SPACE, pos + d)] == kind:
            return d
    return None


def advance(room: Room, seat: int, kind: int, now: float = 0.0, *, bound: int = 200) -> list:
    """Play (plain steps, cards answered) until ``seat`` spins onto a space of ``kind``.

    Returns the outputs of that last spin only.
    """
    for _ in range(bound):
        game = room.game
        if game.pending is not None:
            resolve(room, now)
            continue
        turn = game.turn
        pos = game.positions[turn]
        if turn == seat and (d := step_onto(pos, kind)) is not None:
            return room.handle(m(seat), Spin(d), now)
        room.handle(m(turn), Spin(plain_step(pos)), now)
    raise AssertionError("could not steer the seat there")


def walk_plain(room: Room, seat: int, spins=PLAIN_PATH, now: float = 0.0) -> list:
    """``seat`` follows ``spins`` (others take plain steps between); the last spin's outputs."""
    out = []
    for d in spins:
        while room.game.turn != seat:
            other = room.game.turn
            room.handle(m(other), Spin(small_step(room.game.positions[other])), now)
        out = room.handle(m(seat), Spin(d), now)
    return out


CAREER_OF = {  # seat -> (field, career as sent, wire salary, catalogue spelling)
    1: (5, "creative director", 132, "Creative Director"),
    2: (3, "SYSTEM ARCHITECT", 105, "System Architect"),
    3: (6, "Brand/Product Manager", 132, "Brand/Product Manager"),
    4: (4, "Graphic Media Technical Sales Representative", 49, "Graphic Media Technical Sales Representative"),
    5: (2, "corporate communications MANAGER", 70, "Corporate Communications Manager"),
    6: (1, "User Interface Designer", 80, "User Interface Designer"),
}


def choose(room: Room, seat: int, now: float = 0.0) -> list:
    field, career, salary, _ = CAREER_OF[seat]
    return room.handle(m(seat), CareerChoice(field, career, salary), now)


# --------------------------------------------------------------------------- lobby

def test_join_seats_in_the_lowest_free_seat_and_sends_the_avatars_to_the_joiner_only():
    room = seated(2)
    answer, out = room.add_player(m(3), 1.0)
    assert answer is JoinAnswer.PLAYER
    assert out == [Deliver((m(3),), ReadyResponse(ReadyAnswer.UPDATE, (3, 1, 0, 0, 0, 0)))]
    assert room.seat_of(m(3)).number == 3
    # Seat 1 leaves: the next joiner gets seat 1 back (lowest free), not seat 4.
    room.remove(m(1), 2.0, "bye")
    answer, _ = room.add_player(50, 3.0)
    assert answer is JoinAnswer.PLAYER and room.seat_of(50).number == 1


def test_a_joined_player_is_not_ready_and_not_visible_in_the_avatars():
    room = seated(1)
    room.add_player(m(2), 0.0)
    assert room.avatars() == (3, 0, 0, 0, 0, 0)
    assert not room.seat_of(m(2)).ready and room.seat_of(m(1)).ready


def test_accepted_redy_answers_the_sender_and_updates_every_other_member():
    room = seated(1)
    room.add_player(m(2), 0.0)
    out = room.handle(m(2), ReadyRequest("Jonas", 1), 1.0)
    assert out == [
        Deliver((m(2),), ReadyResponse(ReadyAnswer.ACCEPTED, (3, 1, 0, 0, 0, 0))),
        Deliver((HOST, m(1)), ReadyResponse(ReadyAnswer.UPDATE, (3, 1, 0, 0, 0, 0))),
    ]


def test_not_ready_players_get_avatar_updates_too():
    room = seated(1)
    room.add_player(m(2), 0.0)
    room.add_player(m(3), 0.0)
    out = room.handle(m(3), ReadyRequest("Ana", 2), 0.0)
    assert set(sends(out)[1].to) == {HOST, m(1), m(2)}


@pytest.mark.parametrize(
    "name, avatar, answer",
    [
        ("", 2, ReadyAnswer.EMPTY_NAME),
        ("", 9, ReadyAnswer.EMPTY_NAME),  # 2 is checked before the avatar
        ("A" * 13, 2, ReadyAnswer.NAME_TOO_LONG),
        ("A" * 200, 2, ReadyAnswer.NAME_TOO_LONG),
        ("A b" * 5, 2, ReadyAnswer.NAME_TOO_LONG),  # 3 before 4
        ("Jo nas", 2, ReadyAnswer.INVALID_CHARACTERS),
        ("Jonas!", 2, ReadyAnswer.INVALID_CHARACTERS),
        ("J\udce9r\udcf4me", 2, ReadyAnswer.INVALID_CHARACTERS),  # non-ASCII bytes from the wire
        ("Jonas_", 2, ReadyAnswer.INVALID_CHARACTERS),
        ("Jonas", 0, ReadyAnswer.INVALID_CHARACTERS),  # avatar outside 1-6
        ("Jonas", 7, ReadyAnswer.INVALID_CHARACTERS),
        ("Jonas", 255, ReadyAnswer.INVALID_CHARACTERS),
        ("maya", 2, ReadyAnswer.ALREADY_TAKEN),  # seat 1 is Maya: case-insensitive
        ("MAYA", 2, ReadyAnswer.ALREADY_TAKEN),
        ("Jonas", 3, ReadyAnswer.ALREADY_TAKEN),  # seat 1 has Green (3)
        ("shit", 2, ReadyAnswer.PROFANE),
        ("SHIT", 2, ReadyAnswer.PROFANE),
        ("sh1t", 2, ReadyAnswer.PROFANE),  # leetspeak
        ("b1tch", 2, ReadyAnswer.PROFANE),
        ("f4ck", 2, ReadyAnswer.PROFANE),
        ("sh1t", 3, ReadyAnswer.ALREADY_TAKEN),  # 5 before 6
        ("Jonas", 1, ReadyAnswer.ACCEPTED),
        ("A" * 12, 2, ReadyAnswer.ACCEPTED),
        ("[J0nas]", 2, ReadyAnswer.ACCEPTED),
        ("Scunthorpe", 2, ReadyAnswer.ACCEPTED),
    ],
)
def test_redy_answers(name, avatar, answer):
    room = seated(1)
    room.add_player(m(2), 0.0)
    before = room.avatars()
    out = room.handle(m(2), ReadyRequest(name, avatar), 1.0)
    assert sends(out)[0].to == (m(2),)
    assert sends(out)[0].packet.response == answer
    if answer is ReadyAnswer.ACCEPTED:
        assert room.seat_of(m(2)).ready
    else:
        # A refused REDY changes nothing and tells nobody else.
        assert out == [Deliver((m(2),), ReadyResponse(answer, before))]
        assert room.avatars() == before and not room.seat_of(m(2)).ready


def test_refused_redy_keeps_the_previous_name_and_avatar():
    room = seated(2)
    out = room.handle(m(2), ReadyRequest("Maya", 4), 1.0)
    assert out[0].packet == ReadyResponse(ReadyAnswer.ALREADY_TAKEN, (3, 1, 0, 0, 0, 0))
    seat = room.seat_of(m(2))
    assert (seat.name, seat.avatar) == ("Jonas", 1)


def test_re_redy_changes_name_and_avatar_and_frees_the_old_ones():
    room = seated(2)
    # Its own name and avatar are not "taken".
    out = room.handle(m(2), ReadyRequest("JONAS", 1), 1.0)
    assert out[0].packet.response == ReadyAnswer.ACCEPTED
    out = room.handle(m(2), ReadyRequest("Jo", 5), 2.0)
    assert out == [
        Deliver((m(2),), ReadyResponse(ReadyAnswer.ACCEPTED, (3, 5, 0, 0, 0, 0))),
        Deliver((HOST, m(1)), ReadyResponse(ReadyAnswer.UPDATE, (3, 5, 0, 0, 0, 0))),
    ]
    assert room.seat_of(m(2)).name == "Jo"
    # Avatar 1 and the name Jonas are free again.
    room.add_player(m(3), 3.0)
    out = room.handle(m(3), ReadyRequest("jonas", 1), 3.0)
    assert out[0].packet == ReadyResponse(ReadyAnswer.ACCEPTED, (3, 5, 1, 0, 0, 0))


def test_redy_from_the_host_is_not_allowed():
    room = seated(1)
    with pytest.raises(RuleError):
        room.handle(HOST, ReadyRequest("Host", 2), 0.0)
    assert room.avatars() == (3, 0, 0, 0, 0, 0)


def test_join_request_through_handle_is_not_allowed():
    room = seated(1)
    with pytest.raises(RuleError):
        room.handle(m(1), JoinRequest("ABCD"), 0.0)


def test_player_leaving_the_lobby_frees_seat_name_and_avatar():
    room = seated(3)
    out = room.remove(m(2), 1.0, "closed")
    assert out == [Deliver((HOST, m(1), m(3)), ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 2, 0, 0, 0)))]
    assert 2 not in room.seats
    room.add_player(50, 2.0)
    assert room.handle(50, ReadyRequest("Jonas", 1), 2.0)[0].packet.response == ReadyAnswer.ACCEPTED


def test_lobby_resync_is_the_avatars():
    room = seated(2)
    assert room.resync(HOST) == [Deliver((HOST,), ReadyResponse(ReadyAnswer.UPDATE, (3, 1, 0, 0, 0, 0)))]
    assert room.resync(m(1)) == [Deliver((m(1),), ReadyResponse(ReadyAnswer.UPDATE, (3, 1, 0, 0, 0, 0)))]


# --------------------------------------------------------------------------- STRT

def test_strt_needs_a_seated_player():
    room = new_room()
    with pytest.raises(RuleError):
        room.handle(HOST, StartGame(), 0.0)
    assert room.phase is Phase.LOBBY


def test_strt_refused_until_every_seated_player_is_ready():
    room = seated(2)
    room.add_player(m(3), 0.0)
    with pytest.raises(RuleError):
        room.handle(HOST, StartGame(), 0.0)
    assert room.phase is Phase.LOBBY
    room.handle(m(3), ReadyRequest("Ana", 2), 0.0)
    out = room.handle(HOST, StartGame(), 0.0)
    assert room.phase is Phase.GAME
    assert out == [Deliver((HOST, m(1), m(2), m(3)), GameUpdate(1, 0, (3,) + (0,) * 55))]


@pytest.mark.parametrize("seat", [1, 2])
def test_strt_from_a_player_is_not_allowed(seat):
    room = seated(2)
    with pytest.raises(RuleError):
        room.handle(m(seat), StartGame(), 0.0)
    assert room.phase is Phase.LOBBY


def test_strt_during_a_game_is_not_allowed():
    room = started(1)
    with pytest.raises(RuleError):
        room.handle(HOST, StartGame(), 1.0)


def test_start_game_turn_is_the_lowest_occupied_seat():
    room = seated(3)
    room.remove(m(1), 0.0, "left")
    out = room.handle(HOST, StartGame(), 0.0)
    assert out == [Deliver((HOST, m(2), m(3)), GameUpdate(2, 0, (2,) + (0,) * 55))]


@pytest.mark.parametrize("packet", [Spin(3), CardAnswer(1, -1), CareerChoice(1, "Creative Director", 132)])
def test_game_packets_in_the_lobby_are_not_allowed(packet):
    room = seated(1)
    with pytest.raises(RuleError):
        room.handle(m(1), packet, 0.0)


# --------------------------------------------------------------------------- GAME events

def test_plain_landing_is_one_game_with_the_turn_already_passed():
    room = started(2)
    out = room.handle(m(1), Spin(2), 1.0)
    occupancy = [0] * 56
    occupancy[0] = occupancy[2] = 1
    assert out == [Deliver((HOST, m(1), m(2)), GameUpdate(2, K.PLAIN, tuple(occupancy)))]


def test_lone_player_keeps_the_turn():
    room = started(1)
    out = room.handle(m(1), Spin(2), 1.0)
    assert [g.packet.turn for g in games(out)] == [1]
    out = room.handle(m(1), Spin(3), 1.0)  # 2 -> 5, plain
    assert games(out)[0].packet == GameUpdate(1, 0, (0,) * 5 + (1,) + (0,) * 50)


def test_career_point_goes_to_the_mover_and_host_and_waits_for_the_mover():
    room = started(3)
    out = room.handle(m(1), Spin(4), 1.0)  # space 4: Career Point
    [game] = games(out)
    assert game.to == (HOST, m(1), m(2), m(3))
    assert game.packet.turn == 1 and game.packet.space == K.CAREER_POINT
    assert game.packet.occupancy[4] == 1 and game.packet.occupancy[0] == 2
    [card] = cards(out)
    assert set(card.to) == {HOST, m(1)} and card.packet.kind == K.CAREER_POINT
    assert out.index(game) < out.index(card)  # the CARD follows the GAME that shows it
    number = card.packet.number
    option = rules.card(K.CAREER_POINT, number)
    # Others may not answer it; nobody may spin while it waits.
    snapshot = room.game.snapshot()
    for member, packet in [(m(2), CardAnswer(1, option.option_a)), (m(2), Spin(3)), (m(1), Spin(3)),
                           (HOST, CardAnswer(1, option.option_a)), (m(1), CardAnswer(2, 6)),
                           (m(1), CardAnswer(1, 99)), (m(1), CardAnswer(3, option.option_a % 256))]:  # unsigned unless a move
        with pytest.raises(RuleError):
            room.handle(member, packet, 2.0)
    assert room.game.snapshot() == snapshot
    out = room.handle(m(1), CardAnswer(1, option.option_b), 3.0)
    [game] = games(out)
    assert game.packet.turn == 2 and game.packet.space == 0
    assert game.packet.occupancy[4 + option.option_b] == 1
    assert cards(out) == []


def test_brand_crisis_goes_to_the_mover_and_host():
    room = started(2)
    out = advance(room, 1, K.BRAND_CRISIS)
    [game] = games(out)
    assert game.packet.turn == 1 and game.packet.space == K.BRAND_CRISIS
    [card] = cards(out)
    assert set(card.to) == {HOST, m(1)} and card.packet.kind == K.BRAND_CRISIS
    pos = room.game.positions[1]
    move = rules.card(K.BRAND_CRISIS, card.packet.number).move
    with pytest.raises(RuleError):  # not the card's move
        room.handle(m(1), CardAnswer(1, move + 1), 1.0)
    with pytest.raises(RuleError):  # the other player is not asked
        room.handle(m(2), CardAnswer(1, move), 1.0)
    out = room.handle(m(1), CardAnswer(1, move), 1.0)
    [game] = games(out)
    assert game.packet.turn == 2 and game.packet.space == 0
    assert room.game.positions[1] == pos + move
    assert game.packet.occupancy[pos + move] >= 1


@pytest.mark.parametrize("kind", [K.YOURE_THE_BOSS, K.DID_YOU_KNOW])
def test_group_cards_go_to_every_player_and_wait_for_every_seat(kind):
    room = started(3)
    out = advance(room, 2, kind)
    [game] = games(out)
    assert game.packet.turn == 2 and game.packet.space == kind
    [card] = cards(out)
    assert set(card.to) == {HOST, m(1), m(2), m(3)} and card.packet.kind == kind
    number = card.packet.number
    if kind == K.DID_YOU_KNOW:
        # The pile is the one of the space's colour.
        pile = rules.card(kind, number).field
        assert pile == DID_YOU_KNOW_FIELD[room.game.positions[2]]
        bad, decline = CardAnswer(2, pile % 6 + 1), CardAnswer(2, 0)
    else:
        offered = rules.card(kind, number).options
        bad = CardAnswer(2, next((f for f in Field if f not in offered), 0))
        decline = CardAnswer(2, offered[-1])
    with pytest.raises(RuleError):
        room.handle(m(3), bad, 1.0)
    with pytest.raises(RuleError):
        room.handle(m(3), CardAnswer(1, 0), 1.0)
    # Answers trickle in: no GAME until the last one.
    assert room.handle(m(3), decline, 1.0) == []
    with pytest.raises(RuleError):  # a second answer
        room.handle(m(3), decline, 1.0)
    assert room.handle(m(1), answer_for(kind, number), 1.0) == []
    out = room.handle(m(2), answer_for(kind, number), 1.0)
    [game] = games(out)
    assert game.packet.turn == 3 and game.packet.space == 0
    assert out == [Deliver((HOST, m(1), m(2), m(3)), game.packet)]


def test_every_event_is_exactly_one_game_and_consecutive_games_differ():
    room = started(3)
    last = None
    for _ in range(400):
        if room.phase is not Phase.GAME:
            break
        game = room.game
        if game.pending is not None:
            seat = min(game.pending.awaiting)
            out = room.handle(m(seat), answer_for(game.pending.kind, game.pending.number), 0.0)
        elif game.turn:
            out = room.handle(m(game.turn), Spin((len(game.positions) + game.positions[game.turn]) % 6 + 1), 0.0)
        else:
            seat = next(s for s in game.seats if game.owes(s) is not None)
            out = choose(room, seat)
        gs = games(out)
        assert len(gs) <= 1
        if gs:
            assert gs[0].packet != last
            last = gs[0].packet
    assert room.phase is Phase.LOBBY


def test_a_finisher_gets_its_finish_card_and_is_skipped():
    room = started(2)
    out = walk_plain(room, 1)
    [game] = games(out)
    assert game.packet.space == K.FINISH and game.packet.turn == 2
    assert game.packet.occupancy[55] == 1
    [card] = cards(out)
    assert card.to == (HOST, m(1)) and card.packet == CardDealt(K.FINISH, 1)
    assert out.index(game) < out.index(card)
    with pytest.raises(RuleError):
        room.handle(m(1), Spin(3), 1.0)
    # Seat 2 plays on alone: the turn stays with it.
    out = room.handle(m(2), Spin(plain_step(room.game.positions[2])), 1.0)
    assert games(out)[0].packet.turn == 2


def test_last_finisher_turn_zero_and_last_card():
    room = started(2)
    walk_plain(room, 1)
    out = walk_plain(room, 2, spins=_rest_path(room, 2))
    [game] = games(out)
    assert game.packet.turn == 0 and game.packet.space == K.FINISH
    assert game.packet.occupancy[55] == 2
    assert [c.packet for c in cards(out)] == [CardDealt(K.FINISH, 3)]
    assert cards(out)[0].to == (HOST, m(2))


def _rest_path(room: Room, seat: int) -> list[int]:
    """Plain steps from the seat's position to the finish."""
    pos, path = room.game.positions[seat], []
    while pos < FINISH_SPACE:
        d = plain_step(pos)
        path.append(d)
        pos = min(FINISH_SPACE, pos + d)
    return path


def test_middle_finisher_gets_card_two():
    room = started(3)
    walk_plain(room, 1)
    out = walk_plain(room, 2, spins=_rest_path(room, 2))
    assert [c.packet for c in cards(out)] == [CardDealt(K.FINISH, 2)]


def _seed_with_first_career_point_plus_two() -> int:
    for seed in range(200):
        room = started(1, seed=seed)
        out = room.handle(m(1), Spin(4), 0.0)
        number = cards(out)[0].packet.number
        if 2 in rules.card_answers(rules.card(K.CAREER_POINT, number)):
            return seed
    raise AssertionError("no seed found")


def test_finishing_by_a_card_move_finishes_in_the_resolution_game():
    seed = _seed_with_first_career_point_plus_two()
    room = started(2, seed=seed)
    # 0 -> 51 on plain spaces, then 2 onto 53 (the first Career Point it meets).
    out = walk_plain(room, 1, spins=PLAIN_PATH[:-1] + (2,))
    [card] = cards(out)
    assert card.packet.kind == K.CAREER_POINT and room.game.positions[1] == 53
    out = room.handle(m(1), CardAnswer(1, 2), 1.0)
    [game] = games(out)
    assert game.packet == GameUpdate(2, 0, game.packet.occupancy)
    assert game.packet.occupancy[55] == 1
    [card] = cards(out)
    assert card.packet == CardDealt(K.FINISH, 1) and card.to == (HOST, m(1))
    assert out.index(game) < out.index(card)


def test_resync_in_a_game_is_the_latest_game_to_that_member_only():
    room = started(2)
    out = room.handle(m(1), Spin(4), 1.0)
    latest = games(out)[0].packet
    for member in (HOST, m(1), m(2)):
        assert room.resync(member) == [Deliver((member,), latest)]


def test_host_and_out_of_turn_packets_change_nothing():
    room = started(2)
    snapshot = room.game.snapshot()
    for member, packet in [(HOST, Spin(3)), (m(2), Spin(3)), (m(1), Spin(0)), (m(1), Spin(7)),
                           (m(1), CardAnswer(1, -1)), (m(1), CardAnswer(2, 0)), (HOST, CardAnswer(2, 1)),
                           (m(1), CareerChoice(5, "Creative Director", 132)), (HOST, CareerChoice(5, "Creative Director", 132)),
                           (m(1), ReadyRequest("Maya", 3)), (HOST, ReadyRequest("Host", 2))]:
        with pytest.raises(RuleError):
            room.handle(member, packet, 1.0)
    assert room.game.snapshot() == snapshot


# --------------------------------------------------------------------------- careers, FINL, RSET

def test_crer_rules():
    room = started(2)
    walk_plain(room, 1)
    for bad in [CareerChoice(5, "Creative Director", 133),  # salary
                CareerChoice(3, "Creative Director", 132),  # not a Business Data Analytics career
                CareerChoice(0, "Creative Director", 132),
                CareerChoice(7, "Creative Director", 132),
                CareerChoice(5, "Creative  Director", 132)]:
        with pytest.raises(RuleError):
            room.handle(m(1), bad, 1.0)
    with pytest.raises(RuleError):  # seat 2 has not finished
        room.handle(m(2), CareerChoice(5, "Creative Director", 132), 1.0)
    assert choose(room, 1) == []  # accepted: no answer packet
    with pytest.raises(RuleError):  # once only
        choose(room, 1)


def _play_to_the_end(room: Room, seats, order) -> list:
    """Seats finish in ``order`` along plain paths; careers chosen; the outputs of the last action."""
    for seat in order:
        walk_plain(room, seat, spins=_rest_path(room, seat))
    out = []
    for seat in seats:
        out = choose(room, seat)
    return out


def test_finl_then_rset_then_back_to_the_lobby_with_everything_kept():
    room = started(3)
    out = _play_to_the_end(room, (1, 2, 3), order=(3, 1, 2))
    members = (HOST, m(1), m(2), m(3))
    final = FinalResults(
        places=(2, 3, 1, 0, 0, 0),
        careers=("Creative Director", "System Architect", "Brand/Product Manager", "", "", ""),
        salaries=(132, 105, 132, 0, 0, 0),
    )
    assert sends(out)[:2] == [Deliver(members, final), Deliver(members, Reset())]
    [finished] = [o for o in out if isinstance(o, StoreGame)]
    assert finished.room == "ABCD"
    assert {p.seat: p.place for p in finished.record.players} == {1: 2, 2: 3, 3: 1}
    assert room.phase is Phase.LOBBY and room.game is None
    assert room.avatars() == (3, 1, 2, 0, 0, 0)
    assert [room.seats[n].name for n in (1, 2, 3)] == ["Maya", "Jonas", "Ana"]
    assert all(room.seats[n].ready for n in (1, 2, 3))
    # Everyone gets the lobby snapshot after the RSET (PROTOCOL.md 9).
    assert sends(out)[-1] == Deliver(members, ReadyResponse(ReadyAnswer.UPDATE, (3, 1, 2, 0, 0, 0)))
    assert not any(isinstance(o, CloseMember) for o in out)
    # Ready for a new STRT at once.
    out = room.handle(HOST, StartGame(), 5.0)
    assert out == [Deliver(members, GameUpdate(1, 0, (3,) + (0,) * 55))]


def test_six_players_places_careers_and_salaries():
    room = started(6)
    order = (4, 2, 6, 1, 5, 3)
    out = _play_to_the_end(room, range(1, 7), order)
    [final] = [o.packet for o in sends(out) if isinstance(o.packet, FinalResults)]
    assert final.places == tuple(order.index(seat) + 1 for seat in range(1, 7))
    assert final.careers == tuple(CAREER_OF[s][3] for s in range(1, 7))
    assert final.salaries == tuple(CAREER_OF[s][2] for s in range(1, 7))


def test_one_player_game():
    room = started(1)
    out = walk_plain(room, 1)
    assert games(out)[0].packet.turn == 0
    assert [c.packet for c in cards(out)] == [CardDealt(K.FINISH, 1)]
    out = choose(room, 1)
    assert [o.packet for o in sends(out)][:2] == [
        FinalResults((1, 0, 0, 0, 0, 0), ("Creative Director", "", "", "", "", ""), (132, 0, 0, 0, 0, 0)),
        Reset(),
    ]


def test_career_may_be_chosen_before_the_others_finish():
    room = started(2)
    walk_plain(room, 1)
    assert choose(room, 1) == []
    out = _play_to_the_end(room, (2,), order=(2,))
    [final] = [o.packet for o in sends(out) if isinstance(o.packet, FinalResults)]
    assert final.careers[:2] == ("Creative Director", "System Architect")


# --------------------------------------------------------------------------- leaving, rejoining

def test_close_includes_rejoiners():
    room = started(2)
    room.remove(m(2), 1.0, "drop")
    room.add_player(50, 2.0)
    out = room.close("shutdown")
    assert out[0] == Deliver((HOST, m(1), 50), Reset())
    assert {o.member for o in out if isinstance(o, CloseMember)} == {HOST, m(1), 50}


def test_leave_mid_game_keeps_the_seat_and_rejoin_reclaims_it():
    room = started(2)
    room.handle(m(1), Spin(2), 0.0)  # seat 2's turn
    assert room.remove(m(2), 1.0, "drop") == []
    assert room.seats[2].member is None and room.avatars() == (3, 1, 0, 0, 0, 0)
    answer, out = room.add_player(50, 2.0)
    assert answer is JoinAnswer.PLAYER
    # The vacant seat's avatar is not shown to a rejoiner: it is half the proof.
    assert out == [Deliver((50,), ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0)))]
    # A rejoiner gets no GAME until it reclaims the seat, and may not play.
    assert 50 not in room.members()
    with pytest.raises(RuleError):
        room.handle(50, Spin(3), 2.0)
    assert room.resync(50) == [Deliver((50,), ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0)))]
    # Wrong name or wrong avatar: answered 5, and a strike (Refused carries the answer).
    for guess in (ReadyRequest("Maya", 3), ReadyRequest("Jonas", 2)):
        with pytest.raises(Refused) as refused:
            room.handle(50, guess, 2.0)
        assert refused.value.answer == [Deliver((50,), ReadyResponse(ReadyAnswer.ALREADY_TAKEN, (3, 0, 0, 0, 0, 0)))]
    out = room.handle(50, ReadyRequest("jOnAs", 1), 3.0)
    assert out == [
        Deliver((50,), ReadyResponse(ReadyAnswer.ACCEPTED, (3, 1, 0, 0, 0, 0))),
        Deliver((50,), room.last_game),
    ]
    assert room.seat_of(50).number == 2 and 50 in room.members()
    out = room.handle(50, Spin(2), 3.0)
    assert games(out)[0].to == (HOST, m(1), 50)


def test_rejoin_resends_the_card_the_seat_owes():
    room = started(2)
    out = advance(room, 1, K.DID_YOU_KNOW)
    card = cards(out)[0].packet
    room.remove(m(2), 1.0, "drop")
    room.add_player(50, 2.0)
    out = room.handle(50, ReadyRequest("Jonas", 1), 2.0)
    assert [o.packet for o in out][1:] == [room.last_game, card]


def test_seated_player_redy_during_the_game_is_not_allowed():
    room = started(2)
    with pytest.raises(RuleError):
        room.handle(m(1), ReadyRequest("Maya", 3), 1.0)


def test_join_answer_is_five_again_once_the_seat_is_reclaimed():
    room = started(2)
    room.remove(m(2), 1.0, "drop")
    room.add_player(50, 2.0)
    room.handle(50, ReadyRequest("Jonas", 1), 2.0)
    assert room.add_player(51, 3.0)[0] is JoinAnswer.GAME_STARTED


def test_every_player_leaving_mid_game_ends_the_room_without_finl():
    room = started(2)
    room.remove(m(1), 1.0, "drop")
    out = room.remove(m(2), 1.0, "drop")
    assert out == [Deliver((HOST,), Reset()), CloseMember(HOST, "every player left")]
    assert room.closed


def test_left_seat_is_in_finl_and_freed_after_rset():
    room = started(2, leave_grace=5.0)
    room.remove(m(2), 0.0, "drop")
    walk_plain(room, 1, spins=PLAIN_PATH[:1])  # seat 2's turn now
    outputs = []
    now = 0.0
    while room.phase is Phase.GAME:
        now += 1.0
        if room.game.owes(1) is not None:
            seat_game = room.game
            if seat_game.pending is not None:
                outputs = room.handle(m(1), answer_for(seat_game.pending.kind, seat_game.pending.number), now)
            elif seat_game.turn == 1:
                outputs = room.handle(m(1), Spin(plain_step(seat_game.positions[1])), now)
            else:
                outputs = choose(room, 1, now)
        else:
            outputs = room.tick(now + 100)
            now += 100
    final = next(o.packet for o in sends(outputs) if isinstance(o.packet, FinalResults))
    assert final.places[1] in (1, 2) and final.careers[1] != "" and final.salaries[1] > 0
    assert 2 not in room.seats and room.avatars() == (3, 0, 0, 0, 0, 0)


def test_rejoiner_who_never_reclaims_is_reset_and_closed_at_the_end():
    room = started(2)
    room.remove(m(2), 0.0, "drop")
    room.add_player(50, 0.0)
    now, outputs = 0.0, []
    while room.phase is Phase.GAME:
        now += 100
        game = room.game
        if game.owes(1) is Duty.SPIN:
            outputs = room.handle(m(1), Spin(plain_step(game.positions[1])), now)
        else:
            outputs = room.tick(now)
    assert Deliver((50,), Reset()) in outputs and any(isinstance(o, CloseMember) and o.member == 50 for o in outputs)
    assert got(outputs, 50) == [Reset()]  # no FINL: it never reclaimed a seat


# --------------------------------------------------------------------------- timers

def test_idle_player_is_played_after_the_turn_timeout():
    room = started(2, turn_timeout=60.0)
    assert room.next_deadline() == 60.0
    assert room.tick(59.9) == []
    out = room.tick(60.0)
    [game] = games(out)
    assert game.to == (HOST, m(1), m(2)) and room.game.positions[1] > 0


def test_no_turn_timeout_when_zero():
    room = started(2, turn_timeout=0.0)
    assert room.next_deadline() is None
    assert room.tick(10_000.0) == []


def test_absent_player_is_played_after_the_grace():
    room = started(2, leave_grace=5.0, turn_timeout=60.0)
    room.handle(m(1), Spin(2), 0.0)  # seat 2's turn
    room.remove(m(2), 1.0, "drop")
    assert room.next_deadline() == 6.0
    assert room.tick(5.9) == []
    out = room.tick(6.0)
    assert games(out) and room.game.positions[2] > 0


def test_absent_seat_is_played_at_once_once_its_grace_is_over():
    room = started(2, leave_grace=5.0, turn_timeout=60.0)
    room.remove(m(2), 0.0, "drop")  # seat 1's turn: seat 2 owes nothing yet
    room.tick(10.0)
    room.handle(m(1), Spin(2), 10.0)  # now seat 2 owes its spin; its grace ran out at 5
    assert room.next_deadline() <= 10.0
    assert games(room.tick(10.0))


def test_career_timeout_counts_from_the_finish_card():
    room = started(2, turn_timeout=60.0)
    walk_plain(room, 1)  # seat 1 finishes at t=0 and does not choose
    out = advance(room, 2, K.YOURE_THE_BOSS, now=30.0)
    card = cards(out)[0].packet
    room.handle(m(1), answer_for(card.kind, card.number), 31.0)
    room.handle(m(2), answer_for(card.kind, card.number), 31.0)
    room.tick(60.0)
    assert room.game is None or room.game.career_of(1) is not None


def test_lobby_idle_closes_the_room():
    room = seated(2, lobby_idle=100.0)
    room.handle(m(1), ReadyRequest("Maya", 3), 50.0)
    assert room.next_deadline() == 150.0
    assert room.tick(149.0) == []
    out = room.tick(150.0)
    assert out[0] == Deliver((HOST, m(1), m(2)), Reset())
    assert {o.member for o in out if isinstance(o, CloseMember)} == {HOST, m(1), m(2)}
    assert room.closed and room.tick(1e9) == [] and room.next_deadline() is None


def test_refused_packets_in_the_lobby_count_as_activity():
    room = seated(1, lobby_idle=100.0)
    with pytest.raises(RuleError):
        room.handle(m(1), StartGame(), 90.0)
    assert room.next_deadline() == 190.0


# --------------------------------------------------------------------------- server spins

def test_server_spins_ignore_the_clients_number_but_not_the_turn():
    room = seated(2)
    room.server_spins = True  # as the hub builds it with server_spins=True
    room.handle(HOST, StartGame(), 0.0)
    with pytest.raises(RuleError):
        room.handle(m(2), Spin(3), 0.0)
    out = room.handle(m(1), Spin(0), 0.0)  # any number: the server draws from the wedges
    [game] = games(out)
    assert 1 <= room.game.positions[1] <= 6 and game.packet.occupancy[room.game.positions[1]] == 1


def test_server_answers_a_group_card_for_a_seat_that_left():
    room = started(3, leave_grace=5.0, turn_timeout=0)
    out = advance(room, 1, K.YOURE_THE_BOSS, now=0.0)
    card = cards(out)[0].packet
    room.remove(m(3), 1.0, "drop")  # seat 3 leaves with the card unanswered
    room.handle(m(1), answer_for(card.kind, card.number), 2.0)
    room.handle(m(2), answer_for(card.kind, card.number), 2.0)
    assert room.game.pending is not None and room.game.pending.awaiting == {3}
    assert room.next_deadline() == 6.0  # the leave's grace, not a turn timeout (which is off)
    assert room.tick(5.9) == []
    out = room.tick(6.0)
    resolved = games(out)
    assert len(resolved) == 1  # exactly one GAME: the card's resolution
    assert resolved[0].packet.space == 0 and resolved[0].packet.turn == 2
    assert room.game.pending is None
    assert room.game.tokens_of(3) and sum(room.game.tokens_of(3)) == 1  # the server took a token for it
