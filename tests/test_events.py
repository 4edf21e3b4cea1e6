"""The core's events: room facts carry enough to redraw a room, effects come in the
order the shell relies on, and ignored packets are reported with their strike count.

The room facts are checked by folding them into ``RoomView`` (which never reads a
room) and comparing it with the room's own state after every step of whole games,
played by hand, by the server's auto-play, with leavers and rejoiners.
"""

from __future__ import annotations

import random

import pytest

from lgmp.game.engine import Duty
from lgmp.game.rules import CAREERS, Field, wire_salary
from lgmp.limits import Limits
from lgmp.rooms.events import (
    PLAY_FACTS,
    CloseMember,
    Deliver,
    GameOver,
    PacketIgnored,
    PlayerJoined,
    PlayerReady,
    ReadyChecked,
    RoomClosed,
    RoomOpened,
    StoreGame,
)
from lgmp.rooms.hub import Hub
from lgmp.rooms.view import RoomView, RoomViews
from lgmp.wire.packets import (
    CardAnswer,
    CareerChoice,
    FinalResults,
    JoinRequest,
    ReadyRequest,
    Reset,
    Spin,
    StartGame,
)

NAMES = ["", "Ada", "Bo", "Cy", "Di", "Ed", "Flo"]


class Table:
    """A hub with a host and ``players`` seated players, and a view fed only its events."""

    def __init__(self, players: int, *, seed: int, facts: bool = True, **limits):
        self.hub = Hub(seed=seed, limits=Limits(**limits), facts=facts)
        self.views = RoomViews()
        self.now = 0.0
        self.events: list = []
        self.host = self.connect()
        self.code = self.send(self.host, JoinRequest("HOST"))[-1].packet.room
        self.members = {}
        for seat in range(1, players + 1):
            member = self.connect()
            self.send(member, JoinRequest(self.code))
            self.send(member, ReadyRequest(NAMES[seat], seat))
            self.members[seat] = member

    @property
    def room(self):
        return self.hub.rooms.get(self.code)

    @property
    def view(self) -> RoomView | None:
        return self.views.rooms.get(self.code)

    def connect(self) -> int:
        return self.hub.connect(self.now)

    def _fold(self, events: list) -> list:
        self.events += events
        self.views.apply(events)
        return events

    def send(self, member: int, packet) -> list:
        return self._fold(self.hub.receive(member, packet, self.now))

    def leave(self, member: int) -> list:
        return self._fold(self.hub.disconnect(member, self.now, "peer closed"))

    def tick(self, now: float) -> list:
        self.now = now
        return self._fold(self.hub.tick(now))


def assert_view_matches(table: Table) -> None:
    """Everything a spectator shows, from the events alone, equals the room's own state."""
    room, view = table.room, table.view
    if room is None:
        assert view is None
        return
    assert view is not None
    assert sorted(view.seats) == sorted(room.seats)
    for number, seat in room.seats.items():
        shown = view.seats[number]
        assert (shown.name, shown.avatar, shown.present) == (seat.name, seat.avatar, seat.member is not None)
    assert view.phase == room.phase.value
    game = room.game
    if game is None:
        return
    assert view.turn == room.last_game.turn
    for number in room.seats:
        shown = view.seats[number]
        assert shown.space == game.positions[number], f"seat {number}"
        assert tuple(shown.tokens) == game.tokens_of(number)
        assert shown.place == game.place_of(number)
        career = game.career_of(number)
        assert shown.career == (career.name if career else None)
    pending = game.pending
    if pending is not None:
        assert view.card is not None and (view.card.kind, view.card.number) == (pending.kind, pending.number)
        assert view.card.awaiting == set(pending.awaiting)


def play_step(table: Table, rng: random.Random) -> None:
    """One move by someone who owes one: by hand, or by letting the server play it."""
    room = table.room
    game = room.game
    owing = [(n, game.owes(n)) for n in sorted(room.seats) if game.owes(n) is not None]
    seat, duty = rng.choice(owing)
    member = room.seats[seat].member
    if member is None or rng.random() < 0.2:
        table.tick(table.now + 100.0)  # past turn_timeout and leave_grace: the server plays
        return
    if duty is Duty.SPIN:
        table.send(member, Spin(rng.randint(1, 6)))
    elif duty is Duty.ANSWER:
        table.send(member, CardAnswer(*game.auto_answer(seat)))
    else:
        field = rng.choice(list(Field))
        career = rng.choice(CAREERS[field])
        table.send(member, CareerChoice(int(field), career.name, wire_salary(career)))


@pytest.mark.parametrize("seed", range(12))
def test_room_facts_redraw_the_room_through_whole_games(seed):
    rng = random.Random(seed)
    players = 1 + seed % 6
    table = Table(players, seed=seed, turn_timeout=60.0, leave_grace=5.0)
    assert_view_matches(table)
    for _game in range(2):
        table.send(table.host, StartGame())
        assert_view_matches(table)
        while table.room.game is not None:
            room = table.room
            present = [n for n, s in room.seats.items() if s.member is not None]
            absent = [n for n, s in room.seats.items() if s.member is None]
            if len(present) > 1 and rng.random() < 0.03:  # someone drops...
                table.leave(room.seats[rng.choice(present)].member)
            elif absent and rng.random() < 0.1:  # ...and comes back on a new connection
                seat = room.seats[rng.choice(absent)]
                member = table.connect()
                table.send(member, JoinRequest(table.code))
                table.send(member, ReadyRequest(seat.name, seat.avatar))
                table.members[seat.number] = member
            else:
                play_step(table, rng)
            assert_view_matches(table)
        assert table.view.games == _game + 1
        over = [e for e in table.events if isinstance(e, GameOver)][-1]
        assert table.view.standings == over.standings
        # Places are finish order: 1..n, each once.
        assert sorted(place for _, place, _, _ in over.standings) == list(range(1, len(over.standings) + 1))


@pytest.mark.parametrize("seed", range(6))
def test_a_hub_without_play_facts_sends_and_closes_exactly_the_same(seed):
    def play(facts: bool) -> list:
        rng = random.Random(seed)
        table = Table(1 + seed % 6, seed=seed, facts=facts, turn_timeout=60.0, leave_grace=5.0)
        for _game in range(2):
            table.send(table.host, StartGame())
            while table.room.game is not None:
                play_step(table, rng)
        return table.events

    with_facts, without = play(True), play(False)
    assert any(isinstance(e, PLAY_FACTS) for e in with_facts)
    assert not any(isinstance(e, PLAY_FACTS) for e in without)
    assert [e for e in with_facts if not isinstance(e, PLAY_FACTS)] == without


def test_store_game_comes_before_its_finl_and_holds_exactly_its_recipients():
    table = Table(2, seed=3)
    table.send(table.host, StartGame())
    while table.room.game is not None:
        table.tick(table.now + 100.0)
    stores = [i for i, e in enumerate(table.events) if isinstance(e, StoreGame)]
    finals = [i for i, e in enumerate(table.events) if isinstance(e, Deliver) and isinstance(e.packet, FinalResults)]
    assert len(stores) == len(finals) == 1
    store, final = table.events[stores[0]], table.events[finals[0]]
    assert stores[0] < finals[0]
    assert store.hold == final.to == (table.host, table.members[1], table.members[2])
    resets = [e for e in table.events[finals[0]:] if isinstance(e, Deliver) and isinstance(e.packet, Reset)]
    assert resets and resets[0].to == store.hold


def test_ignored_packets_are_reported_with_their_strike_count_and_the_last_one_closes():
    table = Table(1, seed=5, max_strikes=3)
    member = table.members[1]
    first = table.send(member, Spin(3))  # no game yet
    assert [e for e in first if isinstance(e, PacketIgnored)] == [
        PacketIgnored(member, table.code, "Spin from a seated player is not allowed in the lobby", 1)
    ]
    assert any(isinstance(e, Deliver) and e.to == (member,) for e in first)  # the resync
    second = table.send(member, StartGame())
    assert [e.strikes for e in second if isinstance(e, PacketIgnored)] == [2]
    third = table.send(member, StartGame())
    assert [e.strikes for e in third if isinstance(e, PacketIgnored)] == [3]
    assert CloseMember(member, "too many ignored packets (last: StartGame from a seated player is not allowed in the lobby)") in third


def test_a_packet_before_join_is_ignored_with_no_room():
    hub = Hub(seed=1)
    member = hub.connect(0.0)
    assert hub.receive(member, Spin(1), 0.0) == [PacketIgnored(member, None, "Spin before JOIN", 1)]


def test_lobby_facts_and_room_lifecycle():
    table = Table(2, seed=9)
    kinds = [type(e) for e in table.events if not isinstance(e, Deliver)]
    assert kinds == [RoomOpened, PlayerJoined, ReadyChecked, PlayerReady, PlayerJoined, ReadyChecked, PlayerReady]
    table.leave(table.host)
    assert isinstance(table.events[-1], RoomClosed) and table.events[-1].reason == "the host left"
    assert table.code not in table.views.rooms


def test_events_are_validated_when_built():
    with pytest.raises(ValueError, match="seat"):
        PlayerJoined("ABCD", 7, 1)
    with pytest.raises(ValueError, match="avatar"):
        PlayerReady("ABCD", 1, "Ada", 0)
    with pytest.raises(ValueError, match="strike"):
        PacketIgnored(1, None, "why", 0)


@pytest.mark.parametrize(
    "name,avatar,fact,v1_answer",
    [
        ("Cy", 3, (1, True), 1),
        ("Cy", 1, (1, False), 5),  # a good name with a taken avatar: two answers, v1.0 says 5
        ("ada", 3, (5, True), 5),  # the name is taken (any case), the avatar is free
        ("ada", 2, (5, False), 5),
        ("Cy", 0, (1, False), 4),  # an avatar outside 1-6: v1.0 says 4 (invalid)
        ("Cy", 7, (1, False), 4),
        ("", 1, (2, False), 2),
        ("C" * 13, 3, (3, True), 3),
        ("C y", 3, (4, True), 4),
        ("shit", 3, (6, True), 6),
        ("shit", 1, (6, False), 5),  # v1.0 checks "taken" before "profane"
    ],
)
def test_ready_checked_judges_name_and_avatar_each_on_its_own(name, avatar, fact, v1_answer):
    """Seat 1 is Ada with avatar 1, seat 2 Bo with avatar 2; seat 3 asks."""
    table = Table(2, seed=9)
    member = table.connect()
    table.send(member, JoinRequest(table.code))
    events = table.send(member, ReadyRequest(name, avatar))
    checked = [e for e in events if isinstance(e, ReadyChecked)]
    assert checked == [ReadyChecked(table.code, 3, member, *fact)]
    assert checked[0].granted == (fact == (1, True))
    answers = [e.packet.response for e in events if isinstance(e, Deliver) and e.to == (member,)]
    assert answers == [v1_answer]
    assert any(isinstance(e, PlayerReady) for e in events) == (v1_answer == 1)
    assert_view_matches(table)


def test_a_ready_player_may_keep_its_own_avatar_and_name():
    table = Table(1, seed=9)
    events = table.send(table.members[1], ReadyRequest("ADA", 1))
    assert [e for e in events if isinstance(e, ReadyChecked)] == [ReadyChecked(table.code, 1, table.members[1], 1, True)]
