"""Faults and limits over real loopback sockets: leavers, rejoin, idle players, host
leaving, floods, slow or silent clients, and shutdown. Time is trio's mock clock
(``autojump_clock``) wherever a timeout matters, so nothing here sleeps for real."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time

import pytest
import trio

from lgmp.clients.bot import BotBrain, play_bot
from lgmp.clients.client import ConnectionClosed, LGMPClient
from lgmp.limits import Limits
from lgmp.wire.packets import (
    CardDealt,
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
from lgmp.game.rules import CARD_SPACES, SpaceKind
from lgmp.wire.codec import encode
from lgmp.server.shell import LGMPServer
from tests.conftest import until_closed


async def start_server(nursery: trio.Nursery, **limits) -> tuple[LGMPServer, int]:
    server = LGMPServer(limits=Limits(**limits), seed=7)
    port = await nursery.start(server.serve, "127.0.0.1", 0)
    return server, port


async def connect(port: int) -> LGMPClient:
    return await LGMPClient.connect("127.0.0.1", port)


async def seated(port: int, code: str, name: str, avatar: int) -> LGMPClient:
    client = await connect(port)
    assert await client.join(code) is JoinAnswer.PLAYER
    assert await client.ready(name, avatar) is ReadyAnswer.ACCEPTED
    return client


async def host_until_final(host: LGMPClient, ready: int) -> tuple[FinalResults, list]:
    """Start once ``ready`` players are ready; every packet up to the RSET after FINL."""
    seen = []
    while sum(1 for a in host.avatars if a) < ready:
        seen.append(await host.receive())
    await host.send(StartGame())
    final = None
    while True:
        packet = await host.receive()
        seen.append(packet)
        if isinstance(packet, FinalResults):
            final = packet
        if isinstance(packet, Reset) and final is not None:
            return final, seen


# --- leaving -------------------------------------------------------------------------


async def test_player_leaving_the_lobby_frees_seat_and_avatar(nursery):
    _, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 3)
    bob = await seated(port, code, "Bob", 4)
    await host.wait_for(lambda p: isinstance(p, ReadyResponse) and p.avatars[1] == 4)
    await ann.aclose()
    update = await host.wait_for(lambda p: isinstance(p, ReadyResponse) and p.avatars[0] == 0)
    assert update == ReadyResponse(0, (0, 4, 0, 0, 0, 0))
    assert (await bob.wait_for(ReadyResponse)).avatars == (0, 4, 0, 0, 0, 0)
    # The avatar and seat 1 are free again.
    cid = await seated(port, code, "Cid", 3)
    assert cid.seat == 1


async def test_host_leaving_resets_and_closes_everyone_and_frees_the_code(nursery):
    server, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    bob = await seated(port, code, "Bob", 2)
    await host.aclose()
    for player in (ann, bob):
        packets = await until_closed(player)
        assert packets[-1] == Reset()
    late = await connect(port)
    assert await late.join(code) is JoinAnswer.ROOM_NOT_FOUND
    assert code not in server.hub.rooms


async def test_host_leaving_mid_game_resets_players(nursery, autojump_clock):
    _, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    await host.send(StartGame())
    await ann.wait_for(GameUpdate)
    await host.aclose()
    assert (await until_closed(ann))[-1] == Reset()


async def test_leaver_mid_game_is_played_after_grace_and_can_rejoin(nursery, autojump_clock):
    _, port = await start_server(nursery, leave_grace=5, turn_timeout=0)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    bob = await seated(port, code, "Bob", 2)
    await host.send(StartGame())
    start = await ann.wait_for(GameUpdate)
    assert start.turn == 1
    await ann.aclose()
    left_at = trio.current_time()
    # Nobody spins for seat 1: after the grace the server does.
    await host.wait_for(lambda p: isinstance(p, GameUpdate) and p.occupancy[0] < 2)
    assert trio.current_time() - left_at == pytest.approx(5, abs=0.5)
    # Ann comes back: JOIN is answered 2 while her seat is vacant, REDY reclaims it.
    back = await connect(port)
    assert await back.join(code) is JoinAnswer.PLAYER
    assert await back.ready("ANN", 1) is ReadyAnswer.ACCEPTED  # names match case-insensitively
    resync = await back.wait_for(GameUpdate)
    assert resync == host.last_game
    # She plays on to the end with a bot brain; so does Bob.
    final = await _play_out([back, bob], host, seats=(1, 2))
    assert sorted(p for p in final.places if p) == [1, 2]


async def _play_out(players: list[LGMPClient], host: LGMPClient, seats) -> FinalResults:
    """Bot brains play ``players`` (already seated, game running) until FINL at the host."""
    async def run(client: LGMPClient, seat: int) -> None:
        brain = BotBrain(seat, random.Random(seat))
        if client.last_game is not None:  # the GAME already received
            for reply in brain.react(client.last_game):
                await client.send(reply)
        try:
            while True:
                packet = await client.receive()
                if isinstance(packet, Reset):
                    return
                for reply in brain.react(packet):
                    await client.send(reply)
        except ConnectionClosed:
            return

    async with trio.open_nursery() as nursery:
        for client, seat in zip(players, seats):
            nursery.start_soon(run, client, seat)
        final = await host.wait_for(FinalResults)
    return final


async def test_rejoin_with_a_wrong_name_or_avatar_is_answered_5(nursery, autojump_clock):
    _, port = await start_server(nursery, leave_grace=5)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    bob = await seated(port, code, "Bob", 2)  # noqa: F841 - kept open: the room lives on
    await host.send(StartGame())
    await ann.wait_for(GameUpdate)
    await ann.aclose()
    intruder = await connect(port)
    assert await intruder.join(code) is JoinAnswer.PLAYER
    assert await intruder.ready("Ann", 2) is ReadyAnswer.ALREADY_TAKEN
    assert await intruder.ready("Eve", 1) is ReadyAnswer.ALREADY_TAKEN
    assert await intruder.ready("Ann", 1) is ReadyAnswer.ACCEPTED
    # With no vacant seat left, a JOIN now is answered 5.
    late = await connect(port)
    assert await late.join(code) is JoinAnswer.GAME_STARTED


async def test_rejoiner_gets_the_card_it_still_owes(nursery, autojump_clock):
    _, port = await start_server(nursery, leave_grace=30, turn_timeout=0)
    host = await connect(port)
    code = await host.host_room()
    players = [await seated(port, code, name, avatar) for name, avatar in (("Ann", 1), ("Bob", 2))]
    await host.send(StartGame())
    # Spin until someone lands on a card space that asks everyone (YTB or DYK).
    while True:
        game = await host.wait_for(GameUpdate)
        if game.space in (SpaceKind.YOURE_THE_BOSS, SpaceKind.DID_YOU_KNOW):
            break
        if game.space in CARD_SPACES:
            card = await host.wait_for(CardDealt)
            mover = players[game.turn - 1]
            brain = BotBrain(game.turn, random.Random(0))
            for reply in brain.react(card):
                await mover.send(reply)
            continue
        await players[game.turn - 1].send(Spin(4))
    card = await host.wait_for(CardDealt)
    # Bob leaves without answering, and comes back within the grace.
    await players[1].aclose()
    bob = await connect(port)
    assert await bob.join(code) is JoinAnswer.PLAYER
    assert await bob.ready("Bob", 2) is ReadyAnswer.ACCEPTED
    assert await bob.wait_for(GameUpdate) == game
    assert await bob.wait_for(CardDealt) == card


async def test_every_player_leaving_ends_the_room(nursery, autojump_clock):
    server, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    bob = await seated(port, code, "Bob", 2)
    await host.send(StartGame())
    await host.wait_for(GameUpdate)
    await ann.aclose()
    await bob.aclose()
    assert (await until_closed(host))[-1] == Reset()
    assert code not in server.hub.rooms


# --- a client killed at each phase: the others still get their FINL -------------------


def _kill_in_lobby(packet, seat):
    return isinstance(packet, ReadyResponse)


def _kill_on_own_turn(packet, seat):
    return isinstance(packet, GameUpdate) and packet.turn == seat and packet.space not in CARD_SPACES


def _kill_with_pending_card(packet, seat):
    return isinstance(packet, CardDealt) and packet.kind in CARD_SPACES


def _kill_before_career(packet, seat):
    return isinstance(packet, CardDealt) and packet.kind == SpaceKind.FINISH


@pytest.mark.parametrize(
    "kill_when", [_kill_in_lobby, _kill_on_own_turn, _kill_with_pending_card, _kill_before_career],
    ids=["lobby", "own-turn", "pending-card", "career-choice"],
)
async def test_client_killed_at_any_phase_game_still_finishes(nursery, autojump_clock, kill_when):
    _, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    victim = await seated(port, code, "Vic", 6)
    seat = victim.seat

    async def victim_plays() -> None:
        brain = BotBrain(seat, random.Random(3))
        while True:
            packet = await victim.receive()
            if kill_when(packet, seat) or isinstance(packet, Reset):
                await victim.aclose()
                return
            for reply in brain.react(packet):
                await victim.send(reply)

    if kill_when is _kill_in_lobby:
        await victim.aclose()
    else:
        nursery.start_soon(victim_plays)
    bots = []
    async with trio.open_nursery() as bots_nursery:
        async def bot(i):
            bots.append(await play_bot("127.0.0.1", port, code, name=f"Bot{i}", seed=i))
        for i in range(2):
            bots_nursery.start_soon(bot, i)
            await trio.sleep(0.01)
        ready = 2 if kill_when is _kill_in_lobby else 3
        final, _ = await host_until_final(host, ready)
    placed = [p for p in final.places if p]
    assert sorted(placed) == list(range(1, ready + 1))
    assert all(b.results == final for b in bots)
    if kill_when is not _kill_in_lobby:
        assert final.places[seat - 1] != 0 and final.careers[seat - 1]  # the server played the seat


# --- idle players ------------------------------------------------------------------------


async def test_idle_player_is_played_after_turn_timeout(nursery, autojump_clock):
    _, port = await start_server(nursery, turn_timeout=60)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)  # noqa: F841 - never spins, never answers
    await host.send(StartGame())
    await host.wait_for(GameUpdate)
    started = trio.current_time()
    moved = await host.wait_for(GameUpdate)
    assert trio.current_time() - started == pytest.approx(60, abs=1)
    assert moved.occupancy[0] == 0
    final = await host.wait_for(FinalResults)
    assert final.places[0] == 1 and final.careers[0]


async def test_turn_timeout_zero_waits_forever(nursery, autojump_clock):
    _, port = await start_server(nursery, turn_timeout=0)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)  # noqa: F841 - kept open, idle
    await host.send(StartGame())
    while not isinstance(await host.receive(), GameUpdate):
        pass
    with trio.move_on_after(3600) as scope:
        unexpected = await host.receive()
    assert scope.cancelled_caught, unexpected


# --- limits --------------------------------------------------------------------------------


async def test_max_connections_evicts_the_oldest_connection_in_no_room_then_refuses(nursery):
    # Seated players come first: at max_connections a newcomer takes the place of the
    # oldest connection that is in no room; only when every one is in a room is it refused.
    server, port = await start_server(nursery, max_connections=3)
    idle = await connect(port)  # never joins
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    late = await connect(port)  # the server is full: the idle connection makes way
    assert await until_closed(idle) == []
    assert await late.join(code) is JoinAnswer.PLAYER
    extra = await connect(port)  # full, and everyone is in a room: refused
    assert await until_closed(extra) == []
    assert await ann.ready("Ann", 2) is ReadyAnswer.ACCEPTED  # the room plays on
    assert server.hub.connection_count == 3 and server.hub.counters.evicted_connections == 1


async def test_room_limit_answers_3(nursery):
    _, port = await start_server(nursery, max_rooms=2)
    hosts = [await connect(port) for _ in range(3)]
    await hosts[0].host_room()
    await hosts[1].host_room()
    await hosts[2].send(JoinRequest("HOST"))
    assert (await hosts[2].receive()).response == JoinAnswer.LOBBY_FULL


async def test_no_join_in_time_closes(nursery, autojump_clock):
    _, port = await start_server(nursery, join_timeout=10)
    silent = await connect(port)
    t0 = trio.current_time()
    assert await until_closed(silent, timeout=11) == []  # join_timeout is 10 s (mock clock)
    assert trio.current_time() - t0 == pytest.approx(10, abs=0.5)


async def test_refused_join_gets_a_fresh_window(nursery, autojump_clock):
    _, port = await start_server(nursery, join_timeout=10)
    client = await connect(port)
    await trio.sleep(8)
    assert await client.join("ZZZZ") is JoinAnswer.ROOM_NOT_FOUND
    await trio.sleep(8)  # 16 s after connecting, 8 s after the refusal: still open
    assert len(await client.host_room()) == 4


async def test_slowloris_packet_is_dropped_after_packet_timeout(nursery, autojump_clock):
    _, port = await start_server(nursery, packet_timeout=10)
    client = await connect(port)
    await client.host_room()
    await client.send_raw(b"RE")
    t0 = trio.current_time()
    packets = await until_closed(client, timeout=11)
    assert trio.current_time() - t0 == pytest.approx(10, abs=0.5)
    assert packets == []


async def test_packet_timeout_counts_from_the_first_byte_not_the_last(nursery, autojump_clock):
    _, port = await start_server(nursery, packet_timeout=10)
    client = await connect(port)
    await client.host_room()  # joined: only the packet timeout applies now
    t0 = trio.current_time()

    async def trickle() -> None:
        try:
            for byte in ReadyRequestBytes("Slow" * 3, 1):  # 18 bytes, one every 3 s
                await client.send_raw(bytes([byte]))
                await trio.sleep(3)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    nursery.start_soon(trickle)
    assert await until_closed(client, timeout=11) == []
    assert trio.current_time() - t0 == pytest.approx(10, abs=0.5)


async def test_byte_at_a_time_within_the_timeout_is_fine(nursery, autojump_clock):
    _, port = await start_server(nursery, packet_timeout=10)
    client = await connect(port)
    for byte in b"JOINHOST":
        await client.send_raw(bytes([byte]))
        await trio.sleep(1)
    assert (await client.receive()).response == JoinAnswer.HOST


async def test_hundreds_of_slowloris_sockets_are_dropped_on_time_while_a_game_plays(nursery, autojump_clock):
    # 300 sockets from one address: the per-source limits (tests/test_abuse.py) are off here.
    server, port = await start_server(nursery, packet_timeout=10, join_timeout=10,
                                      max_connections_per_source=0, max_unjoined_per_source=0)
    closed_at: list[float] = []

    async def slowloris() -> None:
        sock = trio.socket.socket()
        await sock.connect(("127.0.0.1", port))
        try:
            for byte in b"JOINHOST":  # one byte every 3 s: each step is in time, the packet never is
                await sock.send(bytes([byte]))
                await trio.sleep(3)
        except OSError:
            pass
        with trio.move_on_after(60):
            while await sock.recv(100):
                pass
        closed_at.append(trio.current_time())
        sock.close()

    t0 = trio.current_time()
    async with trio.open_nursery() as attack:
        for _ in range(300):
            attack.start_soon(slowloris)
        # Meanwhile a control room plays a whole game.
        host = await connect(port)
        code = await host.host_room()
        bots = []
        async with trio.open_nursery() as bots_nursery:
            async def bot(i):
                bots.append(await play_bot("127.0.0.1", port, code, name=f"Bot{i}", seed=i))
            for i in range(3):
                bots_nursery.start_soon(bot, i)
            final, _ = await host_until_final(host, 3)
        await trio.sleep_until(t0 + 9.5)
        assert server.hub.connection_count == 300 + 1  # the attackers and the host
        await trio.sleep_until(t0 + 10.5)
        assert server.hub.connection_count == 1  # every attacker dropped at its packet timeout
    assert sorted(p for p in final.places if p) == [1, 2, 3]
    assert len(closed_at) == 300


async def test_lobby_idle_closes_the_room(nursery, autojump_clock):
    server, port = await start_server(nursery, lobby_idle=1800)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    t0 = trio.current_time()
    assert (await until_closed(ann, timeout=1801))[-1] == Reset()
    assert trio.current_time() - t0 == pytest.approx(1800, abs=1)
    assert code not in server.hub.rooms


async def test_flood_closes_only_the_flooder(nursery):
    _, port = await start_server(nursery, packet_burst=50, packet_rate=20)
    host = await connect(port)
    code = await host.host_room()
    flooder = await seated(port, code, "Flo", 1)
    calm = await seated(port, code, "Cal", 2)
    await flooder.send_raw(ReadyRequestBytes("Flo", 1) * 200)
    await until_closed(flooder)
    assert await calm.ready("Cal", 3) is ReadyAnswer.ACCEPTED


def ReadyRequestBytes(name: str, avatar: int) -> bytes:
    from lgmp.wire.codec import encode

    return encode(ReadyRequest(name, avatar))


async def test_strikes_close_a_client_that_keeps_sending_what_is_not_allowed(nursery):
    _, port = await start_server(nursery, max_strikes=10, strike_window=60)
    host = await connect(port)
    code = await host.host_room()
    pest = await seated(port, code, "Pat", 1)
    for _ in range(10):
        await pest.send(Spin(3))  # no game yet: ignored, resynced, a strike each
    packets = await until_closed(pest)
    assert packets.count(ReadyResponse(0, (1, 0, 0, 0, 0, 0))) == 9  # a resync per strike; the 10th closes
    await host.wait_for(lambda p: isinstance(p, ReadyResponse) and p.avatars == (0,) * 6)  # the room saw it leave


async def test_garbage_is_cut_at_the_first_bad_tag_and_closes_only_the_sender(nursery):
    _, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    vandal = await connect(port)
    garbage = random.Random(1).randbytes(10 * 1024 * 1024)
    t0 = time.monotonic()
    with pytest.raises((trio.BrokenResourceError, trio.ClosedResourceError)):
        await vandal.send_raw(b"STRT" + garbage)  # the server stops reading at once
    assert time.monotonic() - t0 < 10
    assert await until_closed(vandal) == []
    assert await ann.ready("Ann", 2) is ReadyAnswer.ACCEPTED
    await host.wait_for(lambda p: isinstance(p, ReadyResponse) and p.avatars[0] == 2)


async def test_a_client_that_never_reads_is_closed_without_delaying_the_room(nursery):
    # Flood control off for this test: the point is the send queue.
    server, port = await start_server(nursery, send_queue=16, packet_burst=10**6, packet_rate=10**6)
    host = await connect(port)
    code = await host.host_room()
    # A raw socket with a tiny receive buffer that joins and then never reads.
    sleeper = trio.socket.socket()
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    await sleeper.connect(("127.0.0.1", port))
    from lgmp.wire.codec import encode

    await sleeper.send(encode(JoinRequest(code)) + encode(ReadyRequest("Zed", 6)))
    ann = await seated(port, code, "Ann", 1)
    room = server.hub.rooms[code]
    # Ann changes avatar back and forth: every change is broadcast to the sleeper
    # too, until its kernel buffers and then its send queue are full.
    t0 = time.monotonic()
    worst = 0.0
    avatar, changes = 1, 0
    while any(seat.name == "Zed" for seat in room.seats.values()):
        avatar = 2 if avatar == 1 else 1
        t = time.monotonic()
        assert await ann.ready("Ann", avatar) is ReadyAnswer.ACCEPTED
        worst = max(worst, time.monotonic() - t)
        changes += 1
        assert changes < 200_000, "the sleeper was never closed"
    assert worst < 1.0  # no answer to Ann waited on the sleeper
    assert time.monotonic() - t0 < 60
    # Its socket is really closed, not just out of the room: only host and Ann remain.
    with trio.fail_after(5):
        while server.open_connections > 2:
            await trio.sleep(0.01)
    sleeper.close()


async def test_shutdown_does_not_wait_forever_for_a_client_that_never_reads(nursery, autojump_clock):
    from lgmp.wire.codec import encode
    from lgmp.server.shell import FLUSH_TIMEOUT

    server, port = await start_server(nursery, shutdown_grace=2, send_queue=10**6, packet_burst=10**6, packet_rate=10**6)
    host = await connect(port)
    code = await host.host_room()
    sleeper = trio.socket.socket()
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    await sleeper.connect(("127.0.0.1", port))
    await sleeper.send(encode(JoinRequest(code)) + encode(ReadyRequest("Zed", 6)))
    ann = await seated(port, code, "Ann", 1)
    room = server.hub.rooms[code]
    zed = next(s.member for s in room.seats.values() if s.name == "Zed")
    avatar = 1
    while not server._peers[zed].conn.pending:  # until the sleeper's kernel buffers are full
        avatar = 2 if avatar == 1 else 1
        assert await ann.ready("Ann", avatar) is ReadyAnswer.ACCEPTED
    t0 = trio.current_time()
    with trio.fail_after(2 + FLUSH_TIMEOUT + 5):
        await server.shutdown()
    assert trio.current_time() - t0 <= 2 + FLUSH_TIMEOUT + 1
    assert server.open_connections == 0
    sleeper.close()


# --- shutdown -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_mid_game_sends_rset_and_exits_0(tmp_path):
    port = _free_port()
    db = tmp_path / "results.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "serve", "--no-http", "--port", str(port), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "LGMP server on" in proc.stdout.readline()

        async def clients() -> list[list]:
            host = await connect(port)
            code = await host.host_room()
            ann = await seated(port, code, "Ann", 1)
            await host.send(StartGame())
            await ann.wait_for(GameUpdate)
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                return [await until_closed(host), await until_closed(ann)]

        host_seen, ann_seen = trio.run(clients)
        assert host_seen[-1] == Reset() and ann_seen[-1] == Reset()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_reset_connection_is_closed_as_a_failed_read_and_its_room_goes_on(nursery):
    import struct

    server, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    ann = await seated(port, code, "Ann", 1)
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(encode(JoinRequest(code)))
    with trio.fail_after(5):
        while server.hub.connection_count < 3:
            await trio.sleep(0.01)
    # Close with an RST instead of a FIN: the server's next read fails (ECONNRESET).
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    with trio.fail_after(5):
        while server.stats.closed["read_failed"] + server.stats.closed["peer_closed"] < 1:
            await trio.sleep(0.01)
    assert server.stats.closed["read_failed"] == 1, server.stats.closed
    assert server.hub.connection_count == 2
    await host.send(StartGame())  # the room goes on without it
    assert isinstance(await ann.wait_for(GameUpdate), GameUpdate)


async def test_a_bug_handling_one_connections_packet_closes_that_connection_only(nursery, monkeypatch, caplog):
    server, port = await start_server(nursery)
    host = await connect(port)
    code = await host.host_room()
    victim = await connect(port)
    real_receive = server.hub.receive

    def receive(member, packet, now):
        if member == victim_member[0]:
            raise RuntimeError("a bug in the core")
        return real_receive(member, packet, now)

    victim_member = [max(server._peers)]  # the newest connection
    monkeypatch.setattr(server.hub, "receive", receive)
    await victim.send(JoinRequest(code))
    assert await until_closed(victim) == []
    assert server.stats.closed["internal_error"] == 1
    assert "handler error" in caplog.text and "a bug in the core" in caplog.text
    # Everyone else is still served: the host's room takes a player.
    monkeypatch.setattr(server.hub, "receive", real_receive)
    ann = await seated(port, code, "Ann", 1)
    assert ann.seat == 1
