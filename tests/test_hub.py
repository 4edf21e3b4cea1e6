"""``lgmp.rooms.hub.Hub`` on its own: JOIN routing, strikes, resyncs, flood control and timers,
all driven by passing ``now``; then a Hypothesis state machine over many members sending
arbitrary well-formed packets.
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.effects import Hub
from lgmp.limits import Limits
from lgmp.wire.packets import (
    CardAnswer,
    CareerChoice,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)
from lgmp.rooms.events import CloseMember, Deliver, StoreGame
from lgmp.rooms.room import Phase
from lgmp.game import rules
from lgmp.game.rules import (
    CARD_SPACES,
    CAREERS,
    SpaceKind,
    wire_salary,
)
from tests.strategies import client_packets

K = SpaceKind


# --------------------------------------------------------------------------- helpers

def sends(outputs) -> list[Deliver]:
    return [o for o in outputs if isinstance(o, Deliver)]


def got(outputs, member: int) -> list:
    return [o.packet for o in sends(outputs) if member in o.to]


def closed(outputs) -> set[int]:
    return {o.member for o in outputs if isinstance(o, CloseMember)}


def host_room(hub: Hub, now: float = 0.0) -> tuple[int, str]:
    host = hub.connect(now)
    [answer] = got(hub.receive(host, JoinRequest("HOST"), now), host)
    assert answer.response == JoinAnswer.HOST
    return host, answer.room


def join(hub: Hub, code: str, name: str | None = None, avatar: int = 0, now: float = 0.0) -> int:
    member = hub.connect(now)
    out = hub.receive(member, JoinRequest(code), now)
    assert got(out, member)[0] == JoinResponse(JoinAnswer.PLAYER)
    if name is not None:
        out = hub.receive(member, ReadyRequest(name, avatar), now)
        assert got(out, member)[0].response == ReadyAnswer.ACCEPTED
    return member


def game_room(hub: Hub, players: int = 2, now: float = 0.0):
    host, code = host_room(hub, now)
    members = [join(hub, code, f"P{i}", i, now) for i in range(1, players + 1)]
    out = hub.receive(host, StartGame(), now)
    assert isinstance(got(out, host)[0], GameUpdate)
    return host, code, members


# --------------------------------------------------------------------------- JOIN

def test_join_host_creates_a_room_with_a_fresh_code():
    hub = Hub(seed=1)
    codes = set()
    for _ in range(30):
        member = hub.connect(0.0)
        out = hub.receive(member, JoinRequest("HOST"), 0.0)
        [send] = sends(out)
        assert send.to == (member,)
        code = send.packet.room
        assert send.packet.response == JoinAnswer.HOST
        assert len(code) == 4 and set(code) <= set(string.ascii_uppercase) and code != "HOST"
        codes.add(code)
    assert len(codes) == 30 and set(hub.rooms) == codes


@pytest.mark.parametrize("spelling", ["host", "Host", "hOsT"])
def test_join_host_is_case_insensitive(spelling):
    hub = Hub(seed=1)
    member = hub.connect(0.0)
    [answer] = got(hub.receive(member, JoinRequest(spelling), 0.0), member)
    assert answer.response == JoinAnswer.HOST and answer.room in hub.rooms


def test_join_code_is_case_insensitive_and_sends_the_avatars():
    hub = Hub(seed=1)
    host, code = host_room(hub)
    join(hub, code, "Maya", 3)
    member = hub.connect(0.0)
    out = hub.receive(member, JoinRequest(code.lower()), 0.0)
    assert out == [
        Deliver((member,), JoinResponse(JoinAnswer.PLAYER)),
        Deliver((member,), ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0))),
    ]
    assert hub.room_of(member).code == code


@pytest.mark.parametrize("code", ["ZZZZ", "12ab", "AB C", "\udcc3\udca9AB", "HOS!"])
def test_join_unknown_or_malformed_code_is_4_and_a_strike(code):
    # A refused JOIN is answered, and (since codes can be enumerated) it is a strike.
    hub = Hub(seed=1, limits=Limits(max_strikes=5))
    host_room(hub)
    member = hub.connect(0.0)
    for _ in range(4):
        out = hub.receive(member, JoinRequest(code), 0.0)
        assert out == [Deliver((member,), JoinResponse(JoinAnswer.ROOM_NOT_FOUND))]
    assert hub.room_of(member) is None
    # The connection is still usable...
    other = hub.connect(0.0)
    for _ in range(4):
        hub.receive(other, JoinRequest(code), 0.0)
    assert got(hub.receive(other, JoinRequest("HOST"), 0.0), other)[0].response == JoinAnswer.HOST
    # ...until its fifth strike: answered, then closed.
    out = hub.receive(member, JoinRequest(code), 0.0)
    assert out[0] == Deliver((member,), JoinResponse(JoinAnswer.ROOM_NOT_FOUND)) and member in closed(out)


def test_join_room_limit_is_3():
    hub = Hub(seed=1, limits=Limits(max_rooms=2))
    host_room(hub)
    host_room(hub)
    member = hub.connect(0.0)
    assert hub.receive(member, JoinRequest("HOST"), 0.0) == [Deliver((member,), JoinResponse(JoinAnswer.LOBBY_FULL))]
    assert len(hub.rooms) == 2
    # A room ending frees a slot.
    first_host = next(iter(hub.rooms.values())).host
    hub.disconnect(first_host, 1.0, "bye")
    assert got(hub.receive(member, JoinRequest("HOST"), 1.0), member)[0].response == JoinAnswer.HOST


def test_join_full_room_is_3_and_started_room_is_5():
    hub = Hub(seed=1)
    _, code = host_room(hub)
    for i in range(1, 7):
        join(hub, code, f"P{i}", i)
    member = hub.connect(0.0)
    assert got(hub.receive(member, JoinRequest(code), 0.0), member) == [JoinResponse(JoinAnswer.LOBBY_FULL)]
    host2, code2, _ = game_room(hub)
    assert got(hub.receive(member, JoinRequest(code2), 0.0), member) == [JoinResponse(JoinAnswer.GAME_STARTED)]


def test_second_join_is_a_strike_with_a_resync():
    hub = Hub(seed=1)
    host, code = host_room(hub)
    member = join(hub, code)
    out = hub.receive(member, JoinRequest(code), 0.0)
    assert out == [Deliver((member,), ReadyResponse(ReadyAnswer.UPDATE, (0,) * 6))]
    out = hub.receive(host, JoinRequest("HOST"), 0.0)
    assert out == [Deliver((host,), ReadyResponse(ReadyAnswer.UPDATE, (0,) * 6))]
    assert len(hub.rooms) == 1


@pytest.mark.parametrize("packet", [StartGame(), Spin(3), ReadyRequest("Maya", 3), CardAnswer(1, -1),
                                    CareerChoice(1, "Creative Director", 132)])
def test_packets_before_join_are_ignored_silently(packet):
    hub = Hub(seed=1)
    member = hub.connect(0.0)
    assert hub.receive(member, packet, 0.0) == []


# --------------------------------------------------------------------------- strikes and resync

def test_resync_in_a_game_is_the_latest_game():
    hub = Hub(seed=1)
    host, code, (p1, p2) = game_room(hub)
    out = hub.receive(p1, Spin(2), 0.0)
    latest = got(out, host)[0]
    for member, packet in [(p1, Spin(3)), (host, Spin(3)), (p2, CardAnswer(1, -1)), (host, StartGame()),
                           (p2, ReadyRequest("P2", 2)), (p1, JoinRequest(code))]:
        assert hub.receive(member, packet, 0.0) == [Deliver((member,), latest)]


def test_resync_for_a_rejoiner_is_the_avatars_with_the_vacant_seats_hidden():
    hub = Hub(seed=1)
    host, code, (p1, p2) = game_room(hub)
    hub.disconnect(p2, 0.0, "drop")
    rejoiner = hub.connect(0.0)
    out = hub.receive(rejoiner, JoinRequest(code), 0.0)
    # Seat 2's avatar is half of what proves who may reclaim it: a rejoiner sees 0.
    assert out == [Deliver((rejoiner,), JoinResponse(JoinAnswer.PLAYER)),
                   Deliver((rejoiner,), ReadyResponse(ReadyAnswer.UPDATE, (1, 0, 0, 0, 0, 0)))]
    assert hub.receive(rejoiner, Spin(3), 0.0) == [Deliver((rejoiner,), ReadyResponse(ReadyAnswer.UPDATE, (1, 0, 0, 0, 0, 0)))]
    out = hub.receive(rejoiner, ReadyRequest("p2", 2), 0.0)
    assert [type(p) for p in got(out, rejoiner)] == [ReadyResponse, GameUpdate]


def test_strikes_close_only_the_sender():
    hub = Hub(seed=1, limits=Limits(max_strikes=10, strike_window=60.0))
    host, code = host_room(hub)
    p1 = join(hub, code, "Maya", 3)
    p2 = join(hub, code, "Jonas", 1)
    outputs = []
    for i in range(11):
        outputs = hub.receive(p2, StartGame(), float(i))
        if p2 in closed(outputs):
            break
    assert p2 in closed(outputs)
    # The leave is seen by the rest of the room.
    assert Deliver((host, p1), ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0))) in outputs
    assert hub.receive(p2, StartGame(), 20.0) == []  # detached
    assert hub.disconnect(p2, 20.0, "closed") == []
    assert hub.room_of(p1).code == code


def test_strikes_older_than_the_window_are_forgotten():
    hub = Hub(seed=1, limits=Limits(max_strikes=10, strike_window=60.0))
    host, code = host_room(hub)
    member = join(hub, code, "Maya", 3)
    for now in [0.0] * 9 + [60.0] * 9:
        out = hub.receive(member, StartGame(), now)
        assert member not in closed(out)
        assert out == [Deliver((member,), ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0)))]


def test_redy_refusals_are_not_strikes():
    hub = Hub(seed=1, limits=Limits(max_strikes=2))
    host, code = host_room(hub)
    member = join(hub, code)
    for name in ["", "x" * 13, "a b", "shit", "", ""]:
        out = hub.receive(member, ReadyRequest(name, 2), 0.0)
        assert member not in closed(out)


# --------------------------------------------------------------------------- flood

def test_flood_bucket_allows_the_burst_then_closes():
    hub = Hub(seed=1, limits=Limits(packet_burst=50, packet_rate=20.0))
    host, code = host_room(hub)
    member = join(hub, code)  # a connection's first JOIN is invited: it took no token
    for _ in range(50):
        assert member not in closed(hub.receive(member, ReadyRequest("", 1), 0.0))  # answered 2, no strike
    out = hub.receive(member, ReadyRequest("", 1), 0.0)
    assert out[-1] == CloseMember(member, "packet flood") and got(out, member) == []
    assert code in hub.rooms and hub.room_of(host).code == code


def test_flood_bucket_refills_at_the_rate():
    hub = Hub(seed=1, limits=Limits(packet_burst=50, packet_rate=20.0))
    host, code = host_room(hub)
    member = join(hub, code)
    for _ in range(50):
        hub.receive(member, ReadyRequest("", 1), 0.0)
    # 20 packets/s: one more every 0.05 s, sustained.
    for i in range(1, 41):
        assert member not in closed(hub.receive(member, ReadyRequest("", 1), i * 0.05 + 1e-9))
    assert member in closed(hub.receive(member, ReadyRequest("", 1), 40 * 0.05 + 1e-9))


def test_flood_closes_before_join_too():
    hub = Hub(seed=1, limits=Limits(packet_burst=3, packet_rate=1.0))
    member = hub.connect(0.0)
    for _ in range(4):  # the first JOIN is invited; the next three take the burst
        hub.receive(member, JoinRequest("ZZZZ"), 0.0)
    assert hub.receive(member, JoinRequest("ZZZZ"), 0.0) == [CloseMember(member, "packet flood")]
    assert hub.connection_count == 0


# --------------------------------------------------------------------------- timers

def test_closed_rooms_leave_no_timers_behind():
    # Each lobby would wait lobby_idle (an hour here) before its timer entry fired;
    # closing the room (its host leaves) forgets the entry at once, and the heap
    # drops such dead entries before they are a quarter of it. A JOIN deadline is
    # forgotten once its connection joined.
    # (empty_room_timeout off: the live lobby's deadline is then its idle hour)
    hub = Hub(seed=1, limits=Limits(lobby_idle=3600.0, join_timeout=10.0, empty_room_timeout=0.0))
    host_room(hub)
    for _ in range(400):
        member, code = host_room(hub)
        hub.disconnect(member, 1.0, "gone")
        assert code not in hub.rooms
        assert all(kind != "room" or key in hub.rooms for kind, key in hub._scheduled)
        live = sum(1 for when, _, kind, key in hub._timers if hub._scheduled.get((kind, key)) == when)
        assert (len(hub._timers) - live) * 4 < len(hub._timers) + 4
    # Without the drops: one entry per room ever opened, and one per host's JOIN window.
    assert len(hub._timers) < 401 // 2
    assert hub.next_deadline() == 3600.0  # the live lobby's hour: the joined hosts have no JOIN deadline
    assert len(hub._scheduled) == 1


def test_join_timeout_closes_a_silent_connection():
    hub = Hub(seed=1, limits=Limits(join_timeout=10.0))
    member = hub.connect(5.0)
    assert hub.next_deadline() == 15.0
    assert hub.tick(14.9) == []
    assert hub.tick(15.0) == [CloseMember(member, "no JOIN in time")]
    assert hub.connection_count == 0


def test_join_timeout_does_not_touch_joined_connections():
    hub = Hub(seed=1, limits=Limits(join_timeout=10.0))
    host, code = host_room(hub)
    assert hub.tick(100.0) == []
    assert hub.connection_count == 1


def test_turn_timeout_through_the_hub():
    hub = Hub(seed=1, limits=Limits(turn_timeout=60.0))
    host, code, (p1, p2) = game_room(hub, now=0.0)
    assert all(not isinstance(p, GameUpdate) for p in got(hub.tick(59.9), host))
    out = hub.tick(60.0)
    [game] = got(out, host)
    assert game.turn == 2 or game.space != 0


def test_lobby_idle_through_the_hub_frees_the_code():
    hub = Hub(seed=1, limits=Limits(lobby_idle=100.0))
    host, code = host_room(hub)
    p1 = join(hub, code, "Maya", 3, now=10.0)
    out = hub.tick(110.0)
    assert got(out, host) == [Reset()] and got(out, p1) == [Reset()]
    assert closed(out) == {host, p1}
    assert code not in hub.rooms and hub.connection_count == 0


def test_host_leaving_ends_the_room():
    hub = Hub(seed=1)
    host, code = host_room(hub)
    p1 = join(hub, code, "Maya", 3)
    out = hub.disconnect(host, 1.0, "closed")
    assert out == [Deliver((p1,), Reset()), CloseMember(p1, "the host left")]
    assert code not in hub.rooms and hub.connection_count == 0
    # A closed member's later disconnect is ignored.
    assert hub.disconnect(p1, 2.0, "closed") == []


def test_shutdown_resets_everyone():
    hub = Hub(seed=1)
    host, code = host_room(hub)
    p1 = join(hub, code, "Maya", 3)
    lonely = hub.connect(0.0)
    out = hub.shutdown()
    assert got(out, host) == [Reset()] and got(out, p1) == [Reset()] and got(out, lonely) == []
    assert closed(out) == {host, p1, lonely}
    assert hub.rooms == {} and hub.connection_count == 0


def test_two_rooms_do_not_share_packets():
    hub = Hub(seed=1)
    h1, c1 = host_room(hub)
    h2, c2 = host_room(hub)
    a = join(hub, c1, "Maya", 3)
    out = hub.receive(join(hub, c2), ReadyRequest("Maya", 3), 0.0)  # same name and avatar: other room
    assert got(out, h2) == [ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0))]
    assert got(out, h1) == [] and got(out, a) == []


# --------------------------------------------------------------------------- state machine

LIMITS = Limits(turn_timeout=5.0, leave_grace=1.0, join_timeout=10.0, lobby_idle=200.0, max_rooms=3,
                packet_burst=50, packet_rate=20.0, max_strikes=10, strike_window=60.0)
CARD_KINDS = CARD_SPACES

names = st.sampled_from(["Maya", "maya", "Jonas", "Ana", "Ben", "", "x" * 13, "sh1t", "a b", "[Q]"])
plausible_packets = st.one_of(
    st.builds(ReadyRequest, names, st.integers(0, 7)),
    st.just(StartGame()),
    st.builds(Spin, st.integers(0, 7)),
    st.builds(lambda action, value: CardAnswer(action, value if action == 1 else value % 256),  # unsigned unless a move
              st.sampled_from([1, 2]), st.integers(-3, 6)),
    st.builds(CareerChoice, st.integers(1, 6), st.sampled_from(["Creative Director", "system architect", "Nope"]),
              st.sampled_from([132, 105, 0])),
)


def right_move(room, seat: int):
    """What a well-behaved client of ``seat`` would send now, or None."""
    game = room.game
    pending = game.pending
    if pending is not None:
        if seat not in pending.awaiting:
            return None
        dealt = rules.card(pending.kind, pending.number)
        values = rules.card_answers(dealt)
        # The card's last choice (Career Point B, You're the Boss's last field); a Did You Know token is taken.
        return CardAnswer(dealt.action, values[0] if pending.kind == K.DID_YOU_KNOW else values[-1])
    if game.turn == seat:
        return Spin(6)
    if game.place_of(seat) is not None and game.career_of(seat) is None:
        career = CAREERS[6][4]
        return CareerChoice(6, career.name, wire_salary(career))
    return None


class HubMachine(RuleBasedStateMachine):
    """Members connect, send packets, disconnect; time passes. The hub must stay sane."""

    def __init__(self):
        super().__init__()
        self.hub = Hub(limits=LIMITS, seed=3)
        self.now = 0.0
        self.open: list[int] = []  # connections the client side still has open
        self.gone: set[int] = set()  # closed by either side: must never be sent anything again
        self.finals = 0

    # -- carrying out and checking outputs ---------------------------------------

    def membership(self) -> dict[int, str]:
        where = {}
        for code, room in self.hub.rooms.items():
            for member in (room.host, *(s.member for s in room.seats.values() if s.member is not None), *room.rejoiners):
                assert member not in where, f"member {member} is in two rooms"
                where[member] = code
        return where

    def do(self, call, sender: int | None = None) -> None:
        """Run one hub call and check its outputs against the state before and after it."""
        before = self.membership()
        connected = set(self.open)
        outputs = call()
        after = self.membership()
        for out in outputs:
            assert isinstance(out, (Deliver, CloseMember, StoreGame)), out
            if isinstance(out, Deliver):
                assert out.to, "a Deliver to nobody"
                assert len(set(out.to)) == len(out.to), f"duplicate recipients {out.to}"
                for member in out.to:
                    assert member not in self.gone, f"{out.packet} sent to closed member {member}"
                    assert member in connected, f"{out.packet} sent to unknown member {member}"
                rooms = [{before.get(m), after.get(m)} - {None} for m in out.to]
                if out.to != (sender,):
                    common = set.intersection(*rooms)
                    assert common, f"{out.packet} crosses rooms: {out.to} {rooms}"
                if isinstance(out.packet, FinalResults):
                    self.finals += 1
            elif isinstance(out, CloseMember):
                assert out.member in connected and out.member not in self.gone, f"double close {out}"
                self.gone.add(out.member)
        for member in list(self.open):
            if member in self.gone:
                self.open.remove(member)
                # The shell then sees the socket end: the hub must ignore it.
                assert self.hub.disconnect(member, self.now, "closed by server") == []

    # -- rules ---------------------------------------------------------------------

    @initialize(players=st.integers(0, 3), start=st.booleans())
    def a_room_to_begin_with(self, players, start):
        """Most runs begin with a room whose players are ready (and maybe started)."""
        host = self.hub.connect(self.now)
        self.open.append(host)
        self.do(lambda: self.hub.receive(host, JoinRequest("HOST"), self.now), host)
        code = self.hub.room_of(host).code
        for i in range(players):
            member = self.hub.connect(self.now)
            self.open.append(member)
            self.do(lambda: self.hub.receive(member, JoinRequest(code), self.now), member)
            self.do(lambda: self.hub.receive(member, ReadyRequest(f"R{i}", i + 1), self.now), member)
        if start and players:
            self.do(lambda: self.hub.receive(host, StartGame(), self.now), host)

    @rule()
    def connect(self):
        if len(self.open) < 14:
            self.open.append(self.hub.connect(self.now))

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def host(self, data):
        member = data.draw(st.sampled_from(self.open))
        spelling = data.draw(st.sampled_from(["HOST", "host"]))
        self.do(lambda: self.hub.receive(member, JoinRequest(spelling), self.now), member)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def join_room(self, data):
        member = data.draw(st.sampled_from(self.open))
        codes = sorted(self.hub.rooms) + ["ZZZZ"]
        code = data.draw(st.sampled_from(codes))
        if data.draw(st.booleans()):
            code = code.lower()
        self.do(lambda: self.hub.receive(member, JoinRequest(code), self.now), member)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), packet=plausible_packets)
    def send_plausible(self, data, packet):
        member = data.draw(st.sampled_from(self.open))
        self.do(lambda: self.hub.receive(member, packet, self.now), member)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), packet=client_packets)
    def send_arbitrary(self, data, packet):
        member = data.draw(st.sampled_from(self.open))
        self.do(lambda: self.hub.receive(member, packet, self.now), member)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def ready_up(self, data):
        """A seated, not-ready player takes a free avatar and a fresh name."""
        member = data.draw(st.sampled_from(self.open))
        room = self.hub.room_of(member)
        if room is None or room.phase is not Phase.LOBBY or room.seat_of(member) is None:
            return
        free = [a for a in range(1, 7) if a not in room.avatars()] or [1]
        self.do(lambda: self.hub.receive(member, ReadyRequest(f"P{member}", free[0]), self.now), member)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def reclaim(self, data):
        """A rejoiner asks for a vacant seat back with its name (any case) and avatar."""
        member = data.draw(st.sampled_from(self.open))
        room = self.hub.room_of(member)
        if room is None or member not in room.rejoiners:
            return
        vacant = [s for s in room.seats.values() if s.member is None]
        if not vacant:
            return
        seat = data.draw(st.sampled_from(vacant))
        self.do(lambda: self.hub.receive(member, ReadyRequest(seat.name.upper(), seat.avatar), self.now), member)
        if member in self.open:
            assert room.seat_of(member) is seat

    @rule(data=st.data())
    def drop_and_come_back(self, data):
        """A player in a game drops; a new connection JOINs the code and reclaims the seat."""
        rooms = [r for r in self.hub.rooms.values() if r.phase is Phase.GAME
                 and sum(s.member is not None for s in r.seats.values()) >= 2]
        if not rooms or len(self.open) >= 14:
            return
        room = data.draw(st.sampled_from(rooms))
        seat = data.draw(st.sampled_from([s for s in room.seats.values() if s.member is not None]))
        self.open.remove(seat.member)
        self.gone.add(seat.member)
        self.do(lambda: self.hub.disconnect(seat.member, self.now, "peer closed"), seat.member)
        member = self.hub.connect(self.now)
        self.open.append(member)
        self.do(lambda: self.hub.receive(member, JoinRequest(room.code.lower()), self.now), member)
        assert member in room.rejoiners
        self.do(lambda: self.hub.receive(member, ReadyRequest(seat.name.upper(), seat.avatar), self.now), member)
        assert room.seat_of(member) is seat and member not in room.rejoiners  # others may still be rejoining

    @rule()
    def start_every_room(self):
        for room in list(self.hub.rooms.values()):
            if room.phase is Phase.LOBBY and room.host in self.open:
                self.do(lambda: self.hub.receive(room.host, StartGame(), self.now), room.host)

    @rule(steps=st.integers(1, 150))
    def play_well(self, steps):
        """Every seat does what it owes, for a while: games reach FINL."""
        for _ in range(steps):
            moved = False
            for room in list(self.hub.rooms.values()):
                if room.phase is not Phase.GAME or room.closed:
                    continue
                for seat in list(room.seats.values()):
                    if seat.member is None or seat.member not in self.open:
                        continue
                    packet = right_move(room, seat.number)
                    if packet is not None:
                        self.now += 0.06  # keep within the flood bucket
                        self.do(lambda: self.hub.receive(seat.member, packet, self.now), seat.member)
                        moved = True
                        break
            if not moved:
                return

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def disconnect(self, data):
        member = data.draw(st.sampled_from(self.open))
        self.open.remove(member)
        self.gone.add(member)
        self.do(lambda: self.hub.disconnect(member, self.now, "peer closed"), member)

    @rule(dt=st.sampled_from([0.0, 0.01, 0.5, 1.0, 5.0, 11.0, 70.0, 250.0]))
    def tick(self, dt):
        self.now += dt
        self.do(lambda: self.hub.tick(self.now))

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def rooms_are_sane(self):
        hub = self.hub
        assert hub.connection_count == len(self.open)
        where = self.membership()  # nobody in two rooms
        for member in self.open:
            room = hub.room_of(member)
            assert (room.code if room else None) == where.get(member), f"hub and room disagree on {member}"
        for code, room in hub.rooms.items():
            assert room.code == code and not room.closed
            assert room.host in self.open, "a room without its host"
            assert hub.room_of(room.host) is room
            assert room.seat_of(room.host) is None
            ready = [s for s in room.seats.values() if s.ready]
            avatars = [s.avatar for s in ready]
            assert len(set(avatars)) == len(avatars), f"shared avatar {avatars}"
            names_ = [s.name.casefold() for s in ready]
            assert len(set(names_)) == len(names_), f"shared name {names_}"
            assert set(room.seats) <= set(range(1, 7))
            for seat in room.seats.values():
                assert seat.number in room.seats
                if seat.member is not None:
                    assert seat.member in self.open and hub.room_of(seat.member) is room
            if room.phase is Phase.GAME:
                assert all(s.ready for s in room.seats.values())
                assert any(s.member is not None for s in room.seats.values())
            else:
                assert not room.rejoiners and room.game is None
        if hub.next_deadline() is not None:
            assert hub.next_deadline() >= 0


HubMachine.TestCase.settings = settings(max_examples=int(os.environ.get("LGMP_HUB_EXAMPLES", "100")), stateful_step_count=60, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
TestHubMachine = HubMachine.TestCase


class _Rigged:
    """An rng whose letter choices spell the given words, one after another."""

    def __init__(self, *words):
        self.letters = list("".join(words))

    def choice(self, seq):
        return self.letters.pop(0)


def test_room_codes_skip_host_offensive_words_and_codes_in_use():
    from lgmp.rooms.names import new_room_code

    assert new_room_code(_Rigged("HOST", "SHIT", "DICK", "ABCD", "QZMB"), {"ABCD": None}) == "QZMB"


def test_any_packet_from_a_member_keeps_the_lobby_alive():
    hub = Hub(seed=1, limits=Limits(lobby_idle=100.0))
    host, code = host_room(hub)
    hub.receive(host, JoinRequest("HOST"), 90.0)  # ignored, but it is a packet from a member
    hub.tick(100.0)
    assert code in hub.rooms
