"""The shell's write path over loopback sockets: direct writes and the flusher, commit
holds and the store, shutdown, and what a failure there may take down.

The byte-level rules (partial writes, the packet count, holds, the send-queue bound,
what closing keeps or drops) are the ``Connection``'s and are tested without sockets in
tests/test_connection.py; here the real server moves real bytes. Where a test needs an
exact batch of the core's events (a finished game, two in one batch), it hands them to
the shell's entry for them, ``LGMPServer._run`` / ``_carry_out``, and it watches
``server._peers[member].conn``. Several tests began as reproductions of bugs (a flusher
outliving its socket, a socket left open when its flusher did not end in time, a FINL
lost at shutdown once a slow store released it, one hold shared by two games, reordering
when a peer is dropped mid-batch, exceptions escaping into the server's nursery, one
room's timer bug losing another's outputs).

Moved or dropped, with where their intent is now covered:

* "queued returns to zero after a coalesced backlog is written" and "partial writes and
  barriers keep every byte in order": test_connection.py (partial writes, holds, the
  stateful send-queue model); the socket side is
  ``test_partial_writes_the_flusher_and_a_hold_keep_every_byte_in_order`` below.
* "a full send queue drops the backlog and closes": test_connection.py
  (``test_exactly_send_queue_packets_stay_open_one_more_closes_and_drops_the_queue``);
  over sockets, test_faults.py ``test_a_client_that_never_reads_is_closed_without_delaying_the_room``.
* "a write error closes only that connection": merged into
  ``test_a_peer_dropped_mid_broadcast_does_not_reorder_the_others`` below.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
import trio

from lgmp.clients.client import LGMPClient
from lgmp.rooms.events import CloseMember, Deliver, StoreGame
from lgmp.rooms.hub import Hub
from lgmp.rooms.room import Room
from lgmp.server.shell import FLUSH_TIMEOUT, STORE_WAIT, LGMPServer
from lgmp.wire.packets import FinalResults, GameUpdate, ReadyAnswer, ReadyRequest, ReadyResponse, Reset
from tests.conftest import TEST_LIMITS, drain_updates, recv, silent, until_closed, update

#: Clients here stay unjoined (the batches are handed to the shell directly): no JOIN
#: timeout may close them while a test waits out STORE_WAIT.
LIMITS = dataclasses.replace(TEST_LIMITS, join_timeout=1000.0)
FINL = FinalResults((1, 2, 0, 0, 0, 0), ("Creative Director", "Media Planner", "", "", "", ""), (132, 54, 0, 0, 0, 0))
BOARD = (0,) * 56

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


async def wait_until(condition, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def finished_game(room: str, hold: tuple[int, ...]) -> StoreGame:
    """A stand-in for a finished game: the shell reads only ``record.duration`` and
    ``record.ended_at``; ``hold`` are the members whose later packets wait for it."""
    record = SimpleNamespace(duration=1.0, ended_at=trio.current_time())
    return StoreGame(room, 1, record, hold)


async def connected(server: LGMPServer, *, receive_buffer: int | None = None) -> tuple[LGMPClient, int]:
    """A client connected to ``server`` (not joined) and its member id there.
    ``receive_buffer`` shrinks the client's socket buffer, so the server's writes fill it."""
    before = set(server._peers)
    sock = trio.socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", server.port))
    client = LGMPClient(trio.SocketStream(sock))
    await wait_until(lambda: set(server._peers) - before, 5)
    (member,) = set(server._peers) - before
    return client, member


def stuck_store() -> tuple[threading.Event, Callable[..., None]]:
    """A store that blocks (a stuck disk) until the event is set."""
    release = threading.Event()

    def store(game, started, ended):
        release.wait(60)

    return release, store


# --------------------------------------------------------------------------- the flusher


async def test_partial_writes_the_flusher_and_a_hold_keep_every_byte_in_order():
    """Bytes written directly, bytes the flusher writes after a partial write, and bytes
    held for a commit reach the client exactly once and in order; the count of queued
    packets returns to zero and the flusher ends."""
    release, store = stuck_store()
    limits = dataclasses.replace(LIMITS, send_queue=100_000)
    async with serving(limits=limits, seed=1, on_game_finished=store) as server:
        try:
            client, member = await connected(server, receive_buffer=4096)
            peer = server._peers[member]
            peer.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            games = [GameUpdate(i // 256, i % 256, BOARD) for i in range(6000)]  # 62 bytes each
            # One batch: 2000 packets, a finished game holding this client, 2000 more.
            server._carry_out(
                [Deliver((member,), g) for g in games[:2000]]
                + [finished_game("ROOM", (member,))]
                + [Deliver((member,), g) for g in games[2000:4000]]
            )
            assert peer.flusher is not None and peer.conn.wants_write, "expected a partial write"
            # A second batch while the flusher runs: queued behind it, never written ahead.
            server._carry_out([Deliver((member,), g) for g in games[4000:]])
            got = [await recv(client) for _ in range(2000)]
            assert got == games[:2000]
            await silent(client, 0.3)  # nothing behind the hold moves until the game is stored
            assert peer.conn.held and peer.conn.queued_packets == 4000
            release.set()
            got = [await recv(client) for _ in range(4000)]
            assert got == games[2000:]
            await wait_until(lambda: peer.flusher is None, 5)
            assert peer.conn.queued_packets == 0 and not peer.conn.pending and peer.conn.closing is None
            await client.aclose()
        finally:
            release.set()


async def test_a_client_leaving_while_its_finl_is_held_does_not_crash_the_server(autojump_clock):
    release, store = stuck_store()
    async with serving(limits=LIMITS, seed=1, on_game_finished=store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
            client, member = await connected(server)
            peer = server._peers[member]
            server._carry_out([finished_game("ROOM", (member,)), Deliver((member,), FINL), Deliver((member,), Reset())])
            assert peer.conn.held and peer.flusher is not None  # the flusher waits at the hold
            await client.aclose()
            # The server gives the held FINL its bounded flush, then closes the socket;
            # its flusher lets go of the socket first.
            await wait_until(lambda: member not in server._peers, STORE_WAIT + FLUSH_TIMEOUT + 2)
            assert peer.flusher is None
            assert peer.conn.closing == "peer closed"
            other = await LGMPClient.connect("127.0.0.1", server.port)  # still serving
            with trio.fail_after(5):
                assert len(await other.host_room()) == 4
            await other.aclose()
        finally:
            release.set()


async def test_a_flusher_waiting_at_a_hold_ends_with_its_connection(autojump_clock):
    # The connection is dropped (its send queue overflowed) while its flusher waits at
    # a hold: the flusher must end with the socket, not wait for a store that may never
    # finish for a connection that is gone.
    release, store = stuck_store()
    limits = dataclasses.replace(LIMITS, send_queue=3)
    async with serving(limits=limits, seed=1, on_game_finished=store) as server:
        try:
            client, member = await connected(server)
            peer = server._peers[member]
            server._carry_out([finished_game("ROOM", (member,)), Deliver((member,), FINL)])
            assert peer.conn.held and peer.flusher is not None
            await wait_until(lambda: peer.wake is not None, 1)  # the flusher waits at the hold
            server._run([Deliver((member,), Reset())] * 3)  # 4 packets queued > 3
            assert peer.conn.closing == "send queue full (3 packets)" and not peer.conn.pending
            assert await until_closed(client, FLUSH_TIMEOUT) == []
            await wait_until(lambda: member not in server._peers, 2)
            await wait_until(lambda: peer.flusher is None, 2)
            assert not release.is_set()  # the game is still being stored: that did not matter
        finally:
            release.set()


async def test_a_client_that_never_reads_has_its_socket_closed_after_the_bounded_flush(autojump_clock):
    # The core closes a client whose kernel buffers are full: its queue gets
    # FLUSH_TIMEOUT to drain, then the socket is closed even though the flusher is
    # still waiting for it to become writable.
    limits = dataclasses.replace(LIMITS, send_queue=100_000)
    async with serving(limits=limits, seed=1) as server:
        client, member = await connected(server, receive_buffer=4096)
        peer = server._peers[member]
        peer.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sent = 0
        while not peer.conn.pending:  # until the kernel takes no more
            assert sent < 100_000, "the kernel never stopped taking bytes"
            server._run([Deliver((member,), GameUpdate(0, 0, BOARD))] * 100)
            sent += 100
            await trio.sleep(0)
        assert peer.flusher is not None
        t0 = trio.current_time()
        server._run([CloseMember(member, "the room closed")])
        with trio.move_on_after(FLUSH_TIMEOUT + 5):
            while peer.stream.socket.fileno() != -1:
                await trio.sleep(0.01)
        assert peer.stream.socket.fileno() == -1, "the socket was left open"
        assert trio.current_time() - t0 <= FLUSH_TIMEOUT + 1 + 0.5  # the flush, then 1 s for the flusher
        assert member not in server._peers
        # Reading now, the client gets what the kernel had taken, then the end.
        got = await until_closed(client, 5)
        assert 0 < len(got) < sent and set(got) == {GameUpdate(0, 0, BOARD)}
        await wait_until(lambda: peer.flusher is None, 2)


# --------------------------------------------------------------------------- commit holds


async def test_a_stuck_store_holds_the_finl_until_the_game_is_stored(monkeypatch):
    # Real time (a mock clock runs ahead while the store's thread works): STORE_WAIT,
    # after which the FINL used to go anyway, is made short and then waited out.
    monkeypatch.setattr("lgmp.server.shell.STORE_WAIT", 0.3)
    release, store = stuck_store()
    async with serving(limits=LIMITS, seed=1, on_game_finished=store) as server:
        try:
            player, member = await connected(server)
            bystander, other = await connected(server)  # not in the game
            conn = server._peers[member].conn
            server._carry_out([
                Deliver((member, other), update((1, 0, 0, 0, 0, 0))),  # before the game ended: not held
                finished_game("ROOM", (member,)),
                Deliver((member,), FINL),
                Deliver((member,), Reset()),
                Deliver((other,), Reset()),
            ])
            # Only the game's members are held, and only what was queued after StoreGame.
            assert await recv(bystander, 1) == update((1, 0, 0, 0, 0, 0))
            assert await recv(bystander, 1) == Reset()
            assert await recv(player, 1) == update((1, 0, 0, 0, 0, 0))
            assert conn.held
            # The disk is stuck: however long that lasts, no FINL for a game not stored
            # (it used to go after STORE_WAIT).
            with trio.move_on_after(1.5) as waited:
                await recv(player, 10)
            assert waited.cancelled_caught and conn.held
            release.set()  # stored: now the FINL, then the RSET behind it
            assert await recv(player, 5) == FINL
            assert await recv(player, 1) == Reset()
            await wait_until(lambda: server._peers[member].flusher is None, 2)
            assert not conn.pending and conn.closing is None
        finally:
            release.set()


async def test_two_games_finished_in_one_batch_hold_each_members_bytes_until_its_own_game_is_committed():
    # hub.tick fires every room that is due in one call, so two games can finish in
    # one batch; each has its own hold. A member held by both waits for both.
    stored: list[str] = []
    release_b = threading.Event()

    def store(game, started, ended):
        if game.room == "BBBB":
            release_b.wait(10)
        stored.append(game.room)

    async with serving(limits=LIMITS, seed=1, on_game_finished=store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
            a, member_a = await connected(server)
            b, member_b = await connected(server)
            server._carry_out([
                finished_game("AAAA", (member_a,)),
                Deliver((member_a,), FINL),
                finished_game("BBBB", (member_a, member_b)),
                Deliver((member_a, member_b), Reset()),
            ])
            assert await recv(a) == FINL
            assert stored == ["AAAA"], "a packet went out before its game was committed"
            await silent(a, 0.3)  # its Reset waits for BBBB too
            await silent(b, 0.1)
            release_b.set()
            assert await recv(b) == Reset()
            assert await recv(a) == Reset()
            assert stored == ["AAAA", "BBBB"]
        finally:
            release_b.set()


# --------------------------------------------------------------------------- shutdown


async def test_shutdown_while_a_slow_store_holds_a_finl_flushes_it_and_closes_everyone():
    # Real time: the store takes longer than shutdown_grace (0.5 s), not longer than
    # shutdown waits for the store (shutdown_grace + 5 s).
    release, store = stuck_store()

    async def release_later():
        await trio.sleep(1.0)
        release.set()

    async with serving(limits=LIMITS, seed=1, on_game_finished=store) as server:
        try:  # (inside: the store's thread is shielded, so serving's exit waits for it)
            client, member = await connected(server)
            server._carry_out([finished_game("ROOM", (member,)), Deliver((member,), FINL), Deliver((member,), Reset())])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(release_later)
                with trio.fail_after(LIMITS.shutdown_grace + 5 + 2):
                    await server.shutdown()
            assert release.is_set()
            assert await until_closed(client) == [FINL, Reset()]
            assert server.open_connections == 0
        finally:
            release.set()


async def test_shutdown_with_a_game_being_stored_commits_it_and_closes_everyone():
    stored = []

    def store(game, started, ended):
        time.sleep(0.2)  # real time: the store is still busy when shutdown starts
        stored.append(game.room)

    async with serving(limits=LIMITS, seed=1, on_game_finished=store) as server:
        player, member = await connected(server)
        bystander, _ = await connected(server)
        server._carry_out([finished_game("ROOM", (member,)), Deliver((member,), FINL)])
        with trio.fail_after(LIMITS.shutdown_grace + 5 + 2):
            await server.shutdown()
        assert stored == ["ROOM"]
        assert await until_closed(player) == [FINL]
        assert await until_closed(bystander) == []
        assert server.open_connections == 0


# --------------------------------------------------------------------------- failures stay local


async def test_a_peer_dropped_mid_broadcast_does_not_reorder_the_others(net):
    host, code = await net.host()
    ann = await net.player(code, "Ann", 1)  # seat 1
    bob = await net.player(code, "Bob", 2)  # seat 2
    cid = await net.player(code, "Cid", 3)  # seat 3
    for client in (host, ann, bob, cid):
        await drain_updates(client)
    room = net.server.hub.rooms[code]
    ann_member = room.seats[1].member
    # Ann's socket stops taking writes (as after an RST): the next write to it fails with EPIPE.
    net.server._peers[ann_member].stream.socket.shutdown(socket.SHUT_WR)
    # Cid's change goes to Cid, then to (host, Ann, Bob); the write to Ann fails on the way.
    await cid.send(ReadyRequest("Cid", 4))
    assert await recv(cid) == ReadyResponse(ReadyAnswer.ACCEPTED, (1, 2, 4, 0, 0, 0))
    assert await drain_updates(host, 0.3) == [update((1, 2, 4, 0, 0, 0)), update((0, 2, 4, 0, 0, 0))]
    # Bob must see the same history: the update that still shows Ann, then the room
    # after her departure (told to the hub after the batch, never from inside it).
    assert await drain_updates(bob, 0.3) == [update((1, 2, 4, 0, 0, 0)), update((0, 2, 4, 0, 0, 0))]
    # The failed write closed Ann's connection and no other; her seat is free.
    await wait_until(lambda: net.server.open_connections == 3, 5)
    assert ann_member not in net.server._peers and 1 not in room.seats
    assert await recv(cid) == update((0, 2, 4, 0, 0, 0))


async def test_a_bug_while_handling_a_disconnect_closes_only_that_connection(monkeypatch):
    async with serving(limits=LIMITS, seed=1) as server:
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
        await silent(host, 0.1)  # the host stays connected, told nothing
        newcomer = await LGMPClient.connect("127.0.0.1", server.port)
        with trio.fail_after(5):
            assert len(await newcomer.host_room()) == 4
        assert server.open_connections == 2


async def test_a_bug_in_one_rooms_timer_does_not_lose_another_rooms_outputs(lgmp_server, monkeypatch):
    net = await lgmp_server(limits=dataclasses.replace(TEST_LIMITS, lobby_idle=1000.0))
    host_a, code_a = await net.host()
    host_b, code_b = await net.host()
    original = Room.tick

    def tick(self, now):
        if self.code == code_b:
            raise RuntimeError("a bug in room B's timer")
        return original(self, now)

    monkeypatch.setattr(Room, "tick", tick)
    # Both lobbies are overdue in one timer batch, as when the timer task wakes late.
    server = net.server
    server._run(server.hub.tick(trio.current_time() + 1500))
    # Room A's lobby idled out: its host is sent RSET and closed. Room B's bug closes B only.
    assert await until_closed(host_a, 3) == [Reset()]
    assert await until_closed(host_b, 3) == [Reset()]
    assert not server.hub.rooms
    _, code = await net.host()  # still serving
    assert len(code) == 4


async def test_a_bug_escaping_the_hubs_tick_does_not_stop_the_timers(lgmp_server, monkeypatch, autojump_clock):
    net = await lgmp_server(limits=dataclasses.replace(TEST_LIMITS, lobby_idle=5.0))
    host, code = await net.host()
    original = Hub.tick
    failed = []

    def tick(self, now):
        if not failed:
            failed.append(now)
            raise RuntimeError("a bug in the hub's timers")
        return original(self, now)

    monkeypatch.setattr(Hub, "tick", tick)
    t0 = trio.current_time()
    assert await until_closed(host, 10) == [Reset()]  # the lobby still idles out
    assert failed and trio.current_time() - t0 == pytest.approx(5.0, abs=0.5)
    assert code not in net.server.hub.rooms
