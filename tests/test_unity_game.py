"""Whole games with unity-2022 players, over loopback, to FINL and RSET.

After STRT the 2022 dialect shows the game as the 2022 protocol text defines it: GAME
with the turn (once it is settled), MOVE and CUPD to the host, CARD, FINL, RSET. A
2022 host here checks what it is sent against a board it keeps from MOVE alone;
2022 bots play from GAME, CARD and the LOBY that tells each its index; a model of
the unchanged Unity client sits in a seat the server plays for it, and must never
lose a packet or get stuck. Mixed rooms (a v1.0 host with 2022 players, and the
reverse) play whole games too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from lgmp.clients.bot import BotResult, play_bot
from lgmp.clients.client import LGMPClient
from lgmp.http.metrics import EventCounts, Gauges, LGMPCollector, SpectatorCounts
from lgmp.rooms.events import PacketIgnored
from lgmp.server.stats import ShellStats
from lgmp.game import rules
from lgmp.game.rules import FINISH_SPACE, SpaceKind
from lgmp.wire.packets import (
    CardDealt,
    FinalResults,
    JoinAnswer,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    StartGame,
)
from lgmp.wire.unity2022 import (
    CardUpdate,
    EndTurn,
    Land,
    HostUpdate,
    Lobby,
    Move,
    PlayerUpdate,
    UnityGameUpdate,
    UnityReadyResponse,
)
from tests.conftest import TEST_LIMITS, recv
from tests.test_server import observe_host
from tests.unity_model import UnityClient

GAME_TIMEOUT = 120.0  # virtual seconds: the mock clock jumps over the gaps
K = SpaceKind


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0.01)


@dataclass
class HostBoard:
    """What a 2022 host learns of a game: positions from MOVE, turns, cards, decisions."""

    seats: tuple[int, ...]
    positions: dict[int, int] = field(default_factory=dict)
    finish_order: list[int] = field(default_factory=list)
    turns: list[int] = field(default_factory=list)
    cards: list[CardDealt] = field(default_factory=list)
    final: FinalResults | None = None
    after: list = field(default_factory=list)  # what came after FINL


async def observe_2022_host(host: LGMPClient, seats: tuple[int, ...]) -> HostBoard:
    """Read a 2022 host's game until FINL and RSET, checking each packet as it comes."""
    board = HostBoard(seats, {s: 0 for s in seats})
    awaiting: set[int] = set()  # seats whose CUPD the card on the table still owes
    while True:
        packet = await recv(host, GAME_TIMEOUT)
        if isinstance(packet, Move):
            assert packet.turn in seats and packet.turn not in board.finish_order, packet
            start = board.positions[packet.turn]
            end = start + packet.spaces
            assert 0 <= end <= FINISH_SPACE, f"{packet} from {start}"
            board.positions[packet.turn] = end
            if end == FINISH_SPACE:
                board.finish_order.append(packet.turn)
        elif isinstance(packet, UnityGameUpdate):
            assert not awaiting, f"GAME {packet.turn} before every decision {awaiting} came in"
            if len(board.finish_order) == len(seats):
                assert packet.turn == 0
            else:
                assert packet.turn in seats and packet.turn not in board.finish_order, packet
            board.turns.append(packet.turn)
        elif isinstance(packet, CardDealt):
            board.cards.append(packet)
            assert rules.find_card(packet.kind, packet.number) is not None or packet.kind == K.FINISH
            if packet.kind in (K.YOURE_THE_BOSS, K.DID_YOU_KNOW):
                awaiting = set(seats)
        elif isinstance(packet, CardUpdate):
            assert packet.player in awaiting, f"{packet}: not asked, or twice"
            awaiting.discard(packet.player)
        elif isinstance(packet, FinalResults):
            board.final = packet
            board.after.append(await recv(host))
            return board
        else:
            raise AssertionError(f"the 2022 host got {packet} during the game")


def check_final(board: HostBoard) -> None:
    assert sorted(board.finish_order) == sorted(board.seats)
    assert all(board.positions[s] == FINISH_SPACE for s in board.seats)
    expected = tuple(board.finish_order.index(s) + 1 if s in board.seats else 0 for s in range(1, 7))
    assert board.final.places == expected
    assert board.turns[0] == board.seats[0] and board.turns[-1] == 0
    assert board.after == [Reset()]


async def wait_lobby(host: LGMPClient, players: int) -> None:
    """A 2022 host: a LOBY and a HUPD per player."""
    seen = {Lobby: 0, HostUpdate: 0}
    with trio.fail_after(10):
        while seen[Lobby] < players or seen[HostUpdate] < players:
            packet = await host.receive()
            seen[type(packet)] += 1


async def test_a_whole_game_with_2022_players_to_final_and_reset(lgmp_server, nursery, clock):
    # The Unity client cannot play yet: the server plays its seat when its turn times out.
    limits = dataclasses.replace(TEST_LIMITS, turn_timeout=3.0)
    net = await lgmp_server(limits=limits, seed=5, dialect="unity-2022")
    host = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
    net.clients.append(host)
    with trio.fail_after(5):
        code = await host.host_room()
    results: dict[str, BotResult] = {}

    async def bot(name: str, seed: int) -> None:
        results[name] = await play_bot("127.0.0.1", net.port, code, name=name, seed=seed, dialect="unity-2022")

    nursery.start_soon(bot, "Bot1", 1)
    await wait_lobby(host, 1)
    nursery.start_soon(bot, "Bot2", 2)
    await wait_lobby(host, 1)
    unity = await UnityClient.connect(net.port, nursery)
    await unity.on_connect_room(code)
    await unity.read_packets(1)
    unity.on_choose_avatar(next(a for a in range(1, 7) if unity.avatar_buttons[a - 1]))
    unity.on_username_end_edit("Unity")
    await unity.on_submit_player()
    await wait_lobby(host, 1)
    await host.send(StartGame())

    board = await observe_2022_host(host, (1, 2, 3))
    check_final(board)
    with trio.fail_after(GAME_TIMEOUT):
        while len(results) < 2:
            await trio.sleep(0.1)
    for name, seat in (("Bot1", 1), ("Bot2", 2)):
        assert results[name].seat == seat, "a 2022 player learns its index from LOBY"
        assert results[name].results == board.final
    # The Unity client saw the whole game one packet per read, and the lobby after it.
    await unity.read_until(lambda: isinstance(unity.handled[-1], PlayerUpdate) and Reset() in unity.handled)
    assert unity.discarded == [] and unity.errors == [] and not unity.stuck
    game = unity.handled[unity.handled.index(Lobby(3)):]
    assert game[1] == UnityGameUpdate(1) and board.final in game
    assert game[game.index(board.final) + 1] == Reset()
    assert not any(isinstance(p, (Move, CardUpdate, HostUpdate)) for p in game), "host packets sent to a player"


async def test_a_unity_host_watches_a_whole_game(lgmp_server, nursery, clock):
    net = await lgmp_server(seed=8, dialect="unity-2022")
    host = await UnityClient.connect(net.port, nursery)
    await host.on_button_host()
    await host.read_packets(1)
    code = host.connected_room
    results = []

    async def bot(name: str, seed: int) -> None:
        results.append(await play_bot("127.0.0.1", net.port, code, name=name, seed=seed, dialect="unity-2022"))

    for i in range(2):
        nursery.start_soon(bot, f"Bot{i + 1}", i)
        await host.read_until(lambda n=i: len(host.curr_avatars) == n + 1 and host.curr_avatars[n].avatar is not None)
    assert [a.name for a in host.curr_avatars] == ["Bot1", "Bot2"]
    await host.start_game()
    await host.read_until(lambda: Reset() in host.handled, GAME_TIMEOUT)
    assert host.discarded == [] and host.errors == [] and not host.stuck
    kinds = {type(p) for p in host.handled}
    assert {Move, UnityGameUpdate, CardDealt, FinalResults, Reset} <= kinds
    with trio.fail_after(GAME_TIMEOUT):
        while len(results) < 2:
            await trio.sleep(0.1)
    final = next(p for p in host.handled if isinstance(p, FinalResults))
    assert all(r.results == final for r in results)


async def test_a_v1_host_with_2022_and_v1_players(lgmp_server, nursery, clock):
    net = await lgmp_server(seed=3, dialect="v1.0", also_listen=[(0, "unity-2022")])
    unity_port = net.server.listening[1][0]
    host, code = await net.host()
    results = []

    async def bot(name: str, seed: int, port: int, dialect: str) -> None:
        results.append(await play_bot("127.0.0.1", port, code, name=name, seed=seed, dialect=dialect))

    avatars = []
    for i, (port, dialect) in enumerate([(unity_port, "unity-2022"), (net.port, "v1.0"), (unity_port, "unity-2022")]):
        nursery.start_soon(bot, f"Bot{i + 1}", i, port, dialect)
        with trio.fail_after(10):
            update = await host.wait_for(ReadyResponse)
        avatars.append(update.avatars)
    await host.send(StartGame())
    log = await observe_host(host, (1, 2, 3))  # the v1.0 host's checks of every GAME and CARD
    with trio.fail_after(GAME_TIMEOUT):
        while len(results) < 3:
            await trio.sleep(0.1)
    assert sorted(r.seat for r in results) == [1, 2, 3]
    assert all(r.results == log.final for r in results)
    assert sorted(log.finish_order) == [1, 2, 3]


async def test_a_2022_host_with_v1_players(lgmp_server, nursery, clock):
    net = await lgmp_server(seed=4, dialect="unity-2022", also_listen=[(0, "v1.0")])
    v1_port = net.server.listening[1][0]
    host = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
    net.clients.append(host)
    with trio.fail_after(5):
        code = await host.host_room()
    results = []

    async def bot(name: str, seed: int) -> None:
        results.append(await play_bot("127.0.0.1", v1_port, code, name=name, seed=seed))

    for i in range(3):
        nursery.start_soon(bot, f"Bot{i + 1}", i)
        await wait_lobby(host, 1)
    await host.send(StartGame())
    board = await observe_2022_host(host, (1, 2, 3))
    check_final(board)
    with trio.fail_after(GAME_TIMEOUT):
        while len(results) < 3:
            await trio.sleep(0.1)
    assert all(r.results == board.final for r in results)


async def test_land_and_endt_change_nothing_and_count_as_packets(lgmp_server, nursery, clock):
    limits = dataclasses.replace(TEST_LIMITS, packet_burst=5, packet_rate=1.0)
    net = await lgmp_server(limits=limits, seed=2, dialect="unity-2022")
    ignored: list[PacketIgnored] = []
    net.server.watch(lambda events, now: ignored.extend(e for e in events if isinstance(e, PacketIgnored)))
    host = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
    net.clients.append(host)
    with trio.fail_after(5):
        code = await host.host_room()
    player = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
    net.clients.append(player)
    with trio.fail_after(5):
        assert await player.join(code) is JoinAnswer.PLAYER
        assert await player.ready("Maya", 3) is ReadyAnswer.ACCEPTED
    await wait_lobby(host, 1)
    await host.send_raw(b"LAND\x04\x05ENDT")
    await host.send(StartGame())
    assert await recv(host) == UnityGameUpdate(1)
    assert ignored == []  # not refused: read, and nothing happened
    stats = net.server.stats
    assert stats.received[Land] == 1 and stats.received[EndTurn] == 1 and stats.sent[UnityGameUpdate] == 2
    assert stats.sent[HostUpdate] == 1 and stats.sent[Lobby] == 2  # the host's one of each, the player's index
    # A flood of them is still a flood.
    await host.send_raw(b"ENDT" * 20)
    with trio.fail_after(5):
        while True:
            try:
                await host.receive()
            except Exception:
                break
    assert net.server.hub.rooms.get(code) is None, "the host was closed for flooding: its room ended"


async def test_a_2022_player_reclaims_its_seat_mid_game(lgmp_server, nursery, clock):
    limits = dataclasses.replace(TEST_LIMITS, leave_grace=1000.0)
    net = await lgmp_server(limits=limits, seed=6, dialect="unity-2022")
    host = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
    net.clients.append(host)
    with trio.fail_after(5):
        code = await host.host_room()
    players = []
    for name, avatar in (("Maya", 3), ("Jonas", 1)):
        player = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
        net.clients.append(player)
        with trio.fail_after(5):
            await player.join(code)
            assert await player.ready(name, avatar) is ReadyAnswer.ACCEPTED
        players.append(player)
    await wait_lobby(host, 2)
    await host.send(StartGame())
    with trio.fail_after(5):
        assert await players[1].wait_for(UnityGameUpdate) == UnityGameUpdate(1)
    assert players[1].seat == 2
    await players[1].aclose()
    back = await LGMPClient.connect("127.0.0.1", net.port, dialect="unity-2022")
    net.clients.append(back)
    with trio.fail_after(5):
        assert await back.join(code) is JoinAnswer.PLAYER
        assert back.avatars == (1, 3, 0, 0, 0, 0)  # in use, in avatar order
        assert await back.ready("jonas", 3) is ReadyAnswer.ALREADY_TAKEN  # not that seat's avatar
        assert await back.ready("jonas", 1) is ReadyAnswer.ACCEPTED
        rest = [await recv(back) for _ in range(3)]
    assert rest == [PlayerUpdate((0, 1, 0, 1, 1, 1)), Lobby(2), UnityGameUpdate(1)]
    assert back.seat == 2


def test_metrics_count_2022_packets_under_their_tags():
    stats = ShellStats()
    stats.received[ReadyRequest] += 2  # a v1.0 REDY and a 2022 one: the same class
    stats.received[Land] += 1
    stats.sent[ReadyResponse] += 3
    stats.sent[UnityReadyResponse] += 4
    collector = LGMPCollector(stats, EventCounts(), SpectatorCounts(), lambda: Gauges(0, {}, {}, 0))
    families = {f.name: f for f in collector.collect()}
    sent = {s.labels["tag"]: s.value for s in families["lgmp_packets_sent"].samples if s.name.endswith("_total")}
    received = {s.labels["tag"]: s.value for s in families["lgmp_packets_received"].samples if s.name.endswith("_total")}
    assert sent["REDY"] == 7 and received["REDY"] == 2 and received["LAND"] == 1
    assert {"LOBY", "HUPD", "PUPD", "MOVE", "CUPD"} <= set(sent) and {"LAND", "ENDT"} <= set(received)
