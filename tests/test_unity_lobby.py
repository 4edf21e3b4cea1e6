"""The Unity client's 2022 lobby against ``LGMPServer(dialect="unity-2022")``, over loopback.

The clients are ``tests.unity_model.UnityClient``: the Unity client's ClientTCP as
written (one packet handled per read, the rest of the read thrown away, its own
length checks). Every test also checks what that client cannot see: nothing it was
sent was thrown away, nothing made it log an error, nothing left it stuck.

The server paces 2022 packets (``unity_packet_gap``, 50 ms); a mock clock that jumps
when everything waits keeps the tests fast without changing what goes on the wire.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from lgmp.clients.client import LGMPClient
from lgmp.limits import Limits
from lgmp.wire.packets import JoinAnswer, ReadyAnswer, ReadyResponse
from lgmp.wire.unity2022 import (
    HostUpdate,
    Lobby,
    PlayerUpdate,
    UnityGameUpdate,
    UnityJoinResponse,
    UnityReadyResponse,
)
from tests.conftest import TEST_LIMITS, recv
from tests.unity_model import HostAvatar, UnityClient

GAP = Limits().unity_packet_gap
ALL_FREE = (1, 1, 1, 1, 1, 1)


@pytest.fixture
def clock():
    # Jump to the next deadline once nothing has happened for 10 ms of real time: long
    # after loopback bytes have arrived, so reads still see one paced packet each.
    return trio.testing.MockClock(autojump_threshold=0.01)


@pytest.fixture
async def unity(lgmp_server, nursery):
    """A server whose main port speaks unity-2022 and a second port v1.0; the models made."""
    net = await lgmp_server(limits=TEST_LIMITS, dialect="unity-2022", also_listen=[(0, "v1.0")])
    made: list[UnityClient] = []

    class Unity:
        server = net.server
        port = net.port
        v1_port = net.server.listening[1][0]

        @staticmethod
        async def client() -> UnityClient:
            model = await UnityClient.connect(net.port, nursery)
            made.append(model)
            return model

        @staticmethod
        async def v1_client() -> LGMPClient:
            client = await LGMPClient.connect("127.0.0.1", net.server.listening[1][0])
            net.clients.append(client)
            return client

        @staticmethod
        async def host() -> tuple[UnityClient, str]:
            host = await Unity.client()
            await host.on_button_host()
            (answer,) = await host.read_packets(1)
            assert isinstance(answer, UnityJoinResponse) and answer.response == JoinAnswer.HOST
            assert host.is_host and host.screen == "room" and host.connected_room == answer.room
            return host, answer.room

        @staticmethod
        async def joined(code: str) -> UnityClient:
            player = await Unity.client()
            await player.on_connect_room(code)
            (answer,) = await player.read_packets(1)
            assert isinstance(answer, UnityJoinResponse) and answer.response == JoinAnswer.PLAYER
            assert player.screen == "join" and player.connected_room == code
            return player

        @staticmethod
        async def ready(player: UnityClient, name: str, avatar: int) -> list:
            """Press avatar and submit: the REDY answer and the PUPD after it."""
            player.on_choose_avatar(avatar)
            player.on_username_end_edit(name)
            await player.on_submit_player()
            return await player.read_packets(2)

    assert net.server.listening == [(net.port, "unity-2022"), (Unity.v1_port, "v1.0")]
    yield Unity
    for model in made:
        assert model.discarded == [], "a packet arrived in the same read as another and was lost"
        assert model.errors == []
        assert not model.stuck
        times = model.read_times
        assert all(b - a >= GAP - 1e-6 for a, b in zip(times, times[1:])), "two packets closer than the gap"
        with trio.move_on_after(1):
            await model.aclose()


async def test_host_sees_each_player_join_then_ready_with_name_and_avatar(unity, clock):
    host, code = await unity.host()
    names = {1: ("Maya", 3), 2: ("Jonas", 1), 3: ("Ana", 6)}
    for seat, (name, avatar) in names.items():
        player = await unity.joined(code)
        assert await host.read_packets(1) == [Lobby(seat)]
        assert host.player_num_text == f"Players in room: {seat}"
        assert host.curr_avatars[-1] == HostAvatar(seat - 1)  # "Waiting..." at position seat
        await unity.ready(player, name, avatar)
        assert await host.read_packets(1) == [HostUpdate(seat, avatar, name)]
    assert host.curr_avatars == [HostAvatar(seat - 1, name, avatar - 1) for seat, (name, avatar) in names.items()]
    await host.quiet()


async def test_players_see_the_free_avatars_and_their_own_acceptance(unity, clock):
    host, code = await unity.host()
    maya = await unity.joined(code)
    assert maya.handled == [UnityJoinResponse(2, free=ALL_FREE)] and maya.avatar_buttons == [True] * 6

    assert await unity.ready(maya, "Maya", 3) == [UnityReadyResponse(1, 1), PlayerUpdate((1, 1, 0, 1, 1, 1))]
    assert maya.handled_bytes[1] == b"REDY\x01\x01"  # the answer, alone in its read
    assert maya.my_avatar == ("Maya", 2) and maya.avatar_buttons == [True, True, False, True, True, True]

    jonas = await unity.joined(code)
    assert jonas.handled == [UnityJoinResponse(2, free=(1, 1, 0, 1, 1, 1))]
    assert jonas.avatar_buttons == [True, True, False, True, True, True]
    await maya.quiet()  # a player joining changes no avatar: nothing for the others

    assert await unity.ready(jonas, "Jonas", 1) == [UnityReadyResponse(1, 1), PlayerUpdate((0, 1, 0, 1, 1, 1))]
    assert await maya.read_packets(1) == [PlayerUpdate((0, 1, 0, 1, 1, 1))]
    assert maya.avatar_buttons == [False, True, False, True, True, True]

    # Changing one's avatar frees the old one for everyone.
    assert await unity.ready(maya, "Maya", 5) == [UnityReadyResponse(1, 1), PlayerUpdate((0, 1, 1, 1, 0, 1))]
    assert await jonas.read_packets(1) == [PlayerUpdate((0, 1, 1, 1, 0, 1))]
    await host.read_until(lambda: len(host.handled) == 6)
    assert host.curr_avatars == [HostAvatar(0, "Maya", 4), HostAvatar(1, "Jonas", 0)]


@pytest.mark.parametrize(
    "name,avatar,answer",
    [
        ("Cleo", 2, (1, 1)),
        ("Cleo", 3, (1, 0)),  # a good name, a taken avatar: nothing changes
        ("", 2, (2, 1)),
        ("Cleopatra1234", 2, (3, 1)),
        ("Cle o", 2, (4, 1)),
        ("Cl\u00e9o", 2, (4, 1)),  # a byte over 0x7f
        ("maya", 2, (5, 1)),  # another seat's name, in any case
        ("maya", 3, (5, 0)),
        ("shit", 2, (6, 1)),
        ("Cleo", 7, (1, 0)),  # no such avatar
    ],
)
async def test_every_name_and_avatar_answer(unity, clock, name, avatar, answer):
    host, code = await unity.host()
    maya = await unity.joined(code)
    await unity.ready(maya, "Maya", 3)
    await host.read_packets(2)
    cleo = await unity.joined(code)
    await host.read_packets(1)
    if avatar == 7:  # no button makes it: a client of its own could send it
        await cleo.stream.send_all(b"REDY\x04\x07Cleo")
        replies = await cleo.read_packets(2)
    else:
        encoded = name.encode("latin-1")
        if encoded.isascii():
            replies = await unity.ready(cleo, name, avatar)
        else:
            cleo.on_choose_avatar(avatar)
            await cleo.stream.send_all(b"REDY" + bytes([len(encoded), avatar]) + encoded)
            replies = await cleo.read_packets(2)
    flags_now = (1, 0, 0, 1, 1, 1) if answer == (1, 1) else (1, 1, 0, 1, 1, 1)
    assert replies == [UnityReadyResponse(*answer), PlayerUpdate(flags_now)]
    if answer == (1, 1):
        assert cleo.my_avatar == (name, avatar - 1)
        assert await host.read_packets(1) == [HostUpdate(2, avatar, name)]
        assert await maya.read_packets(1) == [PlayerUpdate(flags_now)]
    else:
        assert cleo.my_avatar is None
        if answer[1] == 0:
            assert cleo.curr_avatar_selection == 0  # the client's own reaction to "taken"
        await host.quiet()
        await maya.quiet()


async def test_a_refused_avatar_then_a_free_one(unity, clock):
    host, code = await unity.host()
    maya = await unity.joined(code)
    await unity.ready(maya, "Maya", 3)
    jonas = await unity.joined(code)
    assert await unity.ready(jonas, "Jonas", 3) == [UnityReadyResponse(1, 0), PlayerUpdate((1, 1, 0, 1, 1, 1))]
    assert await unity.ready(jonas, "Jonas", 4) == [UnityReadyResponse(1, 1), PlayerUpdate((1, 1, 0, 0, 1, 1))]
    assert jonas.my_avatar == ("Jonas", 3)
    await host.read_until(lambda: len(host.handled) == 5)
    assert host.curr_avatars == [HostAvatar(0, "Maya", 2), HostAvatar(1, "Jonas", 3)]


async def test_a_leaving_player_frees_its_avatar_and_its_seat(unity, clock):
    host, code = await unity.host()
    maya = await unity.joined(code)
    await unity.ready(maya, "Maya", 3)
    jonas = await unity.joined(code)
    await unity.ready(jonas, "Jonas", 1)
    await maya.read_packets(1)
    await host.read_until(lambda: len(host.handled) == 5)

    await jonas.aclose()
    assert await maya.read_packets(1) == [PlayerUpdate((1, 1, 0, 1, 1, 1))]
    await host.quiet()  # the 2022 host has no packet for a player leaving

    # Seat 2 is taken again. The Unity host keeps one avatar per LOBY and finds a HUPD's
    # by their order: seat 2 is not announced twice, and its HUPD updates that avatar.
    ana = await unity.joined(code)
    assert ana.handled == [UnityJoinResponse(2, free=(1, 1, 0, 1, 1, 1))]
    await unity.ready(ana, "Ana", 6)
    assert await host.read_packets(1) == [HostUpdate(2, 6, "Ana")]
    assert host.curr_avatars == [HostAvatar(0, "Maya", 2), HostAvatar(1, "Ana", 5)]
    ben = await unity.joined(code)
    assert await host.read_packets(1) == [Lobby(3)]
    await unity.ready(ben, "Ben", 2)
    await host.read_until(lambda: len(host.handled) == 8)
    assert [a.name for a in host.curr_avatars] == ["Maya", "Ana", "Ben"]


async def test_join_refusals(unity, clock):
    host, code = await unity.host()
    lost = await unity.client()
    await lost.on_connect_room("ZZZZ" if code != "ZZZZ" else "YYYY")
    assert await lost.read_packets(1) == [UnityJoinResponse(4)]
    assert lost.error_panel == ("Unable to find room", 4)
    for _ in range(6):
        await unity.joined(code)
    full = await unity.client()
    await full.on_connect_room(code)
    assert await full.read_packets(1) == [UnityJoinResponse(3)]
    assert full.error_panel == ("This room is full", 3)


async def test_packets_to_one_client_are_a_gap_apart(unity, clock):
    host, code = await unity.host()
    players = [await unity.joined(code) for _ in range(3)]
    for i, player in enumerate(players):
        player.on_choose_avatar(i + 1)
        player.on_username_end_edit(f"P{i}")
        await player.on_submit_player()
    # The host is owed three HUPDs at once: they come one per read, a gap apart.
    await host.read_until(lambda: len(host.handled) == 7)
    arrivals = host.read_times[-3:]
    assert [type(p) for p in host.handled[-3:]] == [HostUpdate] * 3
    assert all(b - a >= GAP - 1e-6 for a, b in zip(arrivals, arrivals[1:])), arrivals


async def test_only_the_latest_avatar_update_waits(unity, clock):
    """Updates queued faster than the gap: a player is sent the latest, not each one."""
    host, code = await unity.host()
    watcher = await unity.joined(code)
    others = [await unity.joined(code) for _ in range(4)]
    for i, player in enumerate(others):  # four REDYs at once: four avatar changes
        player.on_choose_avatar(i + 1)
        player.on_username_end_edit(f"P{i}")
        await player.on_submit_player()
    await watcher.read_until(lambda: PlayerUpdate((0, 0, 0, 0, 1, 1)) in watcher.handled)
    await watcher.quiet()
    updates = [p for p in watcher.handled if isinstance(p, PlayerUpdate)]
    assert len(updates) < 4 and updates[-1] == PlayerUpdate((0, 0, 0, 0, 1, 1))


async def test_a_v1_host_with_2022_players(unity, clock):
    host = await unity.v1_client()
    with trio.fail_after(5):
        code = await host.host_room()
    maya = await unity.joined(code)
    await unity.ready(maya, "Maya", 3)
    assert await recv(host) == ReadyResponse(ReadyAnswer.UPDATE, (3, 0, 0, 0, 0, 0))
    jonas = await unity.joined(code)
    assert jonas.handled == [UnityJoinResponse(2, free=(1, 1, 0, 1, 1, 1))]
    await unity.ready(jonas, "Jonas", 1)
    assert await recv(host) == ReadyResponse(ReadyAnswer.UPDATE, (3, 1, 0, 0, 0, 0))
    assert await maya.read_packets(1) == [PlayerUpdate((0, 1, 0, 1, 1, 1))]
    # And a v1.0 player beside them sees v1.0.
    ana = await unity.v1_client()
    with trio.fail_after(5):
        assert await ana.join(code) is JoinAnswer.PLAYER
        assert ana.avatars == (3, 1, 0, 0, 0, 0)
        assert await ana.ready("Ana", 6) is ReadyAnswer.ACCEPTED
    assert await maya.read_packets(1) == [PlayerUpdate((0, 1, 0, 1, 1, 0))]


async def test_a_2022_host_with_v1_players(unity, clock):
    host, code = await unity.host()
    maya = await unity.v1_client()
    with trio.fail_after(5):
        assert await maya.join(code) is JoinAnswer.PLAYER
    assert await host.read_packets(1) == [Lobby(1)]
    with trio.fail_after(5):
        assert await maya.ready("Maya", 3) is ReadyAnswer.ACCEPTED
    assert await host.read_packets(1) == [HostUpdate(1, 3, "Maya")]
    jonas = await unity.joined(code)
    assert await host.read_packets(1) == [Lobby(2)]
    await unity.ready(jonas, "Jonas", 3)  # taken by the v1.0 player
    assert jonas.handled[-2:] == [UnityReadyResponse(1, 0), PlayerUpdate((1, 1, 0, 1, 1, 1))]
    await unity.ready(jonas, "Jonas", 2)
    assert await recv(maya) == ReadyResponse(ReadyAnswer.UPDATE, (3, 2, 0, 0, 0, 0))
    assert await host.read_packets(1) == [HostUpdate(2, 2, "Jonas")]


async def test_the_v1_port_is_v1_bytes(unity, clock):
    """A v1.0 client on the shared server gets exactly v1.0's bytes, unpaced."""
    stream = await trio.open_tcp_stream("127.0.0.1", unity.v1_port)
    await stream.send_all(b"JOINHOST")
    with trio.fail_after(5):
        answer = await stream.receive_some(100)
    assert answer[:5] == b"JOIN\x01" and len(answer) == 9
    player = await trio.open_tcp_stream("127.0.0.1", unity.v1_port)
    await player.send_all(b"JOIN" + answer[5:9])
    data = b""
    with trio.fail_after(5):
        while len(data) < 16:
            data += await player.receive_some(100)
    assert data == b"JOIN\x02REDY\x00\x00\x00\x00\x00\x00\x00"
    await stream.aclose()
    await player.aclose()


async def test_the_2022_client_starts_the_game_and_players_learn_their_index(unity, clock):
    host, code = await unity.host()
    maya = await unity.joined(code)
    await unity.ready(maya, "Maya", 3)
    jonas = await unity.joined(code)
    await unity.ready(jonas, "Jonas", 1)
    assert await maya.read_packets(1) == [PlayerUpdate((0, 1, 0, 1, 1, 1))]
    await host.read_until(lambda: len(host.handled) == 5)
    await host.start_game()
    assert await host.read_packets(1) == [UnityGameUpdate(1)]
    assert await maya.read_packets(2) == [Lobby(1), UnityGameUpdate(1)]
    assert await jonas.read_packets(2) == [Lobby(2), UnityGameUpdate(1)]
    assert host.curr_avatars == [HostAvatar(0, "Maya", 2), HostAvatar(1, "Jonas", 0)]  # LOBY is a host's only
