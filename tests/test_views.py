"""The host and demo screens: the board rebuilt from packets, the full screen rendered at a
fixed size, the plain-line fallback, and the host session's start rules against a server."""

from __future__ import annotations

import math
import re
from io import StringIO

import pytest
import trio
from rich.console import Console

from lgmp.clients.board import HostBoard, Phase
from lgmp.clients.demo import demo_header, demo_session
from lgmp.clients.host import host_session
from lgmp.clients.play import Line
from lgmp.clients.views import FullScreen, PlainScreen, event_plain, host_header, make_screen, screen_text
from lgmp.wire.packets import CardDealt, FinalResults, GameUpdate, ReadyAnswer, ReadyResponse, Reset

from .conftest import TIMEOUT, recv, silent

RED, YELLOW = 1, 2


def occupancy(**where: int) -> tuple[int, ...]:
    """occupancy(s0=1, s4=1): counts per space."""
    counts = [0] * 56
    for key, n in where.items():
        counts[int(key[1:])] += n
    return tuple(counts)


def update(*avatars: int) -> ReadyResponse:
    return ReadyResponse(ReadyAnswer.UPDATE, tuple(avatars) + (0,) * (6 - len(avatars)))


# A short game, Red (seat 1) and Yellow (seat 2): every kind of event a host sees.
LOBBY = [update(RED), update(RED, YELLOW)]
OPENING = [
    GameUpdate(1, 0, occupancy(s0=2)),  # start
    GameUpdate(1, 2, occupancy(s0=1, s4=1)),  # Red spins 4 onto a Career Point: the card waits
    CardDealt(2, 7),  # Career Point #7: A -1, B +2
]
MIDDLE = [
    GameUpdate(2, 0, occupancy(s0=1, s6=1)),  # Red chose B: 4 -> 6, by the card
    GameUpdate(1, 0, occupancy(s3=1, s6=1)),  # Yellow spins 3
]
ENDING = [
    GameUpdate(2, 5, occupancy(s3=1, s55=1)),  # Red reaches the finish; the turn is already Yellow's
    CardDealt(5, 1),  # ... and its Finish card follows
    GameUpdate(0, 5, occupancy(s55=2)),  # Yellow finishes last
    CardDealt(5, 3),
    FinalResults((1, 2, 0, 0, 0, 0), ("User Experience Designer", "Business Data Analyst", "", "", "", ""),
                 (90, 69, 0, 0, 0, 0)),
    Reset(),
    update(RED),  # Yellow had left mid-game and never came back: its seat is freed
]


def feed_all(board: HostBoard, packets) -> list:
    events = []
    for packet in packets:
        events += board.feed(packet)
    return events


def plain(events) -> list[str]:
    return [event_plain(e) for e in events]


# =============================================================================== the board


def test_pieces_are_tracked_and_moves_say_what_moved_them():
    board = HostBoard()
    lines = plain(feed_all(board, LOBBY + OPENING + MIDDLE))
    assert "Red is ready in seat 1." in lines and "Yellow is ready in seat 2." in lines
    assert "Game 1 starts: Red and Yellow on the start (space 0)." in lines
    assert "Red spun 4: space 0 → 4, Career Point." in lines
    assert "Card for Red: Career Point #7, A: move 1 space back, or B: move 2 spaces forward." in lines
    # The card's move is the card's, never "(plain)".
    assert "Red moves 2 spaces forward by Career Point #7: space 4 → 6." in lines
    assert not any("plain)" in line for line in lines)
    assert "Yellow spun 3: space 0 → 3, a plain space." in lines
    assert board.positions == {1: 6, 2: 3} and board.turn == 1


def test_a_finish_card_comes_before_the_next_turn_line():
    board = HostBoard()
    lines = plain(feed_all(board, LOBBY + OPENING + MIDDLE + ENDING[:2]))
    finished = lines.index("Red finished 1st (Finish #1: first to finish) and now chooses a career.")
    assert lines[finished - 1] == "Red reaches the finish: space 6 → 55!"
    assert lines[finished + 1] == "Yellow's turn to spin."
    assert board.place_of(1) == 1


def test_standings_use_the_catalogues_salaries_and_say_what_place_means():
    board = HostBoard()
    out: list[str] = []
    screen = PlainScreen(out.append)
    for packet in LOBBY + OPENING + MIDDLE + ENDING:
        screen.show(board, board.feed(packet), 0.0)
    text = "\n".join(out)
    assert "Place is the finishing order (1st reached space 55 first), not pay" in text
    assert re.search(r"1\. Red \(seat 1\) +User Experience Designer +\$90,700", text)
    assert re.search(r"2\. Yellow \(seat 2\) +Business Data Analyst +\$69,252", text)
    assert "$90,000" not in text and "$69,000" not in text
    assert "Best paid: Red, User Experience Designer, $90,700 a year." in text
    # Yellow dropped mid-game: the host learns it when its seat is freed after the game.
    assert "Yellow left during the game and did not come back; the server played for them." in text
    assert board.phase is Phase.LOBBY


def test_a_player_leaving_the_lobby_is_shown():
    board = HostBoard()
    lines = plain(feed_all(board, LOBBY + [update(RED)]))
    assert lines[-1] == "Yellow left (seat 2 is free again)."


# =============================================================================== the full screen


def test_the_80x24_screen_shows_the_code_the_join_command_the_pieces_and_the_card():
    board = HostBoard()
    feed_all(board, LOBBY + OPENING)
    header = host_header("QZKW", "127.0.0.1", 14112)
    text = screen_text(board, header, code="QZKW", width=80, height=24, now=3.0, prompt="")
    lines = text.splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "QZKW" in lines[0]
    assert "lgmp play QZKW --port 14112" in lines[1]
    kinds = next(line for line in lines if "·?··C·?·Y" in line)
    track_start = kinds.index("·?··C")
    red = next(line for line in lines if "● Red    1" in line)
    yellow = next(line for line in lines if "● Yellow 2" in line)
    assert red.index("●", red.index("1 ")) - track_start == 4  # Red's piece on space 4
    assert yellow.index("●", yellow.index("2 ")) - track_start == 0
    assert "Career Point #7 for ● Red" in text and "A: move 1 space back, or B: move 2 spaces" in text  # wrapped: "forward" is on the next line
    assert "Waiting for the card's answers" in text


def test_the_code_stays_on_screen_however_long_the_game():
    board = HostBoard()
    events = feed_all(board, LOBBY + OPENING + MIDDLE)
    log = events * 50
    text = screen_text(board, host_header("QZKW", "127.0.0.1", 1111), code="QZKW", width=80, height=24,
                       prompt="", log=log)
    lines = text.splitlines()
    assert len(lines) == 24 and "QZKW" in lines[0] and "lgmp play QZKW" in lines[1]
    assert "--port" not in lines[1]  # the default port needs no option
    assert "Yellow spun 3" in text  # the newest events are the ones shown


def test_the_final_screen_explains_the_standings():
    board = HostBoard()
    feed_all(board, LOBBY + OPENING + MIDDLE + ENDING[:5])
    text = screen_text(board, demo_header(2, 4242), code="QZKW", width=80, height=24)
    assert "Final standings" in text and "finishing order" in text
    assert "$90,700" in text and "$69,252" in text
    assert "● Red" in text and "55 1st" in text


def test_the_screen_is_coloured_on_a_terminal():
    board = HostBoard()
    feed_all(board, LOBBY + OPENING)
    text = screen_text(board, host_header("QZKW", "127.0.0.1", 1111), code="QZKW", width=100, height=30,
                       colour=True)
    assert "\x1b[" in text and "QZKW" in text


def test_not_a_terminal_means_plain_lines():
    assert isinstance(make_screen(Console(file=StringIO())), PlainScreen)
    assert isinstance(make_screen(Console(file=StringIO(), force_terminal=True, width=80, height=24)), FullScreen)


def test_the_demo_offers_no_join_command_that_cannot_work():
    header = demo_header(4, 40123)
    assert header.join is None and "lgmp play CODE" in header.note and "4 bots" in header.note
    assert demo_header(1, 1).note.startswith("1 bot plays here;")


# =============================================================================== the host session


class Keys:
    """Enter presses from the test."""

    interactive = True

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[Line](math.inf)

    def press(self) -> None:
        self._send.send_nowait(Line("", trio.current_time()))

    async def readline(self) -> Line:
        return await self._receive.receive()

    def unread(self, line: Line) -> None:
        raise AssertionError("the host never gives a line back")


async def wait_for(predicate, what: str) -> None:
    with trio.fail_after(TIMEOUT):
        while not predicate():
            await trio.sleep(0.01)


async def test_enter_before_anyone_is_ready_is_answered_and_forgotten(net, nursery):
    keys, out, codes = Keys(), [], []
    host = await net.client()
    nursery.start_soon(lambda: host_session(host, PlainScreen(out.append), start_when=None, games=1, keys=keys,
                                            header=lambda code: host_header(code, "127.0.0.1", net.port),
                                            on_open=codes.append))
    await wait_for(lambda: codes, "the room")
    assert f"lgmp play {codes[0]} --port {net.port}" in out[0]
    keys.press()  # nobody is ready
    await wait_for(lambda: any("nobody is ready yet" in line for line in out), "the answer to Enter")
    ann = await net.player(codes[0], "Ann", RED)
    await silent(ann, 0.3)  # the early Enter was not kept: the game does not start by itself
    bob = await net.client()
    await bob.join(codes[0])  # seated, not ready
    keys.press()
    await wait_for(lambda: any("Not started: a player who joined has not picked" in line for line in out), "refusal")
    await net.player(codes[0], "Cy", YELLOW)
    await bob.aclose()
    await recv(ann)  # Cy's REDY 0
    await recv(ann)  # Bob's leaving
    keys.press()
    assert isinstance(await recv(ann), GameUpdate)


async def test_start_when_waits_for_that_many_players(net, nursery):
    out, codes = [], []
    host = await net.client()
    nursery.start_soon(lambda: host_session(host, PlainScreen(out.append), start_when=2, games=1,
                                            header=lambda code: host_header(code, "127.0.0.1", net.port),
                                            on_open=codes.append))
    await wait_for(lambda: codes, "the room")
    ann = await net.player(codes[0], "Ann", RED)
    await silent(ann, 0.2)
    await net.player(codes[0], "Bob", YELLOW)
    assert isinstance(await recv(ann), ReadyResponse)
    assert isinstance(await recv(ann), GameUpdate)


async def test_a_whole_demo_game_in_plain_lines_and_no_connection_is_reset(caplog):
    out: list[str] = []
    caplog.set_level("INFO", logger="lgmp.server")
    with trio.fail_after(30):
        played = await demo_session(PlainScreen(out.append), bots=3, delay=0.0, seed=5)
    assert played == 1
    text = "\n".join(out)
    assert "3 bots play here" in text and "Game 1 starts:" in text and "Final standings" in text
    assert re.search(r"Best paid: \w+, [^,]+, \$\d{2,3},\d{3} a year\.", text)
    # Every client leaves politely: no closed-connection line blames a broken pipe or a reset.
    closes = [r.getMessage() for r in caplog.records if "closed:" in r.getMessage()]
    assert closes and not [c for c in closes if "failed" in c], closes


@pytest.mark.parametrize("height", [24, 30])
def test_six_players_fit_a_small_terminal(height):
    board = HostBoard()
    feed_all(board, [update(1, 2, 3, 4, 5, 6), GameUpdate(1, 0, occupancy(s0=6))])
    text = screen_text(board, host_header("ABCD", "127.0.0.1", 1111), code="ABCD", width=80, height=height)
    lines = text.splitlines()
    assert len(lines) == height and "ABCD" in lines[0]
    assert all(f"● {name}" in text for name in ("Red", "Yellow", "Green", "Blue", "Purple", "Pink"))
    assert "Turn: ● Red (seat 1) to spin" in text
