"""The cluster's lease decisions (pure) and one member in this process against a real
Valkey: losing a lease stops new rooms with that letter at once, Redis down never
raises, the directory and the Redis traffic per renewal."""

from __future__ import annotations

import logging
import string

import pytest
import trio

from lgmp.cluster.leases import (
    Member,
    Table,
    creating_letters,
    fair_share,
    local_expiry,
    parse_letters,
    plan_moves,
)
from lgmp.cluster.member import ClusterMember, ClusterSettings
from lgmp.cluster.plan import ClusterPlan, empty_plan, parse_address, plan_from
from lgmp.cluster.registry import parse_redis_url
from lgmp.wire.packets import JoinAnswer
from tests.conftest import TEST_LIMITS
from tests.servers import free_port, letter_owners, redis_command, valkey  # noqa: F401 -- fixture

LETTERS = string.ascii_uppercase


def table(owners: dict[str, str], members: list[Member]) -> Table:
    return Table(tuple(owners.get(x) for x in LETTERS), tuple(members))


# --------------------------------------------------------------------------- pure

def test_fair_shares_cover_every_letter():
    for n in range(1, 27):
        assert fair_share(n) * n >= 26 and (fair_share(n) - 1) * n < 26


def test_a_lone_member_takes_every_free_letter_its_preferred_ones_first():
    moves = plan_moves("a:1", "XYZ", table({}, [Member("a:1", "XYZ")]), "", {})
    assert sorted(moves.acquire) == list(LETTERS) and set(moves.acquire[:3]) == set("XYZ")


def test_a_new_member_gets_letters_the_others_drain_first_what_it_prefers():
    members = [Member("a:1", ""), Member("b:1", "ABCDEFGHIJKLM")]
    owners = {x: "a:1" for x in LETTERS}
    moves = plan_moves("a:1", "", table(owners, members), LETTERS, {"N": 3})
    assert moves.drain == "ABCDEFGHIJKLM" and moves.release == "ABCDEFGHIJKLM" and moves.acquire == ""
    # Without preferences, the letters with the fewest rooms go; one with rooms is drained, not released.
    members = [Member("a:1"), Member("b:1")]
    rooms = {x: 1 for x in LETTERS[:13]} | {"Z": 5}
    moves = plan_moves("a:1", "", table(owners, members), LETTERS, rooms)
    assert len(moves.drain) == 13 and "Z" not in moves.drain
    assert set(moves.release) == set(moves.drain) - set(rooms)


def test_members_filling_up_at_once_reach_for_different_letters():
    members = [Member("a:1"), Member("b:1"), Member("c:1")]
    picks = [plan_moves(m.id, "", table({}, members), "", {}).acquire for m in members]
    assert all(len(p) == 9 for p in picks)
    assert len(set(picks[0]) & set(picks[1])) < 9  # not all the same letters


def test_nothing_moves_at_the_fair_share():
    members = [Member("a:1"), Member("b:1")]
    owners = {x: ("a:1" if i < 13 else "b:1") for i, x in enumerate(LETTERS)}
    assert plan_moves("a:1", "", table(owners, members), LETTERS[:13], {}) == plan_moves(
        "b:1", "", table(owners, members), LETTERS[13:], {})
    assert plan_moves("a:1", "", table(owners, members), LETTERS[:13], {}).acquire == ""


def test_creating_letters_follow_the_local_lease_clock_and_draining():
    expiries = {"A": 10.0, "B": 20.0, "C": 20.0}
    assert creating_letters(expiries, "", 5.0) == "ABC"
    assert creating_letters(expiries, "C", 15.0) == "B"
    assert creating_letters(expiries, "", 25.0) == ""
    assert local_expiry(100.0, 10.0) < 110.0


def test_preferred_letters_and_addresses_parse():
    assert parse_letters("A-M") == "ABCDEFGHIJKLM"
    assert parse_letters("x, a-c") == "ABCX"
    for bad in ("A-", "1", "M-A"):
        with pytest.raises(ValueError):
            parse_letters(bad)
    assert parse_address("10.0.0.1:7001") == ("10.0.0.1", 7001)
    with pytest.raises(ValueError):
        parse_address("nohost")
    assert parse_redis_url("redis://h:7/2") == {"host": "h", "port": 7, "db": 2, "username": None, "password": None}
    with pytest.raises(ValueError):
        parse_redis_url("http://h:7")


def test_a_cluster_plan_routes_by_owner_and_creates_only_from_its_creating_letters():
    owners = {"A": "10.0.0.1:7001", "B": "10.0.0.2:7001", "C": "10.0.0.1:7001"}
    plan = plan_from("10.0.0.1:7001", table(owners, []), creating="A")
    assert isinstance(plan, ClusterPlan) and plan.letters == "A"
    assert plan.route("BXYZ") == ("10.0.0.2:7001", ("10.0.0.2", 7001))
    assert plan.route("CXYZ") is None  # held (draining or lapsed): still answered here
    assert plan.route("DXYZ") is None  # nobody holds D: answered here (4)
    assert empty_plan("x:1").letters == "" and empty_plan("x:1").route("AAAA") is None


# --------------------------------------------------------------------------- one member, real Valkey

async def member_server(lgmp_server, valkey_url: str, ttl: float = 1.5):
    net = await lgmp_server(limits=TEST_LIMITS)
    settings = ClusterSettings(url=valkey_url, advertise=("127.0.0.1", free_port()), lease_ttl=ttl)
    member = ClusterMember(net.server, settings)
    return net, member


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def test_a_lost_lease_stops_new_rooms_with_that_letter_at_once(lgmp_server, nursery, valkey, caplog):
    caplog.set_level(logging.INFO, "lgmp.cluster")
    net, member = await member_server(lgmp_server, valkey.url)
    nursery.start_soon(member.run)
    await wait_until(lambda: len(net.server.hub.shard.letters) == 26)
    # Another member takes letter Q (as after a partition): at the next renewal Q is gone.
    redis_command(valkey.port, "SET", "lgmp:letter:Q", "10.9.9.9:1", "PX", 60000)
    await wait_until(lambda: "Q" not in net.server.hub.shard.letters)
    assert "lost the lease on Q" in caplog.text
    assert net.server.hub.shard.route("QAAA") == ("10.9.9.9:1", ("10.9.9.9", 1))
    codes = [(await net.host())[1] for _ in range(30)]
    assert not any(code.startswith("Q") for code in codes)


async def test_redis_down_keeps_creating_until_the_lease_lapses_then_answers_3(lgmp_server, nursery, valkey, caplog):
    net, member = await member_server(lgmp_server, valkey.url, ttl=1.2)
    nursery.start_soon(member.run)
    await wait_until(lambda: len(net.server.hub.shard.letters) == 26)
    _, code = await net.host()
    valkey.stop()
    stopped = trio.current_time()
    _, code2 = await net.host()  # within the lease
    await wait_until(lambda: net.server.hub.shard.letters == "", timeout=3)
    assert trio.current_time() - stopped <= 1.2
    client = await net.client()
    assert await client.join("HOST") is JoinAnswer.LOBBY_FULL
    player = await net.client()
    assert await player.join(code) is JoinAnswer.PLAYER  # existing rooms go on
    assert "JOIN HOST is answered 3 until Redis is back" in caplog.text
    valkey.start()
    await wait_until(lambda: len(net.server.hub.shard.letters) == 26, timeout=5)


async def test_the_directory_and_a_handful_of_redis_commands_per_renewal(lgmp_server, nursery, valkey):
    net, member = await member_server(lgmp_server, valkey.url, ttl=0.9)
    nursery.start_soon(member.run)
    await wait_until(lambda: len(net.server.hub.shard.letters) == 26)
    hosts = [await net.host() for _ in range(20)]
    redis_command(valkey.port, "CONFIG", "RESETSTAT")
    await trio.sleep(1.5)  # five renewals, rooms open the whole time
    stats = redis_command(valkey.port, "INFO", "commandstats")
    calls = {line.split(":")[0].removeprefix("cmdstat_"): int(line.split("calls=")[1].split(",")[0])
             for line in stats.splitlines() if "calls=" in line}
    # One heartbeat script per renewal (its inner commands run inside Redis, one round
    # trip) and one directory SET (the script SETs the member key too): nothing per room.
    assert 3 <= calls["evalsha"] <= 6, stats
    assert calls["set"] == 2 * calls["evalsha"], stats
    assert set(calls) <= {"evalsha", "set", "get", "pexpire", "zadd", "zremrangebyscore", "mget", "zrange", "time",
                          "config|resetstat"}, stats
    import json

    directory = json.loads(redis_command(valkey.port, "GET", f"lgmp:rooms:{member.me}"))
    assert sorted(room[0] for room in directory["rooms"]) == sorted(code for _, code in hosts)
    assert 0 < redis_command(valkey.port, "PTTL", f"lgmp:rooms:{member.me}") <= 900
    await member.leave()  # a graceful stop gives everything back at once
    assert set(letter_owners(valkey.port).values()) == {None}
    assert redis_command(valkey.port, "EXISTS", f"lgmp:member:{member.me}") == 0
