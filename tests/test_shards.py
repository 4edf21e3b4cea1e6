"""``lgmp.rooms.shards`` (which process owns a code) and the hub's side of it: codes drawn
from a worker's own letters, JOINs handed to another process and refused there."""

from __future__ import annotations

import random
import string

import pytest

from lgmp.limits import Limits
from lgmp.rooms.events import CloseMember, Deliver
from lgmp.rooms.hub import Hub
from lgmp.rooms.names import is_valid_room_code
from lgmp.rooms.shards import LETTERS, ShardPlan, deal_letters
from lgmp.wire.packets import JoinAnswer, JoinRequest, JoinResponse

ADDRESSES = [("127.0.0.1", 5001), ("127.0.0.1", 5002), ("127.0.0.1", 5003)]


@pytest.mark.parametrize("owners", [1, 2, 3, 7, 26])
def test_letters_are_dealt_whole_and_evenly(owners):
    shares = deal_letters(owners)
    assert len(shares) == owners
    assert sorted("".join(shares)) == list(LETTERS)  # every letter exactly once
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.parametrize("owners", [0, 27])
def test_more_owners_than_letters_is_refused(owners):
    with pytest.raises(ValueError):
        deal_letters(owners)


def test_every_worker_agrees_on_every_route():
    plans = [ShardPlan.for_workers(i, ADDRESSES) for i in range(3)]
    assert [p.me for p in plans] == ["w1", "w2", "w3"]
    assert "".join(sorted("".join(p.letters for p in plans))) == LETTERS
    for letter in LETTERS:
        code = letter + "QZW"
        owner = plans[0].owner_of(code)
        assert all(p.owner_of(code) == owner for p in plans)
        for plan in plans:
            route = plan.route(code.lower())  # codes match case-insensitively
            if plan.me == owner:
                assert route is None
            else:
                assert route == (owner, ADDRESSES[int(owner[1:]) - 1])


@pytest.mark.parametrize("code", ["HOST", "host", "AB1D", "ABC", "ABCDE", "\udcc3BCD", ""])
def test_what_no_process_could_own_is_answered_where_it_arrives(code):
    plan = ShardPlan.for_workers(0, ADDRESSES)
    assert plan.owner_of(code) is None and plan.route(code) is None


def test_a_letter_nobody_holds_is_answered_locally_and_a_plan_needs_every_address():
    plan = ShardPlan.for_workers(0, ADDRESSES)
    owners = list(plan.owners)
    owners[LETTERS.index("B")] = None
    lapsed = ShardPlan(plan.me, tuple(owners), plan.addresses)
    assert lapsed.route("BCDE") is None
    with pytest.raises(ValueError):
        ShardPlan("w1", plan.owners, plan.addresses[:1])
    with pytest.raises(ValueError):
        ShardPlan("w1", plan.owners[:25], plan.addresses)


# --- the hub ------------------------------------------------------------------------------


def test_a_worker_draws_codes_only_from_its_own_letters():
    plan = ShardPlan.for_workers(1, ADDRESSES)
    hub = Hub(limits=Limits(max_rooms=3000), seed=5, shard=plan)
    for i in range(300):  # plenty for every one of its 9 letters to be drawn (seeded: the same codes each run)
        member = hub.connect(0.0)
        answer = next(e.packet for e in hub.receive(member, JoinRequest("HOST"), 0.0) if isinstance(e, Deliver))
        assert answer.response == JoinAnswer.HOST
        assert answer.room[0] in plan.letters and is_valid_room_code(answer.room)
    assert len(hub.rooms) == 300
    assert {code[0] for code in hub.rooms} == set(plan.letters)


def test_without_a_plan_codes_are_the_same_as_before():
    """The first letter is drawn like the other three: a seed gives the codes it always gave."""
    rng = random.Random(3)
    expected = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
    hub = Hub(seed=3)
    member = hub.connect(0.0)
    events = hub.receive(member, JoinRequest("HOST"), 0.0)
    assert JoinResponse(JoinAnswer.HOST, expected) in [e.packet for e in events if isinstance(e, Deliver)]


def test_a_worker_holding_no_letter_answers_join_host_3():
    plan = ShardPlan.for_workers(0, ADDRESSES)
    empty = ShardPlan(plan.me, tuple(None if o == plan.me else o for o in plan.owners), plan.addresses)
    hub = Hub(shard=empty)
    member = hub.connect(0.0)
    events = hub.receive(member, JoinRequest("HOST"), 0.0)  # (a refused JOIN is also a strike: PacketIgnored)
    assert [e.packet for e in events if isinstance(e, Deliver)] == [JoinResponse(JoinAnswer.LOBBY_FULL)]


def test_a_join_handed_elsewhere_stops_the_join_clock_until_it_is_refused():
    limits = Limits(join_timeout=10.0)
    hub = Hub(limits=limits, shard=ShardPlan.for_workers(0, ADDRESSES))
    member = hub.connect(0.0)
    assert hub.join_elsewhere(member, 9.0) == []
    assert hub.tick(40.0) == []  # the owner is answering: no "no JOIN in time"
    events = hub.refused_elsewhere(member, 40.0, JoinAnswer.ROOM_NOT_FOUND)
    assert [e.packet for e in events if isinstance(e, Deliver)] == [JoinResponse(JoinAnswer.ROOM_NOT_FOUND)]
    assert hub.tick(49.9) == []  # a fresh window, as after a refusal here (within unjoined_lifetime)
    assert any(isinstance(e, CloseMember) for e in hub.tick(50.0))


def test_joins_handed_elsewhere_cost_flood_tokens():
    hub = Hub(limits=Limits(packet_burst=5, packet_rate=1.0), shard=ShardPlan.for_workers(0, ADDRESSES))
    member = hub.connect(0.0)
    for _ in range(6):  # a connection's first JOIN is invited; the next five take the burst
        assert hub.join_elsewhere(member, 0.0) == []
        hub.refused_elsewhere(member, 0.0, JoinAnswer.ROOM_NOT_FOUND)
    assert CloseMember(member, "packet flood") in hub.join_elsewhere(member, 0.0)
    assert hub.connection_count == 0


def test_a_relayed_member_is_forgotten_and_shutdown_leaves_it_to_its_owner():
    hub = Hub(shard=ShardPlan.for_workers(0, ADDRESSES))
    relayed, waiting = hub.connect(0.0), hub.connect(0.0)
    hub.join_elsewhere(relayed, 0.0)
    assert hub.disconnect(relayed, 0.1, "relayed to w2") == []
    assert hub.connection_count == 1
    assert hub.shutdown() == [CloseMember(waiting, "the server is shutting down")]
