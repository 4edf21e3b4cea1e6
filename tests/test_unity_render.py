"""lgmp.server.dialects: the core's events rendered for unity-2022 connections, without sockets.

A pure ``Hub`` plays; ``Renderers`` holds a ``UnityRenderer`` for the connections that
speak 2022 and is fed every event, as the shell feeds it. The packets each would be
sent are compared with what the 2022 dialect says they are sent.
"""

from __future__ import annotations

import random

import pytest

from lgmp.game import rules
from lgmp.game.rules import CARD_SPACES, SpaceKind
from lgmp.limits import Limits
from lgmp.rooms.events import CardAnswered, Deliver, PieceMoved, RoomClosed, RoomOpened
from lgmp.rooms.hub import Hub
from lgmp.server.dialects import SERVED, UNITY_2022_SERVED, V1_0_SERVED, Renderers, UnityRenderer, served
from lgmp.wire.codec import V1_0, encode
from lgmp.wire.packets import (
    CardAction,
    CardAnswer,
    CardDealt,
    GameUpdate,
    JoinRequest,
    ReadyRequest,
    Reset,
    Spin,
    StartGame,
)
from lgmp.wire.unity2022 import (
    UNITY_2022,
    CardUpdate,
    EndTurn,
    HostUpdate,
    Land,
    Lobby,
    Move,
    PlayerUpdate,
    UnityGameUpdate,
    UnityJoinResponse,
    UnityReadyResponse,
)


class Table:
    """A hub whose chosen connections speak 2022: what each would be sent."""

    def __init__(self, seed: int = 3, **limits):
        self.hub = Hub(seed=seed, limits=Limits(**limits))
        self.renderers = Renderers()
        self.sent: dict[int, list] = {}
        self.now = 0.0

    def connect(self, unity: bool = True) -> int:
        member = self.hub.connect(self.now)
        self.sent[member] = []
        if unity:
            self.renderers.add(member, UnityRenderer(member))
        return member

    def _run(self, events: list) -> list:
        for event in events:
            if isinstance(event, Deliver):
                for member in event.to:
                    if member not in self.renderers:
                        self.sent[member].append(event.packet)
            for member, packet in self.renderers.render(event):
                encode(packet, UNITY_2022)  # every rendered packet is a 2022 packet
                self.sent[member].append(packet)
        return events

    def send(self, member: int, packet) -> list:
        return self._run(self.hub.receive(member, packet, self.now))

    def leave(self, member: int) -> list:
        self.renderers.remove(member)
        return self._run(self.hub.disconnect(member, self.now, "gone"))

    def take(self, member: int) -> list:
        sent, self.sent[member] = self.sent[member], []
        return sent


def lobby(table: Table, players: int, *, unity_host: bool = True):
    host = table.connect(unity_host)
    table.send(host, JoinRequest("HOST"))
    code = next(iter(table.hub.rooms))
    members = []
    for seat in range(1, players + 1):
        member = table.connect()
        table.send(member, JoinRequest(code))
        table.send(member, ReadyRequest(f"P{seat}", seat))
        members.append(member)
    return host, code, members


def test_the_lobby_as_the_2022_dialect_says():
    table = Table()
    host = table.connect()
    table.send(host, JoinRequest("HOST"))
    code = next(iter(table.hub.rooms))
    assert table.take(host) == [UnityJoinResponse(1, code)]
    maya = table.connect()
    table.send(maya, JoinRequest(code))
    assert table.take(maya) == [UnityJoinResponse(2, free=(1,) * 6)]  # the avatar update folded in
    assert table.take(host) == [Lobby(1)]
    table.send(maya, ReadyRequest("Maya", 3))
    assert table.take(maya) == [UnityReadyResponse(1, 1), PlayerUpdate((1, 1, 0, 1, 1, 1))]
    assert table.take(host) == [HostUpdate(1, 3, "Maya")]
    jonas = table.connect()
    table.send(jonas, JoinRequest(code.lower()))
    assert table.take(jonas) == [UnityJoinResponse(2, free=(1, 1, 0, 1, 1, 1))]
    assert table.take(host) == [Lobby(2)] and table.take(maya) == []
    table.send(jonas, ReadyRequest("MAYA", 3))
    assert table.take(jonas) == [UnityReadyResponse(5, 0), PlayerUpdate((1, 1, 0, 1, 1, 1))]
    assert table.take(host) == [] and table.take(maya) == []
    table.leave(jonas)
    assert table.take(maya) == [PlayerUpdate((1, 1, 0, 1, 1, 1))]  # v1.0's update after a leave
    assert table.take(host) == []


def test_join_refusals_are_the_code_alone():
    table = Table()
    stranger = table.connect()
    table.send(stranger, JoinRequest("ZZZZ"))
    assert table.take(stranger) == [UnityJoinResponse(4)]


def test_the_host_is_told_of_a_seat_once():
    table = Table()
    host, code, (p1, p2) = lobby(table, 2)
    assert table.take(host)[1:] == [Lobby(1), HostUpdate(1, 1, "P1"), Lobby(2), HostUpdate(2, 2, "P2")]
    table.leave(p1)
    newcomer = table.connect()
    table.send(newcomer, JoinRequest(code))
    table.send(newcomer, ReadyRequest("Ana", 5))
    assert table.take(host) == [HostUpdate(1, 5, "Ana")]  # seat 1 again: no second LOBY


def test_the_game_for_a_2022_host_and_players():
    table = Table(seed=11)
    host, code, (p1, p2) = lobby(table, 2)
    for member in (host, p1, p2):
        table.take(member)
    table.send(host, StartGame())
    assert table.take(host) == [UnityGameUpdate(1)]
    assert table.take(p1) == [Lobby(1), UnityGameUpdate(1)]
    assert table.take(p2) == [Lobby(2), UnityGameUpdate(1)]
    rng = random.Random(1)
    room = table.hub.rooms[code]
    moves: dict[int, int] = {1: 0, 2: 0}
    for _ in range(400):
        if room.session is None:
            break
        game = room.game
        events = []
        pending = game.pending
        if pending is not None:
            seat = sorted(pending.awaiting)[0]
            card = rules.card(pending.kind, pending.number)
            value = rng.choice(rules.card_answers(card))
            events = table.send({1: p1, 2: p2}[seat], CardAnswer(card.action, value))
        elif game.turn:
            events = table.send({1: p1, 2: p2}[game.turn], Spin(rng.randint(1, 6)))
        else:
            break
        host_sent = table.take(host)
        v1_games = [e.packet for e in events if isinstance(e, Deliver) and isinstance(e.packet, GameUpdate)]
        settled = [g for g in v1_games if g.space not in CARD_SPACES]
        assert [p for p in host_sent if isinstance(p, UnityGameUpdate)] == [UnityGameUpdate(g.turn) for g in settled]
        for fact in events:
            if isinstance(fact, PieceMoved):
                moves[fact.seat] = fact.end
        for packet in host_sent:
            if isinstance(packet, Move):
                assert packet.spaces != 0
        tokens = [e.seat for e in events if isinstance(e, CardAnswered) and e.action == CardAction.TOKEN]
        assert [p.player for p in host_sent if isinstance(p, CardUpdate)] == tokens
        for player in (p1, p2):
            assert not any(isinstance(p, (Move, CardUpdate, HostUpdate, Lobby)) for p in table.take(player))
    # Careers are left: the game is not over, but every piece reached the end.
    assert all(room.game.positions[s] == 55 for s in (1, 2))


def test_moves_back_are_negative():
    renderer = UnityRenderer(1)
    renderer.render(RoomOpened("ABCD", 1, 0.0))
    assert renderer.render(PieceMoved("ABCD", 2, 18, 15, True)) == [Move(2, -3)]
    assert renderer.render(PieceMoved("ABCD", 2, 15, 15, True)) == []  # a zero option moves nothing
    assert renderer.render(CardAnswered("ABCD", 2, CardAction.MOVE, -3, False)) == []
    assert renderer.render(CardAnswered("ABCD", 3, CardAction.TOKEN, 0, True)) == [CardUpdate(3)]


def test_a_game_with_a_card_waiting_shows_no_turn():
    renderer = UnityRenderer(1)
    board = (1,) + (0,) * 55
    assert renderer.render(Deliver((1,), GameUpdate(1, SpaceKind.YOURE_THE_BOSS, board))) == []
    assert renderer.render(Deliver((1,), GameUpdate(2, SpaceKind.FINISH, board))) == [UnityGameUpdate(2)]
    assert renderer.render(Deliver((1,), CardDealt(5, 1))) == [CardDealt(5, 1)]
    assert renderer.render(Deliver((1,), Reset())) == [Reset()]


def test_a_room_closing_forgets_its_connections():
    table = Table()
    host, code, (p1,) = lobby(table, 1)
    table.take(p1)
    table.leave(host)
    assert table.take(p1) == [Reset()]
    assert not table.renderers._in_room and not table.renderers._room_of


def test_only_2022_connections_are_rendered():
    table = Table()
    host, code, (p1,) = lobby(table, 1, unity_host=False)
    assert table.take(host)[-1].response == 0  # v1.0's avatar update, as the core made it
    assert host not in table.renderers and p1 in table.renderers


def test_served_dialects():
    assert SERVED == {"v1.0": V1_0_SERVED, "unity-2022": UNITY_2022_SERVED}
    assert served("v1.0").renderer is None and not served(V1_0).paced
    assert served(UNITY_2022) is UNITY_2022_SERVED and UNITY_2022_SERVED.paced
    assert UNITY_2022_SERVED.notices == {Land, EndTurn} and UNITY_2022_SERVED.snapshots == {PlayerUpdate}
    with pytest.raises(ValueError):
        served("v2")


def test_renderers_ignore_closed_rooms_they_were_not_in():
    renderers = Renderers()
    renderers.add(7, UnityRenderer(7))
    assert renderers.render(RoomClosed("ABCD", "why")) == []
    assert bool(renderers) and 7 in renderers
    renderers.remove(7)
    assert not renderers


def test_a_notice_counts_against_flood_control_and_changes_nothing():
    table = Table(packet_burst=3, packet_rate=1.0)
    host = table.connect()
    table.send(host, JoinRequest("HOST"))
    code = next(iter(table.hub.rooms))
    room = table.hub.rooms[code]
    assert table.hub.notice(host, 0.5) == [] and table.hub.notice(host, 0.5) == []  # 2.5 tokens, then 1.5
    assert room._last_activity == 0.5  # a lobby that hears from its host is not idle
    events = table.hub.notice(host, 0.5)  # 0.5 left: a flood like any other
    assert any(getattr(e, "reason", "") == "packet flood" for e in events)
    assert code not in table.hub.rooms
    assert table.hub.notice(999, 6.0) == []  # a connection the hub no longer knows
