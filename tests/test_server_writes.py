"""The server's write path: direct writes, the per-peer backlog and its flusher, commit
barriers, the send-queue count, write errors, and what a failure there may take down.

Some tests drive ``LGMPServer``'s private write methods on a socketpair, so a partial
write is certain rather than a matter of timing. Several began as reproductions of bugs
found in review (a flusher outliving its socket, one barrier shared by two games, a
leaking send-queue count, reordering when a peer is dropped mid-batch, exceptions
escaping into the server's nursery, one room's timer bug losing another's outputs).
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
import trio

from lgmp.clients.client import LGMPClient
from lgmp.limits import Limits
from lgmp.wire.packets import ReadyAnswer, ReadyRequest, ReadyResponse, Reset
from lgmp.rooms.events import Deliver, StoreGame
from lgmp.rooms.room import Room
from lgmp.server.shell import STORE_WAIT, LGMPServer, _Peer
from tests.conftest import TEST_LIMITS, drain_updates, recv, until_closed, update

# --------------------------------------------------------------------------- helpers


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


@asynccontextmanager
async def serving(**kwargs):
    """A server in a nursery of its own, so that an exception escaping one of the
    server's tasks (which would end ``serve``) fails the test as "the server crashed"."""
    server = LGMPServer(**kwargs)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            yield server
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        crashes = [e for e in leaves if not isinstance(e, (AssertionError, pytest.fail.Exception, trio.TooSlowError))]
        if crashes:
            pytest.fail(f"the server crashed: {crashes!r}")
        raise leaves[0] from None


async def wait_until(condition, timeout: float = 30.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def finished_game(room: str = "ROOM") -> StoreGame:
    """A stand-in for a finished game: the server only reads ``record.duration``."""
    return StoreGame(room, 1, SimpleNamespace(duration=1.0))


async def connected_peer(server: LGMPServer) -> tuple[LGMPClient, _Peer]:
    """A client connected to ``server`` (not joined) and the server's peer for it."""
    before = set(server._peers)
    client = await LGMPClient.connect("127.0.0.1", server.port)
    await wait_until(lambda: set(server._peers) - before)
    (member,) = set(server._peers) - before
    return client, server._peers[member]


def socketpair_peer(server: LGMPServer, member: int = 1, buffer: int = 4096) -> tuple[_Peer, trio.socket.SocketType]:
    """A peer on one end of a socketpair with small buffers (registered with the server);
    the other end, to read what the server wrote."""
    a, b = trio.socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    peer = _Peer(member, trio.SocketStream(a), a.fileno(), "pair")
    server._peers[member] = peer
    return peer, b


async def read_exactly(sock, n: int) -> bytes:
    got = bytearray()
    with trio.fail_after(10):
        while len(got) < n:
            chunk = await sock.recv(65536)
            assert chunk, "closed early"
            got += chunk
    return bytes(got)


# --------------------------------------------------------------------------- bugs


async def test_a_peer_that_leaves_while_its_flusher_waits_at_a_barrier_does_not_crash_the_server(autojump_clock):
    release = threading.Event()

    def slow_store(finished, started, ended):  # a disk slower than FLUSH_TIMEOUT (2 s)
        release.wait(60)

    async with serving(limits=TEST_LIMITS, seed=1, on_game_finished=slow_store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
                client, peer = await connected_peer(server)
                # A batch with a finished game: the barrier, then the bytes it holds.
                server._carry_out([Deliver((peer.member,), Reset()), finished_game()])
                assert isinstance(peer.backlog[0], trio.Event) and len(peer.backlog) == 2
                await client.aclose()
                # _run_peer gives the held backlog its bounded flush, then stops the
                # flusher (still waiting at the barrier) before it closes the stream.
                await wait_until(lambda: not server._peers)
                release.set()  # the game is stored (or STORE_WAIT passes): the barrier opens
                await wait_until(lambda: peer.flushed is None)
                await trio.sleep(1)
                other = await LGMPClient.connect("127.0.0.1", server.port)  # still serving
                with trio.fail_after(5):
                    assert len(await other.host_room()) == 4
                await other.aclose()
        finally:
            release.set()


async def test_shutdown_while_a_slow_store_holds_a_barrier_does_not_crash():
    # Real time: the store ends after FLUSH_TIMEOUT (2 s), before shutdown stops
    # waiting for it (shutdown_grace + 5 s).
    release = threading.Event()

    def slow_store(finished, started, ended):
        release.wait(60)

    async def release_later():
        await trio.sleep(3)
        release.set()

    async with serving(limits=TEST_LIMITS, seed=1, on_game_finished=slow_store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
                client, peer = await connected_peer(server)
                server._carry_out([Deliver((peer.member,), Reset()), finished_game()])
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(release_later)
                    await server.shutdown()
                await trio.sleep(0.1)
                assert server.open_connections == 0 and release.is_set()
        finally:
            release.set()


async def test_two_games_finished_in_one_batch_hold_bytes_until_both_are_committed():
    # hub.tick fires every room that is due in one call, so two rooms whose last
    # careers are auto-played in the same tick finish in one batch.
    stored: list[str] = []
    release_b = threading.Event()

    def store(finished, started, ended):
        if finished.room == "BBBB":
            release_b.wait(10)
        stored.append(finished.room)

    async with serving(limits=TEST_LIMITS, seed=1, on_game_finished=store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
            a, peer_a = await connected_peer(server)
            b, peer_b = await connected_peer(server)
            server._carry_out([
                Deliver((peer_a.member,), Reset()), finished_game("AAAA"),
                Deliver((peer_b.member,), Reset()), finished_game("BBBB"),
            ])

            async def release_later():
                await trio.sleep(0.5)
                release_b.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(release_later)
                assert await recv(b) == Reset()
                assert "BBBB" in stored, "room BBBB's packet went out before its game was committed"
            assert await recv(a) == Reset()
        finally:
            release_b.set()


async def test_queued_returns_to_zero_after_a_coalesced_backlog_is_written(nursery):
    server = LGMPServer(limits=Limits(send_queue=8))
    server._nursery = nursery
    peer, other_end = socketpair_peer(server)
    packet = b"x" * 100_000  # three of them never fit in the socket buffers at once
    for round in range(10):
        server._send_out(peer, [packet, packet, packet])  # one batch: one joined write, a partial one
        assert peer.closing is None, f"closed in round {round} with queued={peer.queued}: {peer.closing}"
        assert peer.backlog, "the write was expected to be partial"
        assert await read_exactly(other_end, 3 * len(packet)) == packet * 3
        await wait_until(lambda: peer.flushed is None)
        assert peer.backlog == [] and peer.queued == 0, f"round {round}: empty backlog, queued={peer.queued}"
    other_end.close()


async def test_a_peer_dropped_mid_broadcast_does_not_reorder_the_others(net):
    host, code = await net.host()
    ann = await net.player(code, "Ann", 1)  # seat 1
    bob = await net.player(code, "Bob", 2)  # seat 2
    cid = await net.player(code, "Cid", 3)  # seat 3
    for client in (host, ann, bob, cid):
        await drain_updates(client)
    room = net.server.hub.rooms[code]
    # Ann's socket stops taking writes (as after an RST): the next write to it fails with EPIPE.
    net.server._peers[room.seats[1].member].stream.socket.shutdown(socket.SHUT_WR)
    # Cid's change goes to Cid, then to (host, Ann, Bob); the write to Ann fails on the way.
    await cid.send(ReadyRequest("Cid", 4))
    assert await recv(cid) == ReadyResponse(ReadyAnswer.ACCEPTED, (1, 2, 4, 0, 0, 0))
    assert await drain_updates(host, 0.3) == [update((1, 2, 4, 0, 0, 0)), update((0, 2, 4, 0, 0, 0))]
    # Bob must see the same history; he is sent the room after Ann's departure first,
    # then the older update that still shows Ann.
    assert await drain_updates(bob, 0.3) == [update((1, 2, 4, 0, 0, 0)), update((0, 2, 4, 0, 0, 0))]


async def test_a_bug_while_handling_a_disconnect_closes_only_that_connection(monkeypatch):
    async with serving(limits=TEST_LIMITS, seed=1) as server:
        host = await LGMPClient.connect("127.0.0.1", server.port)
        code = await host.host_room()
        player = await LGMPClient.connect("127.0.0.1", server.port)
        await player.join(code)

        def remove(self, member, now, reason):
            raise RuntimeError("a bug in Room.remove")

        monkeypatch.setattr(Room, "remove", remove)
        await player.aclose()
        await wait_until(lambda: server.open_connections == 1, 5)
        monkeypatch.undo()
        newcomer = await LGMPClient.connect("127.0.0.1", server.port)
        with trio.fail_after(5):
            assert len(await newcomer.host_room()) == 4


async def test_a_bug_in_one_rooms_timer_does_not_lose_another_rooms_outputs(lgmp_server, monkeypatch):
    import dataclasses

    net = await lgmp_server(limits=dataclasses.replace(TEST_LIMITS, lobby_idle=0.5))
    host_a, code_a = await net.host()
    host_b, code_b = await net.host()
    original = Room.tick

    def tick(self, now):
        if self.code == code_b:
            raise RuntimeError("a bug in room B's timer")
        return original(self, now)

    monkeypatch.setattr(Room, "tick", tick)
    time.sleep(1.0)  # a busy event loop: both lobbies are overdue when the timer task next runs
    # Room A's lobby idled out: its host is sent RSET and closed.
    assert await until_closed(host_a, 3) == [Reset()]


# --------------------------------------------------------------------------- paths that work (coverage)


async def test_partial_writes_and_barriers_keep_every_byte_in_order(nursery):
    """Bytes written directly, bytes after a partial write, and bytes held by a barrier
    reach the peer exactly once and in order; queued never overflows meanwhile."""
    server = LGMPServer(limits=Limits(send_queue=1000))
    server._nursery = nursery
    peer, other_end = socketpair_peer(server)
    barrier = trio.Event()
    chunks = [bytes([65 + i % 26]) * (7000 + 13 * i) for i in range(40)]
    server._send_out(peer, chunks[:10])  # more than the buffers take: a partial write, the rest backlogged
    server._hold(peer, barrier)
    server._send_out(peer, chunks[10:20])  # held behind the backlog and the barrier
    assert any(isinstance(item, trio.Event) for item in peer.backlog)
    for chunk in chunks[20:]:
        server._write(peer, chunk, 1)  # one packet at a time, all queued
    expected = b"".join(chunks)
    first = sum(map(len, chunks[:10]))
    assert await read_exactly(other_end, first) == expected[:first]
    with trio.move_on_after(0.2):  # nothing after the barrier moves until it is set
        await other_end.recv(1)
        pytest.fail("bytes went past a barrier that was not set")
    barrier.set()
    assert await read_exactly(other_end, len(expected) - first) == expected[first:]
    await wait_until(lambda: peer.flushed is None)
    assert peer.backlog == [] and peer.closing is None
    other_end.close()


async def test_a_stuck_store_holds_the_bytes_only_for_store_wait(autojump_clock):
    release = threading.Event()

    def stuck_store(finished, started, ended):
        release.wait(60)

    async with serving(limits=TEST_LIMITS, seed=1, on_game_finished=stuck_store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
                client, peer = await connected_peer(server)
                bystander, other_peer = await connected_peer(server)
                t0 = trio.current_time()
                server._carry_out([Deliver((peer.member,), Reset()), finished_game(), Deliver((other_peer.member,), Reset())])
                # Every recipient of the batch is held (the barrier is per batch, not per room).
                assert await recv(client, STORE_WAIT + 5) == Reset()
                assert trio.current_time() - t0 == pytest.approx(STORE_WAIT, abs=0.5)
                assert await recv(bystander, 1) == Reset()
                release.set()
                await wait_until(lambda: peer.flushed is None and other_peer.flushed is None)
                await client.aclose()
                await bystander.aclose()
                await wait_until(lambda: not server._peers)
        finally:
            release.set()


async def test_a_write_error_closes_only_that_connection(net):
    host, code = await net.host()
    ann = await net.player(code, "Ann", 1)
    bob = await net.player(code, "Bob", 2)
    for client in (host, ann, bob):
        await drain_updates(client)
    room = net.server.hub.rooms[code]
    net.server._peers[room.seats[1].member].stream.socket.shutdown(socket.SHUT_WR)  # EPIPE from now on
    await bob.send(ReadyRequest("Bob", 5))  # broadcast to the host and Ann: the write to Ann fails
    assert await recv(bob) == ReadyResponse(ReadyAnswer.ACCEPTED, (1, 5, 0, 0, 0, 0))
    assert await drain_updates(host, 0.3) == [update((1, 5, 0, 0, 0, 0)), update((0, 5, 0, 0, 0, 0))]
    await wait_until(lambda: net.server.open_connections == 2, 5)
    assert 1 not in room.seats
    assert await recv(bob) == update((0, 5, 0, 0, 0, 0))


async def test_a_full_send_queue_drops_the_backlog_and_closes(nursery):
    server = LGMPServer(limits=Limits(send_queue=4))
    server._nursery = nursery
    peer, other_end = socketpair_peer(server)
    big = b"y" * 200_000
    server._write(peer, big, 1)  # partial: 1 queued
    for _ in range(3):
        server._write(peer, b"z", 1)  # 2, 3, 4 queued: at the limit, still open
    assert peer.closing is None and peer.queued == 4
    server._write(peer, b"z", 1)  # 5 > 4
    assert peer.closing is not None and "send queue full" in peer.closing
    assert peer.backlog == [] and peer.queued == 0
    await peer.stream.aclose()  # what _run_peer does next; the flusher must end quietly
    await wait_until(lambda: peer.flushed is None)
    other_end.close()


async def test_shutdown_with_a_game_being_stored_commits_it_and_closes_everyone():
    stored = []

    def store(finished, started, ended):
        time.sleep(0.2)  # real time: the store is still busy when shutdown starts
        stored.append(finished.room)

    async with serving(limits=TEST_LIMITS, seed=1, on_game_finished=store) as server:
        client, peer = await connected_peer(server)
        server._carry_out([Deliver((peer.member,), Reset()), finished_game()])
        await server.shutdown()
        assert stored == ["ROOM"]
        assert await until_closed(client) == [Reset()]
        assert server.open_connections == 0
