"""``lgmp play``: the pure question/answer parts, then whole games against a real server.

The end-to-end tests run an in-process server, a host, bots and a play session
whose input comes from a ``Typist``: a test double that reads the prompt on
screen and types an answer, as a person would. One test lets the clock run out
on some questions so the server plays for the person; one runs ``lgmp play``
as a subprocess fed by a pipe.
"""

from __future__ import annotations

import os
import random
import re
import socket
import sys
from collections import Counter, deque
from collections.abc import Callable

import pytest
import trio

from lgmp.clients.bot import play_bot
from lgmp.clients.client import LGMPClient
from lgmp.limits import Limits
from lgmp.wire.packets import (
    CardAction,
    CardAnswer,
    CareerChoice,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    ReadyAnswer,
    ReadyResponse,
    Reset,
    StartGame,
)
from lgmp.clients.play import BOUNCE_GUARD, Line, PlaySession, ScriptedLines, play_session, run_play
from lgmp.clients.prompts import (
    BACK,
    BadAnswer,
    avatar_question,
    card_question,
    career_question,
    default_card_answer,
    field_question,
    join_message,
    name_problem,
    parse_avatar,
    parse_card_answer,
    parse_career,
    parse_field,
    parse_name,
    ready_message,
    spin_question,
    standings_lines,
    validate_career,
)
from lgmp.game.rules import (
    CAREERS,
    Field,
    SpaceKind,
    card,
    card_text,
    default_career,
    default_field,
    token_name,
    wire_salary,
)
from lgmp.server.shell import LGMPServer

BC, CP, YTB, DYK = SpaceKind.BRAND_CRISIS, SpaceKind.CAREER_POINT, SpaceKind.YOURE_THE_BOSS, SpaceKind.DID_YOU_KNOW
MOVE, TOKEN = CardAction.MOVE, CardAction.TOKEN


# =============================================================================== pure parts


def test_join_and_ready_messages_name_the_problem():
    # A refused JOIN ends ``lgmp play`` with its message: 4 is played through over a
    # socket in test_join_refusals_and_connection_errors_exit_1; 3 and 5 take the same path.
    assert join_message(JoinAnswer.LOBBY_FULL, "qzmb") == "Room QZMB is full: it already has six players."
    assert join_message(3, "qzmb") == join_message(JoinAnswer.LOBBY_FULL, "QZMB")
    assert "no room QZMB" in join_message(JoinAnswer.ROOM_NOT_FOUND, "QZMB")
    assert join_message(JoinAnswer.GAME_STARTED, "qzmb") == \
        "The game in room QZMB has already started. Wait for it to end, then join again."
    assert "need a username" in ready_message(ReadyAnswer.EMPTY_NAME)
    assert "at most 12" in ready_message(ReadyAnswer.NAME_TOO_LONG)
    assert "not allowed" in ready_message(ReadyAnswer.INVALID_CHARACTERS)
    assert "already has that username or that avatar" in ready_message(ReadyAnswer.ALREADY_TAKEN)
    assert "not allowed" in ready_message(ReadyAnswer.PROFANE)


@pytest.mark.parametrize("name", ["Maya", "[x]", "A" * 12, "007", "  Jonas  "])
def test_good_names(name):
    assert parse_name(name) == name.strip()
    assert name_problem(name.strip()) is None


@pytest.mark.parametrize("name, words", [("", "need a username"), ("A" * 13, "too long"), ("Ma ya", "not allowed"),
                                          ("Maya!", "not allowed"), ("Zoë", "not allowed")])
def test_bad_names_are_refused_locally(name, words):
    with pytest.raises(BadAnswer, match=words):
        parse_name(name)


def test_avatar_choice_offers_only_free_colours():
    room = (3, 1, 0, 0, 0, 0)  # Green and Red taken
    question = avatar_question(room)
    assert "2 Yellow" in question.lines[0] and "Green" not in question.lines[0] and "Red" not in question.lines[0]
    assert "[Enter = 2 Yellow]" in question.ask
    assert parse_avatar("4", room) == 4
    assert parse_avatar(" purple ", room) == 5
    assert parse_avatar("", room) == 2
    with pytest.raises(BadAnswer, match="Green is taken"):
        parse_avatar("3", room)
    assert parse_avatar("3", room, insisted=3) == 3  # rejoining a game: the old colour, asked for twice
    question = avatar_question(room)
    with pytest.raises(BadAnswer, match="Type 3 again"):
        question.parse("green")
    assert question.parse("3") == 3
    with pytest.raises(BadAnswer, match="Green is taken"):
        question.parse("3")  # only right after the refusal
    with pytest.raises(BadAnswer, match="free avatar"):
        parse_avatar("7", room)
    live = [room]
    changing = avatar_question(room, live=lambda: live[0])
    live[0] = (3, 1, 4, 0, 0, 0)  # Blue taken while the person was typing
    with pytest.raises(BadAnswer, match="Blue is taken"):
        changing.parse("4")


@pytest.mark.parametrize("number", range(1, 13))
def test_brand_crisis_any_line_confirms_the_cards_move(number):
    move = card(BC, number).move
    for text in ("", "ok", "x"):
        assert parse_card_answer(BC, number, text) == CardAnswer(MOVE, move)
    assert card_text(BC, number) in card_question(BC, number).lines[0]


@pytest.mark.parametrize("number", range(1, 9))
def test_career_point_takes_a_or_b(number):
    cp = card(CP, number)
    assert parse_card_answer(CP, number, "a") == CardAnswer(MOVE, cp.option_a)
    assert parse_card_answer(CP, number, " B ") == CardAnswer(MOVE, cp.option_b)
    larger = cp.option_b if cp.option_b > cp.option_a else cp.option_a  # A on a tie
    assert parse_card_answer(CP, number, "") == default_card_answer(CP, number) == CardAnswer(MOVE, larger)
    for bad in ("c", "1", "ab"):
        with pytest.raises(BadAnswer, match="A or B"):
            parse_card_answer(CP, number, bad)


def test_career_point_prompt_shows_both_moves_and_the_default():
    question = card_question(CP, 7)  # A -1, B +2
    assert question.lines[1:] == ("  A: move 1 space back", "  B: move 2 spaces forward")
    assert "[Enter = B]" in question.ask


@pytest.mark.parametrize("number", range(1, 9))
def test_youre_the_boss_takes_one_of_the_cards_fields(number):
    options = card(YTB, number).options
    for f in Field:
        if f in options:
            assert parse_card_answer(YTB, number, str(int(f))) == CardAnswer(TOKEN, f)
        else:
            with pytest.raises(BadAnswer, match="does not offer"):
                parse_card_answer(YTB, number, str(int(f)))
    assert parse_card_answer(YTB, number, "m") == CardAnswer(TOKEN, Field.MARKETING)  # by letter
    assert parse_card_answer(YTB, number, "market") == CardAnswer(TOKEN, Field.MARKETING)  # by name prefix
    assert parse_card_answer(YTB, number, "") == CardAnswer(TOKEN, options[0])  # the server's pick: Advertising
    with pytest.raises(BadAnswer):
        parse_card_answer(YTB, number, "0")
    shown = card_question(YTB, number).lines[1:]
    assert [line.split()[0] for line in shown] == [str(int(f)) for f in sorted(options)]


@pytest.mark.parametrize("number", [1, 8, 20, 29, 39])
def test_did_you_know_takes_or_leaves_the_token(number):
    pile = card(DYK, number).field
    for yes in ("y", "Yes", ""):
        assert parse_card_answer(DYK, number, yes) == CardAnswer(TOKEN, pile)
    for no in ("n", "NO"):
        assert parse_card_answer(DYK, number, no) == CardAnswer(TOKEN, 0)
    with pytest.raises(BadAnswer, match="y .* or n"):
        parse_card_answer(DYK, number, "maybe")
    assert card_question(DYK, number).lines[0].endswith(f"every player may take {token_name(pile)}.")


def test_finish_and_unknown_cards_ask_nothing():
    for kind, number in ((SpaceKind.FINISH, 1), (BC, 0), (BC, 13), (DYK, 40), (SpaceKind.PLAIN, 1)):
        with pytest.raises(ValueError):
            card_question(kind, number)
        with pytest.raises(BadAnswer, match="takes no answer"):
            parse_card_answer(kind, number, "a")


def test_field_choice_defaults_to_the_field_with_most_tokens():
    assert default_field({}) == Field.DESIGN  # no tokens: lowest field
    tokens = Counter({Field.MARKETING: 2, Field.ADVERTISING: 2, Field.DESIGN: 1})
    assert default_field(tokens) == Field.MARKETING  # tie: lowest number
    question = field_question(tokens)
    assert "[Enter = 5 Marketing]" in question.ask
    assert any("Marketing" in line and "tokens: 2" in line for line in question.lines)
    assert question.parse("") == Field.MARKETING
    assert question.parse("3") == Field.BUSINESS_DATA_ANALYTICS
    assert question.parse("public") == Field.PUBLIC_RELATIONS
    for bad in ("0", "7", "x"):
        with pytest.raises(BadAnswer, match="1-6"):
            parse_field(bad)


@pytest.mark.parametrize("f", list(Field))
def test_every_career_choice_parses_to_a_crer_the_server_accepts(f):
    for i, career in enumerate(CAREERS[f], start=1):
        by_number = parse_career(f, str(i))
        by_name = parse_career(f, career.name.upper())
        assert by_number == by_name == CareerChoice(int(f), career.name, wire_salary(career))
        assert validate_career(by_number)
    default = parse_career(f, "")
    assert default.career == default_career(f).name and validate_career(default)
    assert parse_career(f, "0") == BACK
    with pytest.raises(BadAnswer):
        parse_career(f, str(len(CAREERS[f]) + 1))
    question = career_question(f)
    assert all("$" in line for line in question.lines[1:-1])


def test_career_choice_validation():
    assert validate_career(CareerChoice(5, "creative director", 132))
    assert not validate_career(CareerChoice(3, "Creative Director", 132))  # not a BDA career
    assert not validate_career(CareerChoice(5, "Creative Director", 133))  # wrong salary
    assert not validate_career(CareerChoice(7, "Creative Director", 132))
    with pytest.raises(BadAnswer):
        parse_career(Field.DESIGN, "System Architect")  # a career of another field
    assert parse_career(Field.DESIGN, "user ex").career == "User Experience Designer"  # unique prefix
    with pytest.raises(BadAnswer):
        parse_career(Field.DESIGN, "user")  # two careers start so


def test_standings():
    results = FinalResults((2, 1, 0, 0, 0, 0), ("Creative Director", "System Architect", "", "", "", ""), (132, 105, 0, 0, 0, 0))
    lines = standings_lines(results, 1, lambda s: f"seat{s}")
    assert lines[1].split()[:3] == ["1.", "seat2", "System"] and "$105,000" in lines[1]
    assert "$132,770" in lines[2]
    assert lines[-1] == "You finished 2nd of 2, as Creative Director earning $132,770 a year."
    # The wire's 90 (thousands) shows as the catalogue's exact $90,700.
    ux = FinalResults((1, 0, 0, 0, 0, 0), ("User Experience Designer", "", "", "", "", ""), (90, 0, 0, 0, 0, 0))
    assert standings_lines(ux, 1, str)[-1].endswith("earning $90,700 a year.")


async def test_a_terminal_drops_lines_typed_before_the_prompt_and_a_bounced_enter():
    out: list[str] = []
    session = PlaySession(None, ScriptedLines([]), lambda text="", end="\n": out.append(text))
    session.lines.interactive = True
    choice = card_question(CP, 7)
    session._show(choice, full=True)
    shown = session._shown_at
    assert not session._fresh(Line("b", shown - 0.1), choice)  # typed before the question appeared
    assert not session._fresh(Line("", shown + BOUNCE_GUARD / 2), choice)  # a double Enter ...
    assert out[-1] == choice.ask  # ... and the question is asked again
    assert session._fresh(Line("b", shown + 0.05), choice)
    assert session._fresh(Line("", shown + BOUNCE_GUARD + 0.01), choice)
    spin = spin_question(GameUpdate(1, 0, (1,) + (0,) * 55))
    session._show(spin, full=True)
    assert session._fresh(Line("", session._shown_at + 0.01), spin)  # nothing to choose: a quick Enter spins
    assert not session._fresh(Line("", session._shown_at - 0.01), spin)  # but not one typed before the turn
    session.lines.interactive = False  # a pipe: every line counts, in order
    assert session._fresh(Line("b", shown - 1), choice)


# =============================================================================== whole games


class Typist:
    """Both the session's screen and its keyboard: reads the open prompt, types an answer.

    ``answer(ask, count)`` gets the prompt and how many times a prompt starting the
    same way was answered before; it returns the line to type, or None to stay silent
    (the server will play for the person).
    """

    interactive = False

    def __init__(self, answer: Callable[[str, int], str | None]):
        self.answer = answer
        self.transcript: list[str] = []
        self._partial = ""
        self._asks = 0  # prompts shown
        self._answered = 0  # prompts answered
        self._ask = ""
        self.counts: Counter = Counter()
        self._back: deque[Line] = deque()

    def out(self, text: str = "", end: str = "\n") -> None:
        if end == "":
            self._partial += text
            self._ask = text
            self._asks += 1
        else:
            self.transcript.append(self._partial + text)
            self._partial = ""

    async def readline(self) -> Line:
        if self._back:
            await trio.lowlevel.checkpoint()
            return self._back.popleft()
        while self._answered >= self._asks:
            await trio.sleep(0.001)
        self._answered = self._asks
        kind = self._ask.split("[")[0].split(":")[0]
        text = self.answer(self._ask, self.counts[kind])
        self.counts[kind] += 1
        if text is None:
            await trio.sleep_forever()
        return Line(text)

    def unread(self, line: Line) -> None:
        self._back.appendleft(line)

    def text(self) -> str:
        return "\n".join(self.transcript + [self._partial])


async def run_host(port: int, players: int, lobby: list, results: list, *, task_status=trio.TASK_STATUS_IGNORED):
    """A host: open a room, start once ``players`` are ready, read until the RSET after FINL.

    ``lobby`` gets the number of ready players after each lobby update.
    """
    async with await LGMPClient.connect("127.0.0.1", port) as host:
        task_status.started(await host.host_room())
        started = False
        while True:
            packet = await host.receive()
            if isinstance(packet, ReadyResponse):
                lobby.append(sum(1 for a in packet.avatars if a))
            if isinstance(packet, ReadyResponse) and not started and lobby[-1] >= players:
                await host.send(StartGame())
                started = True
            elif isinstance(packet, FinalResults):
                results.append(packet)
            elif isinstance(packet, Reset):
                return


async def wait_ready(lobby: list, count: int) -> None:
    """Wait until the host has seen ``count`` ready players."""
    with trio.fail_after(5):
        while not lobby or lobby[-1] < count:
            await trio.sleep(0.01)


async def game(answer, *, bots: int = 2, limits: Limits | None = None, seed: int = 7, server_spins: bool = False):
    """One whole game: server, host, ``bots`` bots, then the person typing via ``answer``."""
    server = LGMPServer(limits=limits, seed=seed, server_spins=server_spins)
    typist = Typist(answer)
    results: list[FinalResults] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        lobby: list[int] = []
        code = await nursery.start(run_host, port, bots + 1, lobby, results)
        for i in range(bots):
            nursery.start_soon(lambda i=i: play_bot("127.0.0.1", port, code, name=f"Bot{i + 1}", seed=seed + i))
        await wait_ready(lobby, bots)  # so the person's first name, Bot1, is taken
        async with await LGMPClient.connect("127.0.0.1", port) as client:
            session = PlaySession(client, typist, typist.out, rng=random.Random(seed))
            with trio.fail_after(15):
                exit_code = await session.run(code)
        await server.shutdown()
        nursery.cancel_scope.cancel()
    return exit_code, session, typist, results


def eager(ask: str, count: int) -> str | None:
    """A person who tries some wrong answers first, then plays properly and picks System Architect."""
    if ask.startswith("Username"):
        return ["bad name", "Bot1", "shit", "Tester"][count]
    if ask.startswith("Avatar"):
        return ["9", ""][min(count, 1)]
    if ask.startswith("A or B"):
        return "x" if count == 0 else "b"
    if ask.startswith("Field number"):
        return "0" if count == 0 else "M"
    if ask.startswith("Take the"):
        return "y" if count % 2 else "n"
    if ask.startswith("Field 1-6"):
        return "3"
    if ask.startswith("Career"):
        return "0" if count == 0 else "system architect"
    return ""  # spin, Brand Crisis


async def test_a_person_plays_a_whole_game_against_bots():
    exit_code, session, typist, results = await game(eager)
    text = typist.text()
    assert exit_code == 0, text
    # The lobby: a local refusal, two server refusals, then in.
    assert "Username: bad name\nThat username has a character that is not allowed" in text
    assert "Username: Bot1\n" in text and "already has that username or that avatar" in text
    assert "That username is not allowed" in text
    # A banned name is refused before an avatar is asked for.
    assert "Avatar" not in text.split("Username: shit")[1].split("Username: Tester")[0]
    assert "Avatar number [Enter = " in text and "Please type the number of a free avatar" in text
    assert "You are Tester," in text
    # The game: the board, spins, cards, career.
    assert "The game has started!" in text and "^ you (space 0)" in text
    assert "Your turn! Press Enter to spin: " in text and "The spinner lands on " in text
    assert "You finished" in text and "Business Data Analytics careers:" in text
    assert "You chose System Architect in Business Data Analytics, $105,000 a year." in text
    # The results: FINL reached with a place and the chosen career.
    assert "Final standings:" in text and text.rstrip().endswith("Thanks for playing!")
    seat = session.view.seat
    assert session.results is not None and results == [session.results]
    assert session.results.places[seat - 1] in (1, 2, 3)
    assert session.results.careers[seat - 1] == "System Architect" and session.results.salaries[seat - 1] == 105
    assert "as System Architect earning $105,000 a year." in text
    # Nothing was sent that the server ignored, and the server never had to play for the person.
    assert "too late" not in text and "Too slow" not in text


async def test_with_server_spins_the_spin_shown_is_the_move_made():
    exit_code, session, typist, results = await game(eager, server_spins=True, seed=4)
    lines = typist.text().splitlines()
    assert exit_code == 0, typist.text()
    shown = [(i, int(m.group(1))) for i, line in enumerate(lines) if (m := re.fullmatch(r"The spinner lands on (\d)!", line))]
    assert shown
    for i, number in shown:  # the board's line for the same move follows at once
        assert re.match(rf"\w+ \(you\) spun {number}: space (\d+) → (\d+)", lines[i + 1]), lines[i:i + 2]


async def test_the_server_plays_for_a_slow_person_and_no_stale_answer_is_sent():
    silent = {"Your turn": 1, "card": 2}

    def slow(ask: str, count: int) -> str | None:
        if ask.startswith("Username"):
            return "Slowpoke"
        if ask.startswith("Your turn") and silent["Your turn"]:
            silent["Your turn"] -= 1
            return None
        if ask.startswith(("A or B", "Field number", "Take the", "Press Enter to accept")) and silent["card"]:
            silent["card"] -= 1
            return None
        if ask.startswith(("Field 1-6", "Career")):
            return None  # let the server choose the career too
        return eager(ask, 1)

    exit_code, session, typist, results = await game(slow, bots=1, limits=Limits(turn_timeout=0.3), seed=11)
    text = typist.text()
    assert exit_code == 0, text
    assert "Too slow: the server spun for you." in text
    assert text.count("Too slow: the server answered for you.") == 2
    assert "Too slow: the server chose a career for you." in text
    assert "too late" not in text  # no answer to a settled question was sent
    # The career the server chose follows the tokens the session counted (its own and the server's).
    seat = session.view.seat
    expected = default_career(default_field(session.tokens))
    assert session.results.careers[seat - 1] == expected.name


async def test_end_of_input_leaves_cleanly():
    server = LGMPServer()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        code = await nursery.start(run_host, port, 2, [], [])
        out: list[str] = []
        async with await LGMPClient.connect("127.0.0.1", port) as client:
            exit_code = await play_session(client, code, ["Quitter"], lambda text="", end="\n": out.append(text))
        assert exit_code == 1 and out[-1] == "No more input: leaving the room."
        await server.shutdown()
        nursery.cancel_scope.cancel()


async def test_join_refusals_and_connection_errors_exit_1(capsys):
    server = LGMPServer()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        out: list[str] = []
        async with await LGMPClient.connect("127.0.0.1", port) as client:
            assert await play_session(client, "zzzz", [], lambda text="", end="\n": out.append(text)) == 1
        assert out == ["There is no room ZZZZ. Check the four-letter code on the host's screen."]
        for bad in ("ABCDE", "Zoë1", "AB1D"):
            out.clear()
            async with await LGMPClient.connect("127.0.0.1", port) as client:
                assert await play_session(client, bad, [], lambda text="", end="\n": out.append(text)) == 1
            assert out == [f"{bad.upper()!r} is not a room code: a code is four letters A-Z, like QZMB."]
        await server.shutdown()
        nursery.cancel_scope.cancel()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    assert await run_play("127.0.0.1", closed_port, "ABCD") == 1
    assert "lgmp play: cannot connect to 127.0.0.1:" in capsys.readouterr().err


async def test_the_room_closing_mid_lobby_is_reported():
    server = LGMPServer()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        host = await LGMPClient.connect("127.0.0.1", port)
        code = await host.host_room()
        out: list[str] = []

        async def close_host_soon():
            await host.wait_for(lambda p: isinstance(p, ReadyResponse) and any(p.avatars))
            await trio.sleep(0.5)
            await host.aclose()

        nursery.start_soon(close_host_soon)
        async with await LGMPClient.connect("127.0.0.1", port) as client:
            lines = ScriptedLines(["Lonely", ""], then_wait=True)
            assert await play_session(client, code, lines, lambda text="", end="\n": out.append(text)) == 1
        assert out[-2:] == ["Waiting for the host to start the game...",
                            "The room was closed (the host left or the server is shutting down)."]
        await server.shutdown()
        nursery.cancel_scope.cancel()


async def test_lgmp_play_cli_from_a_pipe():
    server = LGMPServer(seed=3)
    results: list[FinalResults] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        code = await nursery.start(run_host, port, 2, [], results)
        nursery.start_soon(lambda: play_bot("127.0.0.1", port, code, name="Bot1", seed=3))
        typed = b"Piper\n\n" + b"\n" * 400  # a name, the default avatar, then Enter for every question
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with trio.fail_after(15):
            done = await trio.run_process(
                [sys.executable, "-m", "lgmp.cli", "play", code.lower(), "--port", str(port)],
                stdin=typed, capture_stdout=True, capture_stderr=True, check=False, env=env,
            )
        await server.shutdown()
        nursery.cancel_scope.cancel()
    stdout = done.stdout.decode()
    assert done.returncode == 0, stdout + done.stderr.decode()
    assert f"Joined room {code}." in stdout and "Username: Piper" in stdout
    assert "Final standings:" in stdout and "You finished " in stdout and "Thanks for playing!" in stdout
    assert len(results) == 1
