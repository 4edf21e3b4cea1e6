"""``lgmp play CODE``: a person plays "Let's Go Marketing!" in a terminal.

Two layers:

* **Pure parts** (no I/O, unit-tested): the messages for JOIN and REDY answers,
  and one ``Question`` per thing a person is asked -- username, avatar, spin,
  each card kind, field, career. A question has the lines to show, the prompt,
  and ``parse(text)``, which turns a typed line into what to send (a packet, or
  a choice) or raises ``BadAnswer`` with what to type instead. A blank line
  picks the default the prompt shows, which is always what the server would pick
  if the player let the clock run out.

* **The session** (``PlaySession`` / ``play_session``): trio I/O. It races the
  next packet from the server against the next typed line. A packet wins a tie,
  and every GAME that moves the game on abandons the open question, so an answer
  typed for a question the server already settled (the player was too slow and
  the server played for them) is never sent. Input comes from a ``LineSource``:
  ``StdinLines`` for the terminal or a pipe, ``ScriptedLines`` (or any object
  with the same two methods) for tests. Output goes to ``out(text, end="\\n")``,
  the signature of ``print``.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from .client import ConnectionClosed, LGMPClient
from .errors import LGMPError, RemoteProtocolError
from .names import NAME_MAX, check_name_shape
from .packets import (
    CardAction,
    CardAnswer,
    CardDealt,
    CareerChoice,
    ClientPacket,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    ServerPacket,
    Spin,
)
from .rules import (
    AVATAR_NAMES,
    BRAND_CRISIS_DECK,
    CAREER_POINT_DECK,
    CAREERS,
    DID_YOU_KNOW_DECK,
    FIELD_LETTERS,
    FIELD_NAMES,
    SPINNER_WEDGES,
    YOURE_THE_BOSS_DECK,
    Avatar,
    Career,
    Field,
    SpaceKind,
    wire_salary,
)
from .views import LEGEND, BoardView

# A GAME whose space is one of these has a card waiting for answers: nobody may spin.
CARD_SPACES = frozenset({SpaceKind.BRAND_CRISIS, SpaceKind.CAREER_POINT, SpaceKind.YOURE_THE_BOSS, SpaceKind.DID_YOU_KNOW})

Out = Callable[..., None]  # print-like: out(text), out(text, end="")


# =============================================================================== pure parts


class BadAnswer(ValueError):
    """A typed line that does not answer the question; the message says what would."""


JOIN_MESSAGES = {
    JoinAnswer.LOBBY_FULL: "Room {code} is full: it already has six players.",
    JoinAnswer.ROOM_NOT_FOUND: "There is no room {code}. Check the four-letter code on the host's screen.",
    JoinAnswer.GAME_STARTED: "The game in room {code} has already started. Wait for it to end, then join again.",
}

NAME_RULES = f"1-{NAME_MAX} characters, each a letter A-Z or a-z, a digit 0-9, [ or ] (no spaces)"

READY_MESSAGES = {
    ReadyAnswer.EMPTY_NAME: "You need a username.",
    ReadyAnswer.NAME_TOO_LONG: f"That username is too long: at most {NAME_MAX} characters.",
    ReadyAnswer.INVALID_CHARACTERS: f"That username has a character that is not allowed: use {NAME_RULES}.",
    ReadyAnswer.ALREADY_TAKEN: "Someone in the room already has that username or that avatar. Pick again. "
                               "(Rejoining a game you left? Use the same name and colour as before.)",
    ReadyAnswer.PROFANE: "That username is not allowed. Pick another.",
}


def join_message(answer: int, code: str) -> str:
    """What to tell a person whose JOIN was refused (answers 3, 4, 5)."""
    template = JOIN_MESSAGES.get(answer, "The server refused to seat you (JOIN answer {answer}).")
    return template.format(code=code.upper(), answer=answer)


def is_code_shaped(code: str) -> bool:
    """Four ASCII letters: anything else names no room (and could not even be sent)."""
    return len(code) == 4 and code.isascii() and code.isalpha()


def ready_message(answer: int) -> str:
    """Why a REDY was refused (answers 2-6)."""
    return READY_MESSAGES.get(answer, f"The server refused that (REDY answer {answer}). Pick again.")


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def money(dollars: int) -> str:
    return f"${dollars:,}"


def a_token(field_name: str) -> str:
    """'a Marketing token', 'an Advertising token'."""
    return f"{'an' if field_name[0] in 'AEIOU' else 'a'} {field_name} token"


def describe_move(move: int) -> str:
    if move > 0:
        return f"move forward {move}"
    if move < 0:
        return f"move back {-move}"
    return "stay where you are"


def career_dollars(name: str, thousands: int) -> int:
    """A FINL career's salary in dollars: the catalogue's, else the wire's thousands."""
    for careers in CAREERS.values():
        for career in careers:
            if career.name.casefold() == name.casefold():
                return career.salary
    return thousands * 1000


@dataclass(frozen=True)
class Question:
    """One thing a person is asked: ``lines`` shown once, then ``ask`` before the cursor.

    ``parse(text)`` returns the answer (a packet to send, or a choice) or raises
    ``BadAnswer``. ``default`` is what a blank line picks (None: no default).
    """

    key: str
    lines: tuple[str, ...]
    ask: str
    parse: Callable[[str], object] = field(compare=False)
    default: object = None
    confirm_only: bool = False  # nothing to choose (spin, Brand Crisis): any line, even a quick one, confirms


def _pick(text: str, choices: dict[str, object], what: str) -> object:
    """``text`` as one of ``choices`` by exact key (any case), else by a unique prefix of a key."""
    wanted = text.strip().casefold()
    keys = {key.casefold(): value for key, value in choices.items()}
    if wanted in keys:
        return keys[wanted]
    matches = {id(v): v for key, v in keys.items() if len(wanted) >= 2 and key.startswith(wanted)}
    if len(matches) == 1:
        return next(iter(matches.values()))
    raise BadAnswer(f"Please type {what}.")


# --- the lobby ------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why ``name`` would be refused for its shape (REDY 2-4), or None. The server also checks profanity and uniqueness."""
    verdict = check_name_shape(name)
    return None if verdict is ReadyAnswer.ACCEPTED else READY_MESSAGES[verdict]


def parse_name(text: str) -> str:
    name = text.strip()
    problem = name_problem(name)
    if problem:
        raise BadAnswer(problem)
    return name


def name_question() -> Question:
    return Question("name", (f"Choose a username: {NAME_RULES}.",), "Username: ", parse_name)


def free_avatars(avatars: Iterable[int]) -> list[int]:
    taken = set(avatars)
    return [a for a in Avatar if a not in taken]


def avatar_menu(avatars: Iterable[int]) -> str:
    return "  ".join(f"{a} {AVATAR_NAMES[Avatar(a)]}" for a in free_avatars(avatars))


_AVATAR_CHOICES: dict[str, object] = {str(int(a)): int(a) for a in Avatar} | {AVATAR_NAMES[a]: int(a) for a in Avatar}


def parse_avatar(text: str, avatars: Iterable[int], insisted: int | None = None) -> int:
    """An avatar number 1-6 (or colour name) that is free in ``avatars`` (the room's REDY array); blank = the first free one.

    A taken one is refused, unless it is ``insisted`` (asked for twice in a row): a player
    rejoining a game it left takes back its seat with its old name *and* colour.
    """
    free = free_avatars(avatars)
    if not text.strip() and free:
        return free[0]
    options = ", ".join(str(a) for a in free)
    avatar = _pick(text, _AVATAR_CHOICES, f"the number of a free avatar ({options})")
    if avatar not in free and avatar != insisted:
        raise BadAnswer(f"{AVATAR_NAMES[Avatar(avatar)]} is taken. Free: {avatar_menu(avatars)}. "
                        f"(Rejoining a game you left? Type {avatar} again to use your old colour.)")
    return avatar


def avatar_question(avatars: tuple[int, ...], live: Callable[[], tuple[int, ...]] | None = None) -> Question:
    """Pick a bulldog from the free ones; ``live`` gives the room's avatars at the moment the answer is typed."""
    free = free_avatars(avatars)
    first = free[0] if free else None
    default = f" [Enter = {first} {AVATAR_NAMES[Avatar(first)]}]" if first else ""
    tried: list[int | None] = [None]

    def parse(text: str) -> int:
        insisted, tried[0] = tried[0], None
        try:
            return parse_avatar(text, live() if live else avatars, insisted)
        except BadAnswer:
            try:
                tried[0] = _pick(text, _AVATAR_CHOICES, "")  # remembered: typing it again insists
            except BadAnswer:
                pass
            raise

    return Question("avatar", ("Pick your bulldog. Free colours:  " + avatar_menu(avatars),),
                    f"Avatar number{default}: ", parse, first)


# --- the game --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpinRequest:
    """The answer to the spin question: the session draws the number and sends SPIN."""


def draw_spin(rng: random.Random) -> int:
    """A spin as the cardboard spinner lands: one of its 12 equal wedges."""
    return rng.choice(SPINNER_WEDGES)


def spin_question(game: GameUpdate) -> Question:
    return Question(f"spin {id(game)}", (), "Your turn! Press Enter to spin: ", lambda text: SpinRequest(), SpinRequest(),
                    confirm_only=True)


def default_card_answer(kind: int, number: int) -> CardAnswer:
    """What the server answers for a player who lets the clock run out (PROTOCOL.md 10.4)."""
    n = number - 1
    if kind == SpaceKind.BRAND_CRISIS:
        return CardAnswer(CardAction.MOVE, BRAND_CRISIS_DECK[n].move)
    if kind == SpaceKind.CAREER_POINT:
        card = CAREER_POINT_DECK[n]
        return CardAnswer(CardAction.MOVE, card.option_b if card.option_b > card.option_a else card.option_a)
    if kind == SpaceKind.YOURE_THE_BOSS:
        return CardAnswer(CardAction.TOKEN, YOURE_THE_BOSS_DECK[n].options[0])
    if kind == SpaceKind.DID_YOU_KNOW:
        return CardAnswer(CardAction.TOKEN, DID_YOU_KNOW_DECK[n].field)
    raise ValueError(f"card kind {kind} takes no answer")


def parse_card_answer(kind: int, number: int, text: str) -> CardAnswer:
    """A typed answer to card ``kind`` #``number`` as the CARD packet to send; blank = the default."""
    if not text.strip():
        return default_card_answer(kind, number)
    n = number - 1
    word = text.strip().casefold()
    if kind == SpaceKind.BRAND_CRISIS:
        return CardAnswer(CardAction.MOVE, BRAND_CRISIS_DECK[n].move)  # nothing to choose: any line confirms
    if kind == SpaceKind.CAREER_POINT:
        card = CAREER_POINT_DECK[n]
        if word in ("a", "option a"):
            return CardAnswer(CardAction.MOVE, card.option_a)
        if word in ("b", "option b"):
            return CardAnswer(CardAction.MOVE, card.option_b)
        raise BadAnswer("Please type A or B.")
    if kind == SpaceKind.YOURE_THE_BOSS:
        options = YOURE_THE_BOSS_DECK[n].options
        choices: dict[str, object] = {}
        for f in Field:
            choices[str(int(f))] = f
            choices[FIELD_LETTERS[f]] = f
            choices[FIELD_NAMES[f]] = f
        listed = ", ".join(str(int(f)) for f in sorted(options))
        chosen = _pick(text, choices, f"the number of one of the card's fields ({listed})")
        if chosen not in options:
            raise BadAnswer(f"This card does not offer {FIELD_NAMES[chosen]}. Choose one of {listed}.")
        return CardAnswer(CardAction.TOKEN, int(chosen))
    if kind == SpaceKind.DID_YOU_KNOW:
        if word in ("y", "yes"):
            return CardAnswer(CardAction.TOKEN, DID_YOU_KNOW_DECK[n].field)
        if word in ("n", "no"):
            return CardAnswer(CardAction.TOKEN, 0)
        raise BadAnswer("Please type y (take the token) or n (leave it).")
    raise BadAnswer(f"Card kind {kind} takes no answer.")


def card_question(kind: int, number: int) -> Question:
    """The question a dealt card asks its player (Brand Crisis, Career Point, You're the Boss, Did You Know)."""
    n = number - 1
    default = default_card_answer(kind, number)
    parse = lambda text: parse_card_answer(kind, number, text)  # noqa: E731
    key = f"card {kind} {number}"
    if kind == SpaceKind.BRAND_CRISIS:
        move = BRAND_CRISIS_DECK[n].move
        return Question(key, (f"Brand Crisis #{number}! Your brand takes a hit: {describe_move(move)}.",),
                        "Press Enter to accept: ", parse, default, confirm_only=True)
    if kind == SpaceKind.CAREER_POINT:
        card = CAREER_POINT_DECK[n]
        letter = "A" if default.value == card.option_a else "B"
        return Question(key, (f"Career Point #{number}! Choose your move:",
                              f"  A: {describe_move(card.option_a)}",
                              f"  B: {describe_move(card.option_b)}"),
                        f"A or B [Enter = {letter}]: ", parse, default)
    if kind == SpaceKind.YOURE_THE_BOSS:
        options = YOURE_THE_BOSS_DECK[n].options
        lines = [f"You're the Boss #{number}! Everyone picks a token from one of these fields:"]
        lines += [f"  {int(f)} {FIELD_NAMES[f]}" for f in sorted(options)]
        return Question(key, tuple(lines), f"Field number [Enter = {int(options[0])} {FIELD_NAMES[options[0]]}]: ",
                        parse, default)
    if kind == SpaceKind.DID_YOU_KNOW:
        pile = FIELD_NAMES[DID_YOU_KNOW_DECK[n].field]
        return Question(key, (f"Did You Know #{number} from the {pile} pile: everyone may take {a_token(pile)}.",),
                        f"Take the {pile} token? [Y/n]: ", parse, default)
    raise ValueError(f"card kind {kind} asks no question")


def describe_card_answer(answer: CardAnswer) -> str:
    """What an answer does, for the player: 'You take a Marketing token.' and the like."""
    if answer.action == CardAction.TOKEN:
        return f"You take {a_token(FIELD_NAMES[Field(answer.value)])}." if answer.value else "You leave the token."
    return f"You {describe_move(answer.value)}."


# --- careers -------------------------------------------------------------------------


def most_tokens_field(tokens: Counter | dict[int, int]) -> Field:
    """The field with the most tokens, the lowest field number on a tie (the server's rule)."""
    return max(Field, key=lambda f: (tokens.get(f, 0), -f))


def best_career(field_: int) -> Career:
    """The field's highest-paid career (the first listed on a tie), as the server picks it."""
    return max(CAREERS[Field(field_)], key=lambda c: c.salary)


def parse_field(text: str, default: Field | None = None) -> Field:
    if not text.strip():
        if default is None:
            raise BadAnswer("Please type a field number 1-6.")
        return default
    choices: dict[str, object] = {}
    for f in Field:
        choices[str(int(f))] = f
        choices[FIELD_NAMES[f]] = f
    return _pick(text, choices, "a field number 1-6")


def field_question(tokens: Counter | dict[int, int]) -> Question:
    default = most_tokens_field(tokens)
    lines = ["Choose your career. First pick a field:"]
    for f in Field:
        count = tokens.get(f, 0)
        top = best_career(f)
        lines.append(f"  {int(f)} {FIELD_NAMES[f]:<26}" + f"tokens: {count}   up to {money(top.salary)}")
    return Question("field", tuple(lines), f"Field 1-6 [Enter = {int(default)} {FIELD_NAMES[default]}]: ",
                    lambda text: parse_field(text, default), default)


BACK = "back"


def parse_career(field_: int, text: str) -> CareerChoice | str:
    """A typed career of ``field_`` (number in the list, or name) as the CRER to send; 0 = ``BACK``; blank = best paid."""
    careers = CAREERS[Field(field_)]
    if not text.strip():
        chosen = best_career(field_)
    else:
        choices: dict[str, object] = {"0": BACK, "back": BACK}
        for i, career in enumerate(careers, start=1):
            choices[str(i)] = career
            choices[career.name] = career
        chosen = _pick(text, choices, f"a career number 1-{len(careers)}, or 0 to go back")
        if chosen == BACK:
            return BACK
    return CareerChoice(int(field_), chosen.name, wire_salary(chosen))


def validate_career(choice: CareerChoice) -> bool:
    """Would the server accept this CRER (PROTOCOL.md 8.5)?"""
    if choice.field not in Field._value2member_map_:
        return False
    for career in CAREERS[Field(choice.field)]:
        if career.name.casefold() == choice.career.casefold():
            return choice.salary == wire_salary(career)
    return False


def career_question(field_: int) -> Question:
    careers = CAREERS[Field(field_)]
    top = best_career(field_)
    lines = [f"{FIELD_NAMES[Field(field_)]} careers:"]
    lines += [f"  {i} {c.name:<46}{money(c.salary):>9}" for i, c in enumerate(careers, start=1)]
    lines.append("  0 back to the fields")
    return Question(f"career {int(field_)}", tuple(lines),
                    f"Career 1-{len(careers)} [Enter = {careers.index(top) + 1} {top.name}]: ",
                    lambda text: parse_career(field_, text), top)


# --- results ---------------------------------------------------------------------------


def standings_lines(results: FinalResults, seat: int | None, who: Callable[[int], str]) -> list[str]:
    """FINL as a table, then the player's own result."""
    lines = ["Final standings:"]
    order = sorted((place, s) for s, place in enumerate(results.places, start=1) if place)
    for place, s in order:
        career = results.careers[s - 1]
        dollars = career_dollars(career, results.salaries[s - 1])
        lines.append(f"  {place}. {who(s):<14} {career:<46}{money(dollars):>9}")
    if seat and 1 <= seat <= 6 and results.places[seat - 1]:
        place = results.places[seat - 1]
        career = results.careers[seat - 1]
        dollars = career_dollars(career, results.salaries[seat - 1])
        lines.append(f"You finished {ordinal(place)} of {len(order)}, as {career} earning {money(dollars)} a year.")
    return lines


class PlayerBoardView(BoardView):
    """The host's board view, with the player's own piece marked."""

    def __init__(self, seat: int | None = None) -> None:
        super().__init__()
        self.seat = seat

    def who(self, seat: int) -> str:
        name = super().who(seat)
        return f"{name} (you)" if seat == self.seat else name

    def marker(self) -> str | None:
        """A line under the track pointing at the player's piece."""
        if self.seat not in self.positions:
            return None
        space = self.positions[self.seat]
        return "  " + " " * space + f"^ you (space {space})"


# =============================================================================== input


@dataclass(frozen=True)
class Line:
    """A typed line; ``text`` None = end of input. ``at`` = trio.current_time() when it was read."""

    text: str | None
    at: float = -math.inf


class LineSource(Protocol):
    interactive: bool  # a person at a terminal: the terminal echoes what they type

    async def readline(self) -> Line:
        """The next line; must be safe to cancel (a cancelled call loses no line)."""

    def unread(self, line: Line) -> None:
        """Give a line back: the next ``readline`` returns it."""


class ScriptedLines:
    """Lines given in advance, as a pipe gives them; then end of input (or, with ``then_wait``, silence)."""

    interactive = False

    def __init__(self, lines: Iterable[str], *, then_wait: bool = False):
        self._lines: deque[Line] = deque(Line(text) for text in lines)
        self._then_wait = then_wait

    async def readline(self) -> Line:
        await trio.lowlevel.checkpoint()
        if self._lines:
            return self._lines.popleft()
        if self._then_wait:
            await trio.sleep_forever()
        return Line(None)

    def unread(self, line: Line) -> None:
        self._lines.appendleft(line)


class StdinLines:
    """Lines from file descriptor 0 (a terminal or a pipe), read by a daemon thread.

    The thread uses ``os.read`` (no Python-level buffer lock), so a thread still
    blocked in a read when the program ends cannot hang the interpreter's exit.
    It starts on the first ``readline``, so a session that never asks reads nothing.
    """

    def __init__(self, fd: int = 0):
        self.fd = fd
        self.interactive = os.isatty(fd)
        self._send, self._receive = trio.open_memory_channel[Line](math.inf)
        self._back: deque[Line] = deque()
        self._thread: threading.Thread | None = None

    async def readline(self) -> Line:
        if self._thread is None:
            token = trio.lowlevel.current_trio_token()
            self._thread = threading.Thread(target=self._pump, args=(token,), name="lgmp-stdin", daemon=True)
            self._thread.start()
        if self._back:
            await trio.lowlevel.checkpoint()
            return self._back.popleft()
        return await self._receive.receive()

    def unread(self, line: Line) -> None:
        self._back.appendleft(line)

    def _pump(self, token: trio.lowlevel.TrioToken) -> None:
        def put(text: str | None) -> bool:
            try:
                trio.from_thread.run_sync(lambda: self._send.send_nowait(Line(text, trio.current_time())), trio_token=token)
                return True
            except (trio.RunFinishedError, trio.ClosedResourceError, trio.BrokenResourceError):
                return False

        pending = b""
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                if pending and not put(pending.decode("utf-8", "replace").rstrip("\r")):
                    return
                put(None)
                return
            pending += data
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                if not put(raw.decode("utf-8", "replace").rstrip("\r")):
                    return


# =============================================================================== the session


class Leave(Exception):
    """End the session with ``code``, after saying ``message``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# On a terminal a blank line this soon after a prompt appeared was meant for the
# one before it (a double Enter), not for the new question.
BOUNCE_GUARD = 0.25


class PlaySession:
    """One person's connection: JOIN, lobby, game, results."""

    def __init__(self, client: LGMPClient, lines: LineSource, out: Out = print, *, rng: random.Random | None = None):
        self.client = client
        self.lines = lines
        self._out = out
        self.rng = rng or random.Random()
        self.view = PlayerBoardView()
        self.tokens: Counter = Counter()
        self.last_game: GameUpdate | None = None
        self.results: FinalResults | None = None
        self.active: Question | None = None  # a spin or card question, settled by the next GAME
        self.active_card: CardDealt | None = None
        self.finished = False
        self.career_field: Field | None = None  # the career question's field once picked
        self.career_sent = False
        self._career_questions: dict[object, Question] = {}
        self._sent_since_game = False
        self._shown: Question | None = None  # the question whose lines are on screen
        self._shown_at = -math.inf
        self._ask_open = False  # the prompt is on screen without its newline
        self._tracking = True  # the board view knows where our piece is
        self._stash: list[ServerPacket] = []  # received early, handled first

    # --- output -------------------------------------------------------------------------

    def say(self, *lines: str) -> None:
        if self._ask_open:
            self._out("")
            self._ask_open = False
        for line in lines:
            self._out(line)

    def _show(self, question: Question, *, full: bool) -> None:
        if full:
            self.say(*question.lines)
            self._shown = question
            self._shown_at = trio.current_time()
        elif self._ask_open:
            return
        self._out(question.ask, end="")
        self._ask_open = True

    async def _send(self, packet: ClientPacket) -> None:
        await self.client.send(packet)
        self._sent_since_game = True

    # --- waiting for a packet or a line -------------------------------------------------

    async def _next(self, want_line: bool) -> tuple[str, object]:
        """('packet', packet) or ('line', Line): whichever comes first; a packet wins a tie."""
        if self._stash:
            await trio.lowlevel.checkpoint()
            return "packet", self._stash.pop(0)
        if not want_line:
            return "packet", await self.client.receive()
        got: dict[str, object] = {}
        async with trio.open_nursery() as nursery:
            async def packet() -> None:
                try:
                    got["packet"] = await self.client.receive()
                except LGMPError as exc:  # ConnectionClosed, or bytes that are not LGMP
                    got["closed"] = exc
                nursery.cancel_scope.cancel()

            async def line() -> None:
                got["line"] = await self.lines.readline()
                nursery.cancel_scope.cancel()

            nursery.start_soon(packet)
            nursery.start_soon(line)
        if "closed" in got or "packet" in got:
            if "line" in got:
                self.lines.unread(got["line"])
            if "closed" in got:
                raise got["closed"]
            return "packet", got["packet"]
        return "line", got["line"]

    def _fresh(self, line: Line, question: Question) -> bool:
        """Does ``line`` answer ``question``? On a terminal, not when typed before the question appeared,
        nor when it is a blank line right after a question with a choice appeared (a double Enter,
        meant for the question before, must not pick this one's default)."""
        if not self.lines.interactive:
            return True  # a pipe: every line counts, in order
        if line.at < self._shown_at:
            return False
        if not question.confirm_only and line.text is not None and not line.text.strip() \
                and line.at < self._shown_at + BOUNCE_GUARD:
            self._ask_open = False  # the terminal echoed the newline: ask again, visibly
            self._show(question, full=False)
            return False
        return True

    def _took(self, line: Line) -> None:
        """A line answered the open prompt: close the prompt's line on screen."""
        if not self.lines.interactive:
            self._out(line.text)  # a pipe: echo, so the transcript reads like a terminal
        self._ask_open = False

    # --- run -----------------------------------------------------------------------------

    async def run(self, code: str) -> int:
        try:
            await self._join(code)
            await self._get_ready()
            return await self._play()
        except Leave as leave:
            self.say(leave.message)
            return leave.code
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            self.say("The server closed the connection.")
            return 1
        except RemoteProtocolError as exc:
            self.say(f"The server sent something that is not LGMP v1.0 ({exc}); leaving.")
            return 1

    async def _join(self, code: str) -> None:
        code = code.strip().upper()
        if not is_code_shaped(code):
            raise Leave(1, f"{code!r} is not a room code: a code is four letters A-Z, like QZMB.")
        answer = await self.client.join(code)
        if answer is not JoinAnswer.PLAYER:
            raise Leave(1, join_message(answer, code))
        self.view.avatars = self.client.avatars
        self.say(f"Joined room {code}. Welcome to Let's Go Marketing!")

    async def _ask(self, question: Question) -> object:
        """Ask in the lobby: keep showing room updates until a line answers ``question``."""
        self._show(question, full=True)
        while True:
            kind, item = await self._next(want_line=True)
            if kind == "packet":
                self._lobby_packet(item)
                self._show(question, full=False)
                continue
            if item.text is None:
                raise Leave(1, "No more input: leaving the room.")
            if not self._fresh(item, question):
                continue
            self._took(item)
            try:
                return question.parse(item.text)
            except BadAnswer as exc:
                self.say(str(exc))
                self._show(question, full=False)

    def _lobby_packet(self, packet: ServerPacket) -> None:
        if isinstance(packet, ReadyResponse):
            self._room_update(packet.avatars)
        elif isinstance(packet, Reset):
            raise Leave(1, "The room was closed (the host left or the server is shutting down).")

    def _room_update(self, avatars: tuple[int, ...]) -> None:
        lines = []
        for seat, (old, new) in enumerate(zip(self.view.avatars, avatars), start=1):
            if old == new:
                continue
            if new:
                colour = AVATAR_NAMES[Avatar(new)] + (" (you)" if seat == self.view.seat else "")
                lines.append(f"  {colour} is ready (seat {seat}).")
            elif not self.view.in_game:
                lines.append(f"  Seat {seat} left.")
        self.view.avatars = tuple(avatars)
        if lines:
            self.say(*lines)

    async def _get_ready(self) -> None:
        while True:
            name = await self._ask(name_question())
            avatar = await self._ask(avatar_question(self.client.avatars, live=lambda: self.client.avatars))
            self.client.avatar = avatar
            await self.client.send(ReadyRequest(name, avatar))
            while True:
                packet = await self.client.receive()
                if isinstance(packet, ReadyResponse) and packet.response != ReadyAnswer.UPDATE:
                    break
                self._lobby_packet(packet)
            if packet.response == ReadyAnswer.ACCEPTED:
                self.view.seat = self.client.seat
                self._room_update(packet.avatars)
                break
            self._room_update(packet.avatars)
            self.say(ready_message(packet.response))
        ready = ", ".join(self.view.who(s) for s in range(1, 7) if self.view.avatars[s - 1])
        self.say(f"You are {name}, {AVATAR_NAMES[Avatar(avatar)]}, in seat {self.client.seat}. Ready: {ready}.")
        # A player taking back its seat in a game it left gets the game at once (a GAME resync).
        with trio.move_on_after(0.3):
            self._stash.append(await self.client.receive())
        if not any(isinstance(p, GameUpdate) for p in self._stash):
            self.say("Waiting for the host to start the game...")

    # --- the game ------------------------------------------------------------------------

    def _career_question(self) -> Question | None:
        if not self.finished or self.career_sent or self.results is not None:
            return None
        if self.career_field is None:  # the field menu shows the tokens, which cards may still add to
            key: tuple = ("field", tuple(sorted(self.tokens.items())))
        else:
            key = ("career", int(self.career_field))
        question = self._career_questions.get(key)
        if question is None:
            question = field_question(self.tokens) if self.career_field is None else career_question(self.career_field)
            self._career_questions[key] = question
        return question

    def current_question(self) -> Question | None:
        return self.active or self._career_question()

    async def _play(self) -> int:
        while True:
            question = self.current_question()
            if question is not None and question is not self._shown:
                self._show(question, full=True)
            kind, item = await self._next(want_line=question is not None or self.lines.interactive)
            if kind == "packet":
                done = self._game_packet(item)
                if done is not None:
                    return done
                question = self.current_question()
                if question is not None and question is self._shown:
                    self._show(question, full=False)
                continue
            if item.text is None:
                raise Leave(1, "No more input: leaving the game." if self.view.in_game else "No more input: leaving the room.")
            if question is None or not self._fresh(item, question):
                continue  # typed while nothing was asked
            self._took(item)
            try:
                answer = question.parse(item.text)
            except BadAnswer as exc:
                self.say(str(exc))
                self._show(question, full=False)
                continue
            await self._act(question, answer)

    async def _act(self, question: Question, answer: object) -> None:
        if isinstance(answer, SpinRequest):
            number = draw_spin(self.rng)
            self.active = None
            self.say(f"The spinner lands on {number}!")
            await self._send(Spin(number))
        elif isinstance(answer, CardAnswer):
            card = self.active_card
            self.active = self.active_card = None
            if answer.action == CardAction.TOKEN and answer.value:
                self.tokens[answer.value] += 1
            if card is not None:
                self.say(describe_card_answer(answer))
            await self._send(answer)
        elif isinstance(answer, Field):
            self.career_field = answer
        elif answer == BACK:
            self.career_field = None
        elif isinstance(answer, CareerChoice):
            self.career_sent = True
            dollars = career_dollars(answer.career, answer.salary)
            self.say(f"You chose {answer.career} in {FIELD_NAMES[Field(answer.field)]}, {money(dollars)} a year.",
                     "Waiting for everyone to finish...")
            await self._send(answer)

    def _abandon(self) -> None:
        """The game moved on before the player answered: the server played for them."""
        question, card = self.active, self.active_card
        self.active = self.active_card = None
        if question is None:
            return
        if card is None:
            self.say("Too slow: the server spun for you.")
            return
        default = default_card_answer(card.kind, card.number)
        if default.action == CardAction.TOKEN and default.value:
            self.tokens[default.value] += 1
        self.say(f"Too slow: the server answered for you. {describe_card_answer(default)}")

    def _game_packet(self, packet: ServerPacket) -> int | None:
        if isinstance(packet, GameUpdate):
            self._game(packet)
        elif isinstance(packet, CardDealt):
            self._card(packet)
        elif isinstance(packet, ReadyResponse):
            self._room_update(packet.avatars)
        elif isinstance(packet, FinalResults):
            self._abandon()
            if self.finished and not self.career_sent:
                self.say("Too slow: the server chose a career for you.")
            self.results = packet
            self.say(*standings_lines(packet, self.view.seat, self.view.who))
        elif isinstance(packet, Reset):
            if self.results is not None:
                self.say("Thanks for playing!")
                return 0
            if not self.view.in_game:
                self._lobby_packet(packet)  # raises Leave
            raise Leave(1, "The room was closed before the game ended (the host left or the server is shutting down).")
        return None

    def _game(self, game: GameUpdate) -> None:
        if game == self.last_game:
            # A resync: the server ignored our last packet (it had already played for us).
            if self._sent_since_game:
                self.say("(The server had already moved on: that answer came too late.)")
                self._sent_since_game = False
            return
        if self.active is not None:
            self._abandon()
        first = not self.view.in_game
        if first:
            players = sum(1 for a in self.view.avatars if a)
            # A rejoined game does not start with everyone on space 0: who is where is unknown.
            self._tracking = game.occupancy[0] == players
            self.say("", "The game has started!" if self._tracking else "You are back in the game!", LEGEND)
        self.last_game = game
        self._sent_since_game = False
        lines = self.view.feed(game)
        track = self.view.render(game.occupancy)
        if not self._tracking:  # the view's guesses of who moved where would be wrong: the board only
            lines = [line for line in lines if line == track or line.startswith(("  turn:", "  everyone"))]
        marker = self.view.marker() if self._tracking else None
        if marker and track in lines:
            lines.insert(lines.index(track) + 1, marker)  # under the track, before "turn: ..."
        self.say(*lines)
        if game.turn and game.turn == self.view.seat and game.space not in CARD_SPACES:
            self.active = spin_question(game)

    def _card(self, card: CardDealt) -> None:
        if card.kind == SpaceKind.FINISH:
            self.finished = True
            place = {1: "You finished first!", 3: "You finished last."}.get(card.number, "You finished!")
            self.say(f"{place} Time to choose your career.")
            return
        try:
            question = card_question(card.kind, card.number)
        except (ValueError, IndexError):
            self.say(f"(A card the rules do not know: kind {card.kind} #{card.number}.)")
            return
        if self.active is not None:
            self._abandon()
        self.active = question
        self.active_card = card


async def play_session(
    client: LGMPClient,
    code: str,
    lines: LineSource | Iterable[str],
    out: Out = print,
    *,
    rng: random.Random | None = None,
) -> int:
    """Play one game in room ``code`` on ``client``: input from ``lines``, output to ``out``. The exit code."""
    source = lines if hasattr(lines, "readline") else ScriptedLines(lines)
    return await PlaySession(client, source, out, rng=rng).run(code)


def _terminal_out(text: str = "", end: str = "\n") -> None:
    print(text, end=end, flush=True)


async def run_play(host: str, port: int, code: str) -> int:
    """``lgmp play CODE``: connect, then play in this terminal."""
    try:
        client = await LGMPClient.connect(host, port)
    except OSError as exc:
        print(f"lgmp play: cannot connect to {host}:{port}: {exc.strerror or exc}. Is the LGMP server running there?",
              file=sys.stderr)
        return 1
    interrupted = False
    try:
        async with client:
            _terminal_out(f"Connected to {host}:{port}. (Ctrl-D or Ctrl-C leaves.)")
            return await play_session(client, code, StdinLines(), _terminal_out)
    except* KeyboardInterrupt:  # Ctrl-C, possibly from inside the session's packet/line race
        interrupted = True
    if interrupted:
        _terminal_out("\nYou left the game.")
    return 130
