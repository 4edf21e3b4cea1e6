"""End to end: the trio server on a real loopback socket, driven by real clients.

The scripted players here choose their careers on purpose and check what they are sent;
a host observer re-derives every piece's position from GAME occupancy and checks each
GAME and CARD against WIRE.md "Game" as the game goes, so places in FINL are checked
against a finish order computed independently of the server.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from lgmp.clients.client import LGMPClient
from lgmp.wire.packets import (
    CardAnswer,
    CardDealt,
    CareerChoice,
    FinalResults,
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
from lgmp.game import rules
from lgmp.game.rules import (
    BOARD,
    CARD_SPACES,
    DID_YOU_KNOW_FIELD,
    FINISH_SPACE,
    SPIN_NUMBERS,
    SpaceKind,
    draw_spin,
)
from tests.conftest import TEST_LIMITS, drain_updates, recv, recv_n, silent, until_closed, update

K = SpaceKind
CARD_KINDS = CARD_SPACES
NAMES = {1: "Maya", 2: "Jonas", 3: "Ana", 4: "Ben", 5: "Cleo", 6: "Dev"}
AVATARS = {1: 3, 2: 1, 3: 2, 4: 6, 5: 5, 6: 4}
CAREER_OF = {  # seat -> (field, career as sent, wire salary, catalogue spelling)
    1: (5, "creative director", 132, "Creative Director"),
    2: (3, "SYSTEM ARCHITECT", 105, "System Architect"),
    3: (6, "Brand/Product Manager", 132, "Brand/Product Manager"),
    4: (4, "Graphic Media Technical Sales Representative", 49, "Graphic Media Technical Sales Representative"),
    5: (2, "corporate communications MANAGER", 70, "Corporate Communications Manager"),
    6: (1, "User Interface Designer", 80, "User Interface Designer"),
}
GAME_TIMEOUT = 20.0


def start_game(occupied: int, turn: int = 1) -> GameUpdate:
    return GameUpdate(turn, 0, (occupied,) + (0,) * 55)


def correct_answer(card: CardDealt, rng: random.Random) -> CardAnswer:
    """Any answer the card allows (a Brand Crisis card has one: nothing drawn for it)."""
    dealt = rules.card(card.kind, card.number)
    values = rules.card_answers(dealt)
    return CardAnswer(dealt.action, values[0] if len(values) == 1 else rng.choice(values))


# --------------------------------------------------------------------------- scripted host and players

@dataclass
class HostLog:
    games: list[GameUpdate] = field(default_factory=list)
    cards: list[tuple[int, CardDealt]] = field(default_factory=list)  # (mover, card), Finish cards too
    finish_order: list[int] = field(default_factory=list)
    final: FinalResults | None = None
    lobby: ReadyResponse | None = None


def next_seat(seats, mover: int, finished) -> int:
    ring = [s for s in seats if s > mover] + [s for s in seats if s <= mover]
    return next((s for s in ring if s not in finished), 0)


async def observe_host(client: LGMPClient, seats: tuple[int, ...]) -> HostLog:
    """Read a host's packets until FINL, RSET and the lobby update; check WIRE.md "Game" on the way."""
    log = HostLog()
    positions = {s: 0 for s in seats}
    finished: list[int] = []
    owed_cards: list[CardDealt] = []  # CARDs the latest GAME announces, in order
    prev: GameUpdate | None = None
    while True:
        packet = await recv(client, GAME_TIMEOUT)
        if isinstance(packet, GameUpdate):
            assert not owed_cards, f"{packet} came before the CARDs {owed_cards} of the previous GAME"
            assert sum(packet.occupancy) == len(seats), f"crosstalk? {packet}"
            log.games.append(packet)
            if prev is None:
                assert packet == start_game(len(seats), seats[0])
            else:
                assert packet != prev, "two consecutive event GAMEs are equal"
                mover = prev.turn
                assert mover in seats and mover not in finished
                base = [0] * 56
                for seat, pos in positions.items():
                    if seat != mover:
                        base[pos] += 1
                diff = [a - b for a, b in zip(packet.occupancy, base)]
                assert sorted(diff)[-1] == 1 and sum(diff) == 1 and min(diff) == 0, f"GAME moved more than the mover: {packet}"
                old, new = positions[mover], diff.index(1)
                positions[mover] = new
                resolution = prev.space in CARD_KINDS
                if new == FINISH_SPACE and old != FINISH_SPACE:
                    finished.append(mover)
                    place = len(finished)
                    number = 1 if place == 1 else 3 if place == len(seats) else 2
                    owed_cards.append(CardDealt(K.FINISH, number))
                if resolution:  # event 3: a card was resolved
                    assert packet.space == 0
                    assert packet.turn == next_seat(seats, mover, finished)
                else:  # event 2: a spin landed
                    assert new - old in SPIN_NUMBERS or new == FINISH_SPACE
                    assert packet.space == BOARD[new]
                    if packet.space in CARD_KINDS:
                        assert packet.turn == mover, "a card waits: the turn stays with the mover"
                        owed_cards.insert(0, CardDealt(packet.space, 0))
                    else:
                        assert packet.turn == next_seat(seats, mover, finished)
            prev = packet
        elif isinstance(packet, CardDealt):
            assert owed_cards, f"unexpected {packet}"
            expected = owed_cards.pop(0)
            assert packet.kind == expected.kind
            if packet.kind == K.FINISH:
                assert packet == expected, f"wrong Finish card: {packet} for place {len(finished)}"
                log.cards.append((finished[-1], packet))
            else:
                if packet.kind == K.DID_YOU_KNOW:
                    assert rules.card(packet.kind, packet.number).field == DID_YOU_KNOW_FIELD[positions[prev.turn]]
                log.cards.append((prev.turn, packet))
        elif isinstance(packet, FinalResults):
            assert prev is not None and prev.turn == 0 and not owed_cards
            log.final = packet
            log.finish_order = finished
            assert await recv(client) == Reset()
            log.lobby = await recv(client)
            assert isinstance(log.lobby, ReadyResponse) and log.lobby.response == ReadyAnswer.UPDATE
            return log
        else:
            raise AssertionError(f"host got {packet} during the game")


@dataclass
class PlayerLog:
    seat: int
    cards: list[CardDealt] = field(default_factory=list)
    final: FinalResults | None = None
    lobby: ReadyResponse | None = None


async def play_seat(client: LGMPClient, seat: int, rng: random.Random, *, first: GameUpdate | None = None,
                    try_bad_careers: bool = False) -> PlayerLog:
    """A careful player: spins on its turn, answers what it is sent, picks CAREER_OF[seat]."""
    log = PlayerLog(seat)
    last: GameUpdate | None = None
    career_sent = False
    pending = [first] if first is not None else []
    while True:
        packet = pending.pop(0) if pending else await recv(client, GAME_TIMEOUT)
        if isinstance(packet, GameUpdate):
            last = packet
            if packet.turn == seat and packet.space not in CARD_KINDS:
                await client.send(Spin(draw_spin(rng)))
        elif isinstance(packet, CardDealt):
            log.cards.append(packet)
            if packet.kind in (K.BRAND_CRISIS, K.CAREER_POINT):
                # Only to the mover: the latest GAME shows this seat landing on that kind.
                assert last.turn == seat and last.space == packet.kind, f"seat {seat} got {packet} after {last}"
            if packet.kind in CARD_KINDS:
                await client.send(correct_answer(packet, rng))
            elif packet.kind == K.FINISH:
                assert not career_sent, "a second Finish card"
                if try_bad_careers:
                    for bad in (CareerChoice(5, "Creative Director", 133), CareerChoice(3, "Creative Director", 132),
                                CareerChoice(0, "Creative Director", 132), CareerChoice(5, "Chief Bulldog", 1)):
                        await client.send(bad)
                        assert await recv(client) == last, "a refused CRER is answered by a GAME resync"
                field_, career, salary, _ = CAREER_OF[seat]
                await client.send(CareerChoice(field_, career, salary))
                career_sent = True
        elif isinstance(packet, FinalResults):
            assert career_sent
            log.final = packet
            assert await recv(client) == Reset()
            log.lobby = await recv(client)
            assert isinstance(log.lobby, ReadyResponse) and log.lobby.response == ReadyAnswer.UPDATE
            return log
        else:
            raise AssertionError(f"seat {seat} got {packet} during the game")


async def play_room(net, seats: tuple[int, ...], seed: int, *, names=NAMES):
    """Host a room, seat ``seats`` as ready players, start, play to the end: (host log, player logs)."""
    host, code = await net.host()
    players = {}
    for seat in range(1, max(seats) + 1):
        players[seat] = await net.player(code, names[seat], AVATARS[seat])
    for seat in set(players) - set(seats):  # leave holes: seats need not be contiguous
        await players.pop(seat).aclose()
    await drain_updates(host)
    for client in players.values():
        await drain_updates(client)
    await host.send(StartGame())
    logs: dict[int, PlayerLog] = {}
    host_log: list[HostLog] = []

    async def run_player(seat: int) -> None:
        logs[seat] = await play_seat(players[seat], seat, random.Random(seed * 10 + seat))

    async def run_host() -> None:
        host_log.append(await observe_host(host, seats))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_host)
        for seat in seats:
            nursery.start_soon(run_player, seat)
    return host_log[0], logs, host, players, code


def check_results(host_log: HostLog, logs: dict[int, PlayerLog], seats) -> None:
    final = host_log.final
    assert sorted(host_log.finish_order) == sorted(seats)
    assert final.places == tuple(host_log.finish_order.index(s) + 1 if s in seats else 0 for s in range(1, 7))
    assert final.careers == tuple(CAREER_OF[s][3] if s in seats else "" for s in range(1, 7))
    assert final.salaries == tuple(CAREER_OF[s][2] if s in seats else 0 for s in range(1, 7))
    # Everyone is told the same results and is back in the same lobby.
    avatars = tuple(AVATARS[s] if s in seats else 0 for s in range(1, 7))
    assert host_log.lobby == update(avatars)
    group = [card for _, card in host_log.cards if card.kind in (K.YOURE_THE_BOSS, K.DID_YOU_KNOW)]
    for seat, log in logs.items():
        assert log.final == final and log.lobby == update(avatars)
        # YTB and DYK go to every player; BC, CP and Finish only to the mover / finisher.
        assert [c for c in log.cards if c.kind in (K.YOURE_THE_BOSS, K.DID_YOU_KNOW)] == group
        own = [card for mover, card in host_log.cards if mover == seat and card.kind not in (K.YOURE_THE_BOSS, K.DID_YOU_KNOW)]
        assert [c for c in log.cards if c.kind not in (K.YOURE_THE_BOSS, K.DID_YOU_KNOW)] == own
        assert sum(c.kind == K.FINISH for c in log.cards) == 1


# --------------------------------------------------------------------------- JOIN

async def test_every_join_answer(net):
    host, code = await net.host()
    assert len(code) == 4 and code.isalpha() and code.isupper() and code != "HOST"

    # 2, with the room's avatars at once; the code is case-insensitive.
    p1 = await net.client()
    await p1.send(JoinRequest(code.lower()))
    assert await recv_n(p1, 2) == [JoinResponse(JoinAnswer.PLAYER), update((0,) * 6)]

    # 4: no such room, malformed codes, non-ASCII bytes. The connection stays usable.
    stranger = await net.client()
    other = "ZZZZ" if code != "ZZZZ" else "YYYY"
    for raw in [b"JOIN" + other.encode(), b"JOIN12ab", b"JOIN\xff\xfe\xfd\xfc", b"JOIN    "]:
        await stranger.send_raw(raw)
        assert await recv(stranger) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    await stranger.send(JoinRequest(code))
    assert await recv_n(stranger, 2) == [JoinResponse(JoinAnswer.PLAYER), update((0,) * 6)]

    # 3: six players seated already (ready or not).
    for i in range(4):
        await net.player(code, f"Extra{i}", i + 1)
    seventh = await net.client()
    await seventh.send(JoinRequest(code))
    assert await recv(seventh) == JoinResponse(JoinAnswer.LOBBY_FULL)

    # 5: the room is in a game (and no seat is vacant).
    host2, code2 = await net.host()
    await net.player(code2, "Solo", 1)
    assert await recv(host2) == update((1, 0, 0, 0, 0, 0))
    await host2.send(StartGame())
    assert await recv(host2) == start_game(1)
    late = await net.client()
    await late.send(JoinRequest(code2))
    assert await recv(late) == JoinResponse(JoinAnswer.GAME_STARTED)
    # A second HOST spelling in lower case still creates a room.
    lower = await net.client()
    await lower.send(JoinRequest("host"))
    answer = await recv(lower)
    assert answer.response == JoinAnswer.HOST and answer.room not in (code, code2)
    # (3 for JOIN "HOST" at the server's room limit: tests/test_faults.py::test_room_limit_answers_3.)


# --------------------------------------------------------------------------- REDY

async def test_every_redy_answer_and_the_avatar_updates(net):
    host, code = await net.host()
    p1 = await net.player(code, "Maya", 3)
    assert await recv(host) == update((3, 0, 0, 0, 0, 0))
    p2 = await net.client()
    assert await p2.join(code) is JoinAnswer.PLAYER
    assert p2.avatars == (3, 0, 0, 0, 0, 0)  # the REDY 0 right after JOIN 2

    refusals = [
        (ReadyRequest("", 2), ReadyAnswer.EMPTY_NAME),
        (ReadyRequest("A" * 13, 2), ReadyAnswer.NAME_TOO_LONG),
        (ReadyRequest("Jo nas", 2), ReadyAnswer.INVALID_CHARACTERS),
        (ReadyRequest("Jonas", 0), ReadyAnswer.INVALID_CHARACTERS),
        (ReadyRequest("Jonas", 7), ReadyAnswer.INVALID_CHARACTERS),
        (ReadyRequest("MAYA", 2), ReadyAnswer.ALREADY_TAKEN),
        (ReadyRequest("Jonas", 3), ReadyAnswer.ALREADY_TAKEN),
        (ReadyRequest("sh1t", 2), ReadyAnswer.PROFANE),
        (ReadyRequest("SHIT", 2), ReadyAnswer.PROFANE),
    ]
    for request, answer in refusals:
        await p2.send(request)
        assert await recv(p2) == ReadyResponse(answer, (3, 0, 0, 0, 0, 0)), request
    # Raw bytes: a 200-byte name is read whole, then answered 3; a non-ASCII name is 4.
    await p2.send_raw(b"REDY" + bytes([200]) + b"a" * 200 + b"\x02")
    assert await recv(p2) == ReadyResponse(ReadyAnswer.NAME_TOO_LONG, (3, 0, 0, 0, 0, 0))
    await p2.send_raw(b"REDY\x05J\xe9r\xf4m\x02")
    assert await recv(p2) == ReadyResponse(ReadyAnswer.INVALID_CHARACTERS, (3, 0, 0, 0, 0, 0))
    # Refusals tell nobody else.
    await silent(host)
    await silent(p1)

    await p2.send(ReadyRequest("Jonas", 1))
    assert await recv(p2) == ReadyResponse(ReadyAnswer.ACCEPTED, (3, 1, 0, 0, 0, 0))
    assert await recv(host) == update((3, 1, 0, 0, 0, 0))
    assert await recv(p1) == update((3, 1, 0, 0, 0, 0))
    await silent(p2)

    # Re-REDY before the start: change the avatar (its own name is not "taken").
    await p2.send(ReadyRequest("jonas", 4))
    assert await recv(p2) == ReadyResponse(ReadyAnswer.ACCEPTED, (3, 4, 0, 0, 0, 0))
    assert await recv(host) == update((3, 4, 0, 0, 0, 0))
    assert await recv(p1) == update((3, 4, 0, 0, 0, 0))
    # The old avatar is free again.
    p3 = await net.player(code, "Ana", 1)
    assert p3.avatars == (3, 4, 1, 0, 0, 0)
    assert await recv(host) == update((3, 4, 1, 0, 0, 0))
    assert await recv(p1) == update((3, 4, 1, 0, 0, 0))

    # Leaving the lobby frees the seat: everyone else is told.
    await p2.aclose()
    assert await recv(host) == update((3, 0, 1, 0, 0, 0))
    assert await recv(p1) == update((3, 0, 1, 0, 0, 0))
    assert await recv(p3) == update((3, 0, 1, 0, 0, 0))
    # The next joiner gets the lowest free seat (2).
    p4 = await net.player(code, "Jonas", 5)
    assert p4.seat == 2 and p4.avatars == (3, 5, 1, 0, 0, 0)


# --------------------------------------------------------------------------- STRT

async def test_strt_refused_until_all_ready_and_from_players(net):
    host, code = await net.host()
    await host.send(StartGame())  # nobody seated
    assert await recv(host) == update((0,) * 6)
    p1 = await net.player(code, "Maya", 3)
    await recv(host)
    p2 = await net.client()
    await p2.join(code)
    await host.send(StartGame())  # p2 is seated but not ready
    assert await recv(host) == update((3, 0, 0, 0, 0, 0))
    for player in (p1, p2):  # STRT from a player: a resync to it, nothing to anyone else
        await player.send(StartGame())
        assert await recv(player) == update((3, 0, 0, 0, 0, 0))
    await silent(host)
    await silent(p1)
    await silent(p2)
    assert await p2.ready("Jonas", 1) is ReadyAnswer.ACCEPTED
    await drain_updates(host)
    await drain_updates(p1)
    await p2.send(StartGame())
    assert await recv(p2) == update((3, 1, 0, 0, 0, 0))
    await host.send(StartGame())
    for client in (host, p1, p2):
        assert await recv(client) == start_game(2)
    # STRT during the game: the host is resynced with the GAME.
    await host.send(StartGame())
    assert await recv(host) == start_game(2)
    await silent(p1)


# --------------------------------------------------------------------------- whole games

async def test_full_game_one_player(lgmp_server):
    stored = []
    net = await lgmp_server(on_game_finished=lambda finished, started, ended: stored.append(finished))
    host, code = await net.host()
    player = await net.player(code, "Maya", 3)
    await drain_updates(host)
    await host.send(StartGame())
    first = await recv(player)
    assert first == start_game(1)
    # CRER before finishing: ignored, GAME resync.
    await player.send(CareerChoice(5, "Creative Director", 132))
    assert await recv(player) == first
    logs: dict[int, PlayerLog] = {}

    async def run_player():
        logs[1] = await play_seat(player, 1, random.Random(11), first=first, try_bad_careers=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_player)
        host_log = await observe_host(host, (1,))
    check_results(host_log, logs, (1,))
    assert host_log.final == FinalResults((1, 0, 0, 0, 0, 0), ("Creative Director", "", "", "", "", ""), (132, 0, 0, 0, 0, 0))
    assert [c for _, c in host_log.cards if c.kind == K.FINISH] == [CardDealt(K.FINISH, 1)]
    # FINL is sent once the game is stored: the record agrees with it.
    [finished] = stored
    assert finished.room == code
    [record] = finished.record.players
    assert (record.seat, record.name, record.place, record.career, record.salary) == (1, "Maya", 1, "Creative Director", 132_770)
    assert record.field == 5 and not record.auto_career
    # Back in the lobby, same code, seat kept and still ready: STRT works at once.
    await host.send(StartGame())
    assert await recv(host) == start_game(1)
    assert await recv(player) == start_game(1)


async def test_full_game_six_players(net):
    seats = (1, 2, 3, 4, 5, 6)
    host_log, logs, host, players, code = await play_room(net, seats, seed=6)
    check_results(host_log, logs, seats)
    kinds = {card.kind for _, card in host_log.cards}
    assert {K.FINISH, K.YOURE_THE_BOSS, K.DID_YOU_KNOW} <= kinds  # the game went through cards
    assert [c.number for _, c in host_log.cards if c.kind == K.FINISH] == [1, 2, 2, 2, 2, 3]
    # Same seats again: a second game in the same room.
    await host.send(StartGame())
    assert await recv(host) == start_game(6)


async def test_non_contiguous_seats_game(net):
    seats = (2, 4, 5)
    host_log, logs, *_ = await play_room(net, seats, seed=3)
    assert host_log.games[0] == start_game(3, turn=2)
    check_results(host_log, logs, seats)


async def test_two_rooms_play_at_once_without_crosstalk(net):
    results = {}

    async def room(key, seats, seed):
        results[key] = await play_room(net, seats, seed)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(room, "a", (1, 2), 1)
        nursery.start_soon(room, "b", (1, 2, 3), 2)  # same names and avatars as room a
    (log_a, players_a, *_, code_a), (log_b, players_b, *_, code_b) = results["a"], results["b"]
    assert code_a != code_b
    check_results(log_a, players_a, (1, 2))
    check_results(log_b, players_b, (1, 2, 3))


# --------------------------------------------------------------------------- ignored packets

async def test_bad_card_answers_and_out_of_turn_spins_get_a_game_resync(lgmp_server):
    net = await lgmp_server(limits=dataclasses.replace(TEST_LIMITS, max_strikes=100))
    host, code = await net.host()
    p1 = await net.player(code, "Maya", 3)
    p2 = await net.player(code, "Jonas", 1)
    for client in (host, p1, p2):
        await drain_updates(client)
    await host.send(StartGame())
    start = start_game(2)
    for client in (host, p1, p2):
        assert await recv(client) == start

    async def ignored(client, packet, latest):
        await client.send(packet)
        assert await recv(client) == latest, packet

    for client, packet in [(p2, Spin(3)), (host, Spin(3)), (p1, Spin(0)), (p1, Spin(7)),
                           (p1, CardAnswer(1, -1)), (p1, CardAnswer(2, 0)), (host, CardAnswer(2, 1)),
                           (p1, ReadyRequest("Maya", 3))]:
        await ignored(client, packet, start)

    # Seat 1 spins 4: Career Point; the card goes to seat 1 and the host only.
    await p1.send(Spin(4))
    landing = GameUpdate(1, K.CAREER_POINT, (1, 0, 0, 0, 1) + (0,) * 51)
    for client in (host, p1, p2):
        assert await recv(client) == landing
    card = await recv(p1)
    assert card.kind == K.CAREER_POINT and await recv(host) == card
    option = rules.card(card.kind, card.number)
    for client, packet in [(p1, Spin(3)), (p2, Spin(3)), (p2, CardAnswer(1, option.option_a)),
                           (p1, CardAnswer(2, 6)), (p1, CardAnswer(1, 99)), (p1, CardAnswer(3, 1)),
                           (host, CardAnswer(1, option.option_a))]:
        await ignored(client, packet, landing)
    await silent(p2)  # no CARD for seat 2, and nothing from the others' ignored packets
    await p1.send(CardAnswer(1, option.option_b))
    occupancy = [0] * 56
    occupancy[0] += 1
    occupancy[4 + option.option_b] += 1
    resolved = GameUpdate(2, 0, tuple(occupancy))
    for client in (host, p1, p2):
        assert await recv(client) == resolved
    await ignored(p1, Spin(3), resolved)  # no longer its turn

    # Seat 2 spins 6: Did You Know (Marketing): to everyone, everyone answers.
    await p2.send(Spin(6))
    occupancy[0] -= 1
    occupancy[6] += 1
    landing = GameUpdate(2, K.DID_YOU_KNOW, tuple(occupancy))
    for client in (host, p1, p2):
        assert await recv(client) == landing
    card = await recv(host)
    assert card.kind == K.DID_YOU_KNOW and rules.card(card.kind, card.number).field == 5
    assert await recv(p1) == card and await recv(p2) == card
    await ignored(p1, CardAnswer(2, 4), landing)  # not the pile's field
    await p1.send(CardAnswer(2, 5))
    await silent(host)  # one answer of two: no GAME yet
    await ignored(p1, CardAnswer(2, 5), landing)  # a second answer
    await p2.send(CardAnswer(2, 0))
    resolved = GameUpdate(1, 0, tuple(occupancy))
    for client in (host, p1, p2):
        assert await recv(client) == resolved
        await silent(client, 0.02)


# --------------------------------------------------------------------------- bad bytes and faults

async def test_garbage_mid_game_closes_only_the_sender_and_the_seat_is_played(lgmp_server):
    net = await lgmp_server(limits=dataclasses.replace(TEST_LIMITS, leave_grace=0.1))
    host, code = await net.host()
    p1 = await net.player(code, "Maya", 3)
    p2 = await net.player(code, "Jonas", 1)
    for client in (host, p1):
        await drain_updates(client)
    await host.send(StartGame())
    for client in (host, p1, p2):
        assert await recv(client) == start_game(2)
    # A valid packet and garbage in one write: the packet counts, then the close.
    await p2.send_raw(b"SPIN\x03" + b"RSET")
    got = await until_closed(p2)
    assert got == [start_game(2)]  # the SPIN was out of turn: resynced, then closed
    await p1.send(Spin(2))
    assert (await recv(host)).turn == 2
    await recv(p1)
    # The server plays seat 2 after the grace: the next GAME shows its move.
    game = await recv(host, 3)
    assert isinstance(game, GameUpdate) and game.occupancy[0] == 0
    assert await recv(p1) == game


async def test_join_timeout_starts_again_after_a_refused_join(lgmp_server):
    net = await lgmp_server(limits=dataclasses.replace(TEST_LIMITS, join_timeout=0.3))
    client = await net.client()
    await trio.sleep(0.1)
    await client.send(JoinRequest("ZZZZ"))
    assert await recv(client) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    assert await until_closed(client, 2) == []


async def test_shutdown_resets_and_closes_everyone(net):
    host, code = await net.host()
    p1 = await net.player(code, "Maya", 3)
    lonely = await net.client()
    await trio.sleep(0.05)
    await net.server.shutdown()
    assert await until_closed(host) == [update((3, 0, 0, 0, 0, 0)), Reset()]
    assert await until_closed(p1) == [Reset()]
    assert await until_closed(lonely) == []
    with pytest.raises(OSError):
        await LGMPClient.connect("127.0.0.1", net.port)


async def test_rejoin_mid_game_reclaims_the_seat(net):
    host, code = await net.host()
    p1 = await net.player(code, "Maya", 3)
    p2 = await net.player(code, "Jonas", 1)
    for client in (host, p1):
        await drain_updates(client)
    await host.send(StartGame())
    for client in (host, p1, p2):
        assert await recv(client) == start_game(2)
    await p2.aclose()
    await trio.sleep(0.05)
    back = await net.client()
    await back.send(JoinRequest(code.lower()))
    # A rejoiner is not shown the vacant seat's avatar (half of what proves who may reclaim it).
    assert await recv_n(back, 2) == [JoinResponse(JoinAnswer.PLAYER), update((3, 0, 0, 0, 0, 0))]
    await back.send(ReadyRequest("Maya", 3))  # not the vacant seat
    assert await recv(back) == ReadyResponse(ReadyAnswer.ALREADY_TAKEN, (3, 0, 0, 0, 0, 0))
    await p1.send(Spin(2))  # the rejoiner is not sent the board until it is back
    moved = GameUpdate(2, 0, (1, 0, 1) + (0,) * 53)
    assert await recv(host) == moved
    await silent(back)
    await back.send(ReadyRequest("JONAS", 1))
    assert await recv_n(back, 2) == [ReadyResponse(ReadyAnswer.ACCEPTED, (3, 1, 0, 0, 0, 0)), moved]
    await silent(host)  # nothing changed for the others
    await back.send(Spin(3))
    assert (await recv(host)).occupancy[3] == 1
    # Nobody else may take the seat now.
    late = await net.client()
    await late.send(JoinRequest(code))
    assert await recv(late) == JoinResponse(JoinAnswer.GAME_STARTED)


# --------------------------------------------------------------------------- lgmp demo

async def test_lgmp_demo_runs_to_completion():
    script = shutil.which("lgmp", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "lgmp.cli"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with trio.fail_after(30):
        result = await trio.run_process([*command, "demo", "--bots", "3", "--delay", "0", "--seed", "4"],
                                        capture_stdout=True, capture_stderr=True, check=False, env=env)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "Final standings:" in out and out.rstrip().endswith("Demo over.")
    standings = out.split("Final standings:")[1].strip().splitlines()
    assert [line.split(".")[0].strip() for line in standings[:3]] == ["1", "2", "3"]


def test_play_facts_are_built_only_when_something_reads_them():
    from lgmp.server.shell import LGMPServer

    plain = LGMPServer(limits=TEST_LIMITS)
    assert plain.hub.facts is False  # no observer, no other dialect: the effects alone
    plain.watch(lambda events, now: None)
    assert plain.hub.facts is True
    assert LGMPServer(limits=TEST_LIMITS, dialect="unity-2022").hub.facts is True
    assert LGMPServer(limits=TEST_LIMITS, also_listen=[(0, "unity-2022")]).hub.facts is True


async def test_serving_cancelled_without_shutdown_still_closes_every_socket():
    import functools
    import socket

    from lgmp.server.shell import LGMPServer

    server = LGMPServer(limits=TEST_LIMITS)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(server.serve, "127.0.0.1", 0))
        client = socket.create_connection(("127.0.0.1", port))
        with trio.fail_after(5):
            while server.open_connections < 1:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()  # no shutdown(): a crash, an embedding that stops
    client.settimeout(5)
    try:
        assert client.recv(100) == b""  # the server's side is closed, not left open
        assert server.open_connections == 0
    finally:
        client.close()


async def test_listeners_closed_while_accepting_backs_off_do_not_crash_the_server(monkeypatch):
    import errno
    import functools
    import socket

    from lgmp.server.accept import Acceptor
    from lgmp.server.shell import LGMPServer

    real_accept = Acceptor.accept
    failed = trio.Event()

    async def emfile_once(self):
        if not failed.is_set():
            await trio.lowlevel.wait_readable(self._waited)
            failed.set()
            raise OSError(errno.EMFILE, "Too many open files")  # the loop backs off 0.1 s
        return await real_accept(self)

    monkeypatch.setattr(Acceptor, "accept", emfile_once)
    server = LGMPServer(limits=TEST_LIMITS)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(server.serve, "127.0.0.1", 0))
        client = socket.create_connection(("127.0.0.1", port))
        with trio.fail_after(5):
            await failed.wait()
        for listener in server.listeners:  # shutdown's first step, during the back-off
            await listener.aclose()
        await trio.sleep(0.3)  # the loop wakes and must end quietly (a crash fails the nursery)
        assert server.open_connections == 0  # nothing was accepted after the close
        nursery.cancel_scope.cancel()
    client.close()


def test_a_serving_process_collects_young_objects_less_often_and_freezes_its_start_up_objects():
    import subprocess
    import sys

    # In a process of its own: freezing would change this test process's collector.
    code = ("import gc; from lgmp.server.process import GC_FIRST_THRESHOLD, tune_collector; "
            "before = gc.get_threshold(); tune_collector(); after = gc.get_threshold(); "
            "assert after == (GC_FIRST_THRESHOLD, before[1], before[2]), (before, after); "
            "assert GC_FIRST_THRESHOLD > before[0]; assert gc.get_freeze_count() > 1000, gc.get_freeze_count()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
