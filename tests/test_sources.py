"""Per-source limits, admission, invited packets and the seat-reclaim policy in the pure core:
``lgmp.rooms.sources`` and the hub and room paths that use it, driven by passing ``now``.
(Over real sockets from several loopback addresses: tests/test_abuse.py.)"""

from __future__ import annotations

import ipaddress
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgmp.game.engine import Duty
from lgmp.limits import Limits
from lgmp.rooms.events import CloseMember, Deliver, PacketIgnored
from lgmp.rooms.room import Phase
from lgmp.rooms.sources import Sources, source_key
from lgmp.wire.packets import (
    CardAnswer,
    CareerChoice,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Spin,
    StartGame,
)
from tests.effects import Hub
from lgmp.rooms.hub import Hub as RawHub
from tests.test_hub import closed, got, right_move

A, B, C = "192.0.2.1", "192.0.2.2", "192.0.2.3"


def host_from(hub, source, now=0.0):
    member = hub.connect(now, source=source)
    [answer] = got(hub.receive(member, JoinRequest("HOST"), now), member)
    return member, answer


def join_from(hub, code, source, name=None, avatar=0, now=0.0):
    member = hub.connect(now, source=source)
    out = hub.receive(member, JoinRequest(code), now)
    assert got(out, member)[0] == JoinResponse(JoinAnswer.PLAYER), out
    if name is not None:
        assert got(hub.receive(member, ReadyRequest(name, avatar), now), member)[0].response == ReadyAnswer.ACCEPTED
    return member


# --------------------------------------------------------------------------- source keys


@pytest.mark.parametrize("host, key", [
    ("127.0.0.2", "127.0.0.2"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client on a dual-stack socket
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one subscriber's /64 is one source
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not-an-address", "not-an-address"),
])
def test_source_key(host, key):
    assert source_key(host) == key


@given(st.ip_addresses(v=4).map(str) | st.text(alphabet="0123456789.%", max_size=16))
def test_an_ipv4_source_key_is_what_parsing_the_address_gives(host):
    # source_key skips parsing for strings without a colon: the answers stay the same.
    try:
        parsed = str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        parsed = host
    assert source_key(host) == parsed


# --------------------------------------------------------------------------- Sources on its own


def test_sources_count_and_forget():
    sources = Sources(Limits(max_connections_per_source=2, max_unjoined_per_source=1, max_rooms_per_source=1))
    sources.opened(A)
    assert sources.refusal(A) is not None  # one in no room already
    sources.joined(A, hosting=True)
    assert sources.refusal(A) is None and not sources.may_host(A) and sources.may_host(B)
    sources.opened(A)
    assert "connections from this address" in sources.refusal(A)
    assert sources.holds(A) == (2, 1, 1)
    assert sources.ended(A, joined=True, hosting=True, now=1.0) is None
    assert sources.ended(A, joined=False, hosting=False, now=1.0) is None
    assert len(sources) == 0 and sources.holds(A) == (0, 0, 0)
    # An unknown source is never counted nor limited.
    for _ in range(10):
        sources.opened(None)
    assert sources.refusal(None) is None and len(sources) == 0


def test_failed_joins_outlive_the_connection_for_a_minute():
    sources = Sources(Limits(failed_joins_per_minute=3))
    sources.opened(A)
    assert [sources.join_failed(A, t) for t in (0.0, 1.0, 2.0)] == [1, 2, 3]
    assert not sources.may_join(A, 2.0) and sources.may_join(B, 2.0)
    again = sources.ended(A, joined=False, hosting=False, now=3.0)
    assert again == 62.0  # remembered: reconnecting must not reset it
    sources.opened(A)
    assert not sources.may_join(A, 59.9)
    assert sources.may_join(A, 60.0)  # the oldest failure left the window
    sources.ended(A, joined=False, hosting=False, now=61.0)
    assert sources.forget(A, 62.0) is None and len(sources) == 0


def test_zero_turns_each_limit_off():
    sources = Sources(Limits(max_connections_per_source=0, max_unjoined_per_source=0, max_rooms_per_source=0, failed_joins_per_minute=0))
    for _ in range(1000):
        sources.opened(A)
        sources.joined(A, hosting=True)
        sources.join_failed(A, 0.0)
    assert sources.refusal(A) is None and sources.may_host(A) and sources.may_join(A, 0.0)


# --------------------------------------------------------------------------- admission


def test_admit_refuses_a_source_over_its_share_and_no_one_else():
    hub = Hub(seed=1, limits=Limits(max_connections_per_source=3, max_unjoined_per_source=2))
    members = []
    for _ in range(2):
        assert hub.admit(0.0, source=A) == (None, [])
        members.append(hub.connect(0.0, source=A))
    reason, events = hub.admit(0.0, source=A)
    assert "in no room" in reason and events == []
    assert hub.admit(0.0, source=B) == (None, [])
    hub.receive(members[0], JoinRequest("HOST"), 0.0)  # one of them joins: a place in no room frees
    assert hub.admit(0.0, source=A)[0] is None
    members.append(hub.connect(0.0, source=A))
    assert "3 connections" in hub.admit(0.0, source=A)[0]
    hub.disconnect(members[1], 1.0, "bye")
    assert hub.admit(1.0, source=A)[0] is None
    assert hub.counters.refused_connections == 2


def test_admit_at_max_connections_evicts_the_oldest_connection_in_no_room():
    hub = Hub(seed=1, limits=Limits(max_connections=4))
    idle_old = hub.connect(0.0, source=A)
    host, _ = host_from(hub, B)
    idle_new = hub.connect(2.0, source=C)
    player = hub.connect(3.0, source=C)
    code = hub.room_of(host).code
    hub.receive(player, JoinRequest(code), 3.0)
    reason, events = hub.admit(4.0, source=C)
    assert reason is None and events == [CloseMember(idle_old, "evicted: the server is full and this connection was in no room")]
    newcomer = hub.connect(4.0, source=C)
    assert hub.connection_count == 4 and hub.counters.evicted_connections == 1
    hub.receive(newcomer, JoinRequest(code), 4.0)
    reason, events = hub.admit(5.0, source=C)
    assert reason is None and events[0].member == idle_new
    last = hub.connect(5.0, source=C)
    hub.receive(last, JoinRequest(code), 5.0)
    # Every connection is in a room now: a newcomer is refused, nobody is evicted.
    reason, events = hub.admit(6.0, source=A)
    assert "every connection is in a room" in reason and events == []


# --------------------------------------------------------------------------- rooms per source, empty rooms


def test_rooms_per_source_then_answer_3_and_a_strike():
    hub = RawHub(seed=1, limits=Limits(max_rooms_per_source=2))
    for _ in range(2):
        assert host_from(hub, A)[1].response == JoinAnswer.HOST
    member = hub.connect(0.0, source=A)
    out = hub.receive(member, JoinRequest("HOST"), 0.0)
    assert [type(e) for e in out] == [PacketIgnored, Deliver] and out[1].packet.response == JoinAnswer.LOBBY_FULL
    assert host_from(hub, B)[1].response == JoinAnswer.HOST  # another address is not affected
    # A room ending gives the source its place back.
    first = next(room.host for room in hub.rooms.values())
    hub.disconnect(first, 1.0, "bye")
    assert got(hub.receive(member, JoinRequest("HOST"), 1.0), member)[0].response == JoinAnswer.HOST


def test_a_room_nobody_joins_closes_after_empty_room_timeout():
    hub = Hub(seed=1, limits=Limits(empty_room_timeout=120.0, lobby_idle=1800.0))
    host, answer = host_from(hub, A)
    hub.receive(host, StartGame(), 100.0)  # the host keeping itself busy does not count
    assert hub.tick(119.9) == []
    out = hub.tick(120.0)
    assert closed(out) == {host} and answer.room not in hub.rooms
    assert hub.counters.empty_rooms_closed == 1
    assert hub.sources.holds(A) == (0, 0, 0)


def test_a_room_that_got_a_player_is_not_closed_as_empty():
    hub = Hub(seed=1, limits=Limits(empty_room_timeout=120.0, lobby_idle=1800.0))
    host, answer = host_from(hub, A)
    player = join_from(hub, answer.room, B, now=60.0)
    hub.disconnect(player, 61.0, "bye")  # even once the player left again
    assert hub.tick(500.0) == [] and answer.room in hub.rooms


# --------------------------------------------------------------------------- enumeration


def test_failed_joins_are_limited_per_source_across_connections(caplog):
    caplog.set_level(logging.INFO, logger="lgmp.rooms.hub")
    hub = RawHub(seed=1, limits=Limits(failed_joins_per_minute=5, max_strikes=3))
    host, answer = host_from(hub, B)
    live = answer.room
    now, tries, answers = 0.0, 0, []
    member = hub.connect(now, source=A)
    while tries < 12:
        out = hub.receive(member, JoinRequest("ZZZZ" if tries < 5 else live), now)
        answers.append(next(e.packet.response for e in out if isinstance(e, Deliver)))
        tries += 1
        if any(isinstance(e, CloseMember) for e in out):  # three strikes: reconnect
            member = hub.connect(now, source=A)
    # Five refusals looked up, then every JOIN is answered 4 -- the live code included.
    assert answers == [JoinAnswer.ROOM_NOT_FOUND] * 12
    assert hub.counters.failed_joins == 5 and hub.counters.joins_over_allowance == 7
    assert "192.0.2.1: 5 failed JOINs within a minute" in caplog.text
    assert "JOIN 'ZZZZ' refused (4) from 192.0.2.1" in caplog.text
    # Another address finds the room at once; this one a minute later.
    other = hub.connect(now, source=C)
    assert got(hub.receive(other, JoinRequest(live), now), other)[0].response == JoinAnswer.PLAYER
    member = hub.connect(60.0, source=A)
    assert got(hub.receive(member, JoinRequest(live), 60.0), member)[0].response == JoinAnswer.PLAYER


def test_refused_joins_cannot_hold_a_connection_beyond_unjoined_lifetime():
    hub = Hub(seed=1, limits=Limits(join_timeout=10.0, unjoined_lifetime=60.0, max_strikes=100, failed_joins_per_minute=0))
    member = hub.connect(0.0, source=A)
    now = 0.0
    while now < 55.0:  # one 8-byte JOIN every 5 s: each refusal gives a fresh window...
        now += 5.0
        assert member not in closed(hub.tick(now))
        hub.receive(member, JoinRequest("ZZZZ"), now)
    # ...but never past 60 s after connecting.
    assert hub.tick(59.9) == []
    assert hub.tick(60.0) == [CloseMember(member, "no JOIN in time")]


# --------------------------------------------------------------------------- invited packets


def test_invited_packets_never_count_against_the_flood_bucket():
    hub = RawHub(seed=5, limits=Limits(packet_burst=3, packet_rate=0.001, turn_timeout=0.0))
    host, answer = host_from(hub, A)
    code = answer.room
    players = [join_from(hub, code, A, f"P{i}", i) for i in range(1, 7)]
    assert not [m for m in players if m not in hub._connections]
    hub.receive(host, StartGame(), 0.0)
    room = hub.rooms[code]
    moves = 0
    while room.phase is Phase.GAME:
        for seat in list(room.seats.values()):
            packet = right_move(room, seat.number)
            if packet is not None:
                assert room.invites(seat.member, packet), packet
                out = hub.receive(seat.member, packet, 0.0)  # all at one instant
                assert not closed(out), out
                moves += 1
                break
    assert moves > 3 * 6 and hub.counters.flood_closes == 0  # far beyond the burst, no close


def test_uninvited_packets_still_count():
    hub = RawHub(seed=5, limits=Limits(packet_burst=3, packet_rate=0.001))
    host, answer = host_from(hub, A)
    p1 = join_from(hub, answer.room, A, "Ann", 1)
    p2 = join_from(hub, answer.room, A, "Bob", 2)
    hub.receive(host, StartGame(), 0.0)
    room = hub.rooms[answer.room]
    assert not room.invites(p2, Spin(3))  # not p2's turn
    assert not room.invites(host, StartGame())  # in a game
    assert not room.invites(p1, ReadyRequest("Ann", 1))
    assert room.invites(p1, Spin(3))
    # p2 had 3 tokens and its REDY took one: two uninvited SPINs (strikes), then the flood.
    outs = [hub.receive(p2, Spin(3), 0.0) for _ in range(3)]
    assert [CloseMember(p2, "packet flood") in out for out in outs] == [False, False, True]
    assert hub.counters.flood_closes == 1


def test_a_wrong_answer_to_an_invited_duty_is_still_a_strike():
    hub = RawHub(seed=5, limits=Limits(max_strikes=3))
    host, answer = host_from(hub, A)
    p1 = join_from(hub, answer.room, A, "Ann", 1)
    hub.receive(host, StartGame(), 0.0)
    room = hub.rooms[answer.room]
    assert room.game.owes(1) is Duty.SPIN and room.invites(p1, Spin(9))
    outs = [hub.receive(p1, Spin(9), 0.0) for _ in range(3)]  # out of range: invited, yet refused
    assert [e.strikes for out in outs for e in out if isinstance(e, PacketIgnored)] == [1, 2, 3]
    assert p1 in closed(outs[-1])


def test_invites_career_and_card_answers():
    hub = RawHub(seed=5, limits=Limits(turn_timeout=0.0))
    host, answer = host_from(hub, A)
    p1 = join_from(hub, answer.room, A, "Ann", 1)
    p2 = join_from(hub, answer.room, A, "Bob", 2)
    hub.receive(host, StartGame(), 0.0)
    room = hub.rooms[answer.room]
    seen_card = seen_career = False
    while room.phase is Phase.GAME:
        for member, seat in ((p1, 1), (p2, 2)):
            packet = right_move(room, seat)
            if packet is None:
                assert not room.invites(member, Spin(3)) and not room.invites(member, CardAnswer(1, -1))
                continue
            seen_card |= isinstance(packet, CardAnswer)
            seen_career |= isinstance(packet, CareerChoice)
            assert room.invites(member, packet)
            hub.receive(member, packet, 0.0)
            break
    assert seen_card and seen_career


# --------------------------------------------------------------------------- reclaiming a seat


def _game_with_a_vacant_seat(limits: Limits):
    hub = RawHub(seed=1, limits=limits)
    host, answer = host_from(hub, C)
    ann = join_from(hub, answer.room, A, "Ann", 1)
    bob = join_from(hub, answer.room, B, "Bob", 2)
    hub.receive(host, StartGame(), 0.0)
    hub.disconnect(ann, 10.0, "dropped")
    return hub, answer.room


def _reclaim(hub, code, source, name, avatar, now):
    member = hub.connect(now, source=source)
    out = hub.receive(member, JoinRequest(code), now)
    assert got(out, member) == [JoinResponse(JoinAnswer.PLAYER), ReadyResponse(ReadyAnswer.UPDATE, (0, 2, 0, 0, 0, 0))]
    out = hub.receive(member, ReadyRequest(name, avatar), now)
    return member, out


def test_the_seats_own_address_gets_it_back_at_once():
    hub, code = _game_with_a_vacant_seat(Limits())
    member, out = _reclaim(hub, code, A, "ANN", 1, 10.1)
    assert got(out, member)[0] == ReadyResponse(ReadyAnswer.ACCEPTED, (1, 2, 0, 0, 0, 0))
    assert hub.rooms[code].seat_of(member).number == 1


def test_another_address_waits_for_the_delay_and_is_not_struck_for_a_right_guess():
    hub, code = _game_with_a_vacant_seat(Limits(foreign_reclaim_delay=30.0))
    member, out = _reclaim(hub, code, "198.51.100.4", "Ann", 1, 20.0)
    assert got(out, member) == [ReadyResponse(ReadyAnswer.ALREADY_TAKEN, (0, 2, 0, 0, 0, 0))]
    assert not any(isinstance(e, PacketIgnored) for e in out)  # right, but early: no strike
    out = hub.receive(member, ReadyRequest("Ann", 1), 40.0)  # vacant for 30 s now
    assert got(out, member)[0].response == ReadyAnswer.ACCEPTED


def test_wrong_guesses_are_strikes_and_the_room_budget_locks_out_other_addresses():
    hub, code = _game_with_a_vacant_seat(Limits(rejoin_guesses=5, max_strikes=3, foreign_reclaim_delay=30.0))
    guesses = 0
    while guesses < 5:
        member = hub.connect(11.0, source="198.51.100.4")
        hub.receive(member, JoinRequest(code), 11.0)
        for _ in range(3):
            out = hub.receive(member, ReadyRequest(f"X{guesses}", 1), 11.0)
            assert any(isinstance(e, PacketIgnored) for e in out)
            guesses += 1
            if member in closed(out):
                break
    assert hub.counters.wrong_rejoin_guesses >= 5
    # The budget is spent: even the right guess from another address, after the delay, fails...
    member, out = _reclaim(hub, code, "198.51.100.5", "Ann", 1, 100.0)
    assert got(out, member)[0].response == ReadyAnswer.ALREADY_TAKEN
    # ...while the seat's own address still gets it back at once.
    member, out = _reclaim(hub, code, A, "Ann", 1, 100.0)
    assert got(out, member)[0].response == ReadyAnswer.ACCEPTED
