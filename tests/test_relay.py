"""Relayed connections between servers that share the code letters, in one process.

Each test starts two or three ``LGMPServer``s with shard plans pointing at each
other's relay listeners (as ``lgmp serve --workers`` does across processes), each on
its own public port, so a test chooses which server a client reaches. Whatever a
relayed client sends or fails to send must end exactly as it would on a direct
connection to the room's owner. tests/test_workers.py runs the real processes.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import socket
import time
from dataclasses import dataclass, field

import pytest
import trio

from lgmp.clients.client import LGMPClient
from lgmp.limits import Limits
from lgmp.rooms.shards import LETTERS, ShardPlan
from lgmp.server import relay as relay_module
from lgmp.server.shell import LGMPServer
from lgmp.wire.codec import encode
from lgmp.wire.packets import (
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
from tests.conftest import TEST_LIMITS, drain_updates, recv, recv_n, silent, until_closed, update
from tests.test_server import check_results, play_room, start_game


@dataclass
class Worker:
    server: LGMPServer
    port: int  # its public port (one per worker here: no SO_REUSEPORT needed to pick one)
    relay_port: int

    @property
    def plan(self) -> ShardPlan:
        return self.server.hub.shard


@dataclass
class Clients:
    """Opens clients on chosen workers; ``host``/``player`` fit tests.test_server.play_room."""

    host_on: Worker
    players_on: list[Worker]  # the n-th player opened goes to players_on[n % len]
    opened: list[LGMPClient] = field(default_factory=list)
    _players: int = 0

    async def client(self, worker: Worker | None = None) -> LGMPClient:
        client = await LGMPClient.connect("127.0.0.1", (worker or self.host_on).port)
        self.opened.append(client)
        return client

    async def host(self) -> tuple[LGMPClient, str]:
        client = await self.client(self.host_on)
        with trio.fail_after(5):
            return client, await client.host_room()

    async def player(self, code: str, name: str, avatar: int, worker: Worker | None = None) -> LGMPClient:
        if worker is None:
            worker = self.players_on[self._players % len(self.players_on)]
            self._players += 1
        client = await self.client(worker)
        with trio.fail_after(5):
            assert await client.join(code) is JoinAnswer.PLAYER
            assert await client.ready(name, avatar) is ReadyAnswer.ACCEPTED
        return client


@pytest.fixture
async def workers(nursery):
    started: list[Worker] = []
    clients: list[Clients] = []

    async def start(count: int = 2, *, limits: Limits = TEST_LIMITS) -> list[Worker]:
        relay_listeners = [await trio.open_tcp_listeners(0, host="127.0.0.1") for _ in range(count)]
        addresses = [listeners[0].socket.getsockname()[:2] for listeners in relay_listeners]
        for i in range(count):
            server = LGMPServer(limits=limits, seed=10 + i, shard=ShardPlan.for_workers(i, addresses))
            port = await nursery.start(functools.partial(server.serve, "127.0.0.1", 0, relay_listeners=relay_listeners[i]))
            started.append(Worker(server, port, addresses[i][1]))
        return started[-count:]

    def make_clients(host_on: Worker, players_on: list[Worker]) -> Clients:
        clients.append(Clients(host_on, players_on))
        return clients[-1]

    start.clients = make_clients
    yield start
    for worker in started:
        with trio.move_on_after(5):
            await worker.server.shutdown()
    for c in clients:
        for client in c.opened:
            with trio.move_on_after(1):
                await client.aclose()


def code_of(worker: Worker, tail: str = "QZX") -> str:
    """A code of ``worker``'s letters that no room has."""
    return worker.plan.letters[0] + tail


# --- JOIN answers -----------------------------------------------------------------------------


async def test_every_join_answer_through_a_relay(workers):
    w1, w2 = await workers(2)
    net = workers.clients(w1, [w1])
    host, code = await net.host()
    assert code[0] in w1.plan.letters
    # 1: JOIN HOST is answered where it arrives, with that worker's letters.
    other = await net.client(w2)
    assert (await other.host_room())[0] in w2.plan.letters
    # 2, then the avatars, from the owner through w2.
    first = await net.client(w2)
    await first.send(JoinRequest(code.lower()))
    assert await recv_n(first, 2) == [JoinResponse(JoinAnswer.PLAYER), update((0,) * 6)]
    await first.aclose()
    # 3: a full room.
    for seat in range(1, 7):
        await net.player(code, f"P{seat}", seat, worker=w1 if seat % 2 else w2)
    full = await net.client(w2)
    await full.send(JoinRequest(code))
    assert await recv(full) == JoinResponse(JoinAnswer.LOBBY_FULL)
    # 4: no such room (a mistyped code reaches the owner of its letter, which answers 4).
    await full.send(JoinRequest(code_of(w1)))
    assert await recv(full) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    # 5: started.
    await drain_updates(host)
    await host.send(StartGame())
    assert await recv(host) == start_game(6)
    await full.send(JoinRequest(code))
    assert await recv(full) == JoinResponse(JoinAnswer.GAME_STARTED)
    assert w2.server.relay.refused == 3
    # The owner answered each of them: w2 never had the room.
    assert code not in w2.server.hub.rooms


async def test_a_refused_join_then_a_good_one_on_the_same_connection(workers):
    w1, w2 = await workers(2)
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    client = await net.client(w2)
    await client.send(JoinRequest(code_of(w1)))  # relayed, refused by w1
    assert await recv(client) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    await client.send(JoinRequest(code_of(w2)))  # w2's own letter: answered by w2
    assert await recv(client) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    await client.send(JoinRequest(code))  # relayed again, accepted
    assert await recv_n(client, 2) == [JoinResponse(JoinAnswer.PLAYER), update((0,) * 6)]
    assert await client.ready("Maya", 3) is ReadyAnswer.ACCEPTED
    assert await recv(host) == update((3, 0, 0, 0, 0, 0))
    # Now spliced: w2's hub no longer knows the connection, w1's has it as a player.
    assert w2.server.hub.connection_count == 0 and w2.server.open_connections == 1
    assert w1.server.hub.room_of(max(w1.server._peers)) is w1.server.hub.rooms[code]


async def test_bytes_sent_behind_the_join_reach_the_owner_as_they_were(workers):
    w1, w2 = await workers(2)
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    client = await net.client(w2)
    redy = encode(ReadyRequest("Maya", 3))
    await client.send_raw(encode(JoinRequest(code)) + redy[:3])  # the JOIN and a packet's first bytes
    assert await recv_n(client, 2) == [JoinResponse(JoinAnswer.PLAYER), update((0,) * 6)]
    await client.send_raw(redy[3:])
    assert await recv(client) == ReadyResponse(ReadyAnswer.ACCEPTED, (3, 0, 0, 0, 0, 0))


async def test_the_owner_sees_the_client_address_not_the_relay(workers):
    w1, w2 = await workers(2)
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    client = await net.player(code, "Maya", 3)
    mine = "%s:%d" % client.stream.socket.getsockname()[:2]
    assert mine in {peer.conn.peer for peer in w1.server._peers.values()}


async def test_an_unreachable_owner_answers_4_and_the_client_may_try_again(workers, monkeypatch):
    w1, w2 = await workers(2)
    monkeypatch.setattr(relay_module, "RELAY_TIMEOUT", 0.5)
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    for listener in w1.server.relay_listeners:
        await listener.aclose()  # w1 takes no relayed connection any more
    client = await net.client(w2)
    await client.send(JoinRequest(code))
    assert await recv(client) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    await client.send(JoinRequest("HOST"))
    assert (await recv(client)).response == JoinAnswer.HOST


# --- whole games --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3])
async def test_a_whole_game_with_players_on_every_worker_ends_with_the_exact_finl(workers, count):
    started = await workers(count)
    net = workers.clients(started[0], started[::-1])
    seats = (1, 2, 3, 4, 5, 6)
    host_log, logs, host, players, code = await play_room(net, seats, seed=count)
    check_results(host_log, logs, seats)
    assert sum(w.server.relay.spliced for w in started) == sum(1 for i in range(6) if started[::-1][i % count] is not started[0])


async def test_a_relayed_leaver_is_played_and_rejoins_through_another_worker(workers):
    w1, w2, w3 = await workers(3, limits=dataclasses.replace(TEST_LIMITS, leave_grace=0.2))
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    maya = await net.player(code, "Maya", 3, worker=w1)
    jonas = await net.player(code, "Jonas", 1, worker=w2)  # relayed by w2
    await drain_updates(host)
    await drain_updates(maya)
    await host.send(StartGame())
    for client in (host, maya, jonas):
        assert await recv(client) == start_game(2)
    await maya.send(Spin(2))
    moved = await recv(host)
    assert await recv(jonas) == moved and moved.turn == 2
    await jonas.aclose()  # the relay closes its upstream: w1 sees the leave
    played = await recv(host, timeout=3)  # after the grace the server spins for seat 2
    assert isinstance(played, GameUpdate) and played.occupancy != moved.occupancy
    back = await net.client(w3)  # through another worker
    await back.send(JoinRequest(code))
    # (a rejoiner is shown the vacant seat's avatar as 0)
    assert await recv_n(back, 2) == [JoinResponse(JoinAnswer.PLAYER), update((3, 0, 0, 0, 0, 0))]
    await back.send(ReadyRequest("jonas", 1))
    assert (await recv(back)) == ReadyResponse(ReadyAnswer.ACCEPTED, (3, 1, 0, 0, 0, 0))
    assert isinstance(await recv(back), GameUpdate)  # the resync


async def test_the_owner_closing_closes_relayed_clients_and_the_reverse(workers):
    w1, w2 = await workers(2)
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    maya = await net.player(code, "Maya", 3)
    jonas = await net.player(code, "Jonas", 1)
    await drain_updates(maya)
    await jonas.aclose()
    with trio.fail_after(2):  # the owner sees the leave at once (no timeout involved)
        while w1.server.hub.rooms[code].seats.get(2):
            await trio.sleep(0.01)
    await host.aclose()  # the room ends: RSET to the relayed player, then it is closed
    assert await until_closed(maya, timeout=3) == [update((3, 0, 0, 0, 0, 0)), Reset()]
    with trio.fail_after(3):
        while w2.server.open_connections:
            await trio.sleep(0.01)


async def test_shutdown_resets_relayed_players(workers):
    w1, w2 = await workers(2)
    net = workers.clients(w1, [w2])
    host, code = await net.host()
    maya = await net.player(code, "Maya", 3)
    await drain_updates(maya)
    await drain_updates(host)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(w2.server.shutdown)
        nursery.start_soon(w1.server.shutdown)
    assert await until_closed(maya) == [Reset()]
    assert await until_closed(host) == [Reset()]


# --- hostile input through a relay is cut as without one -----------------------------------------


async def _room_with_a_target(workers, limits: Limits):
    """A room on w1 with a calm player, and a target player on each path: (net, host, calm, direct, relayed, code)."""
    w1, w2 = await workers(2, limits=limits)
    net = workers.clients(w1, [w1])
    host, code = await net.host()
    calm = await net.player(code, "Cal", 1, worker=w1)
    direct = await net.player(code, "Dee", 2, worker=w1)
    relayed = await net.player(code, "Rel", 3, worker=w2)
    for client in (host, calm, direct, relayed):
        await drain_updates(client)
    return net, host, calm, direct, relayed, code, w1, w2


async def test_garbage_through_a_relay_is_cut_as_without_one(workers):
    net, host, calm, direct, relayed, code, w1, w2 = await _room_with_a_target(workers, TEST_LIMITS)
    garbage = b"GARB" + random.Random(1).randbytes(4 * 1024 * 1024)
    for client in (direct, relayed):
        await drain_updates(client)  # the room's news of the first one leaving
        t0 = time.monotonic()
        with pytest.raises((trio.BrokenResourceError, trio.ClosedResourceError)):
            await client.send_raw(garbage)  # the server stops reading at once
        assert time.monotonic() - t0 < 5
        assert await until_closed(client) == []
    assert await calm.ready("Cal", 4) is ReadyAnswer.ACCEPTED
    with trio.fail_after(3):
        while w2.server.open_connections:
            await trio.sleep(0.01)


async def test_a_flood_through_a_relay_is_cut_as_without_one(workers):
    limits = dataclasses.replace(TEST_LIMITS, packet_burst=50, packet_rate=20)
    net, host, calm, direct, relayed, code, w1, w2 = await _room_with_a_target(workers, limits)
    for client, name, avatar in ((direct, "Dee", 2), (relayed, "Rel", 3)):
        await drain_updates(client)
        await client.send_raw(encode(ReadyRequest(name, avatar)) * 200)
        packets = await until_closed(client)
        answers = [p for p in packets if isinstance(p, ReadyResponse) and p.response == ReadyAnswer.ACCEPTED]
        # Cut by the owner's bucket on both paths: never more answers than the burst
        # (fewer may arrive: closing on unread input resets the connection).
        assert len(answers) <= 50
    assert await calm.ready("Cal", 4) is ReadyAnswer.ACCEPTED


async def test_strikes_through_a_relay_close_as_without_one(workers):
    net, host, calm, direct, relayed, code, w1, w2 = await _room_with_a_target(workers, TEST_LIMITS)
    for client in (direct, relayed):
        await drain_updates(client)
        for _ in range(10):
            await client.send(Spin(3))  # no game yet: a strike each
        packets = await until_closed(client)
        assert len(packets) == 9 and all(isinstance(p, ReadyResponse) for p in packets)


async def test_slowloris_through_a_relay_is_cut_as_without_one(workers, autojump_clock):
    limits = dataclasses.replace(TEST_LIMITS, packet_timeout=10.0)
    net, host, calm, direct, relayed, code, w1, w2 = await _room_with_a_target(workers, limits)
    redy = encode(ReadyRequest("Slow", 5))
    for client in (direct, relayed):
        await drain_updates(client)
        t0 = trio.current_time()
        await client.send_raw(redy[:4])
        await trio.sleep(9)
        await client.send_raw(redy[4:5])  # a byte now and then does not restart the clock
        assert await until_closed(client, timeout=30) == []
        assert trio.current_time() - t0 == pytest.approx(10, abs=0.5)
    assert await calm.ready("Cal", 4) is ReadyAnswer.ACCEPTED


async def test_a_relayed_client_that_never_reads_is_closed_by_its_owner(workers):
    limits = dataclasses.replace(TEST_LIMITS, send_queue=16)
    w1, w2 = await workers(2, limits=limits)
    net = workers.clients(w1, [w1])
    host, code = await net.host()
    sleeper = trio.socket.socket()
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    await sleeper.connect(("127.0.0.1", w2.port))
    await sleeper.send(encode(JoinRequest(code)) + encode(ReadyRequest("Zed", 6)))
    ann = await net.player(code, "Ann", 1)
    room = w1.server.hub.rooms[code]
    t0 = time.monotonic()
    worst, avatar, changes = 0.0, 1, 0
    while any(seat.name == "Zed" for seat in room.seats.values()):
        avatar = 2 if avatar == 1 else 1
        t = time.monotonic()
        assert await ann.ready("Ann", avatar) is ReadyAnswer.ACCEPTED
        worst = max(worst, time.monotonic() - t)
        changes += 1
        assert changes < 50_000, "the sleeper was never closed"
    assert worst < 1.0, f"an answer to Ann waited {worst:.2f} s (on the sleeper?)"
    assert time.monotonic() - t0 < 30, f"{changes} changes took {time.monotonic() - t0:.1f} s"
    t1 = time.monotonic()
    # Generous: on a loaded machine the owner's reset and the relay's check are scheduled late.
    with trio.move_on_after(relay_module.GONE_CHECK + relay_module.FLUSH_TIMEOUT + 15):
        while w2.server.open_connections:  # the relay noticed and closed its side too
            await trio.sleep(0.05)
    assert not w2.server.open_connections, f"the relay still holds the sleeper {time.monotonic() - t1:.1f} s later"
    sleeper.close()


async def test_a_connection_evicted_before_its_reading_task_starts_is_ended_once(monkeypatch):
    # With a shard plan each connection starts with a task of its own. Two sockets in
    # one accept burst at max_connections=1: the second's admission evicts the first
    # before the first's task has run. It must be flushed and closed once, not twice.
    (relay,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    plan = ShardPlan.for_workers(0, [relay.socket.getsockname()[:2]])
    server = LGMPServer(limits=dataclasses.replace(TEST_LIMITS, max_connections=1), seed=1, shard=plan)
    ended: list[int] = []
    real_end = LGMPServer._end_peer

    async def counting_end(self, peer):
        ended.append(peer.conn.member)
        await real_end(self, peer)

    monkeypatch.setattr(LGMPServer, "_end_peer", counting_end)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(server.serve, "127.0.0.1", 0, relay_listeners=[relay]))
        first = socket.create_connection(("127.0.0.1", port))
        second = socket.create_connection(("127.0.0.1", port))
        with trio.fail_after(5):
            while server.stats.opened + sum(server.stats.closed.values()) < 2:
                await trio.sleep(0.01)
        await trio.sleep(0.2)
        assert sum(server.stats.closed.values()) == 1  # one eviction, counted once
        assert len(ended) == 1  # and ended once
        nursery.cancel_scope.cancel()
    first.close()
    second.close()
