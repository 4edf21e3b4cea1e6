"""``lgmp play CODE``: a person plays "Let's Go Marketing!" in a terminal.

Two layers:

* **Pure parts** (``lgmp.clients.prompts``, no I/O, unit-tested): the messages for JOIN and REDY answers,
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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import trio

from .client import ConnectionClosed, LGMPClient
from ..wire.errors import LGMPError, RemoteProtocolError
from ..wire.packets import (
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
from ..wire.unity2022 import Lobby, PlayerUpdate, UnityGameUpdate
from .prompts import (
    BACK,
    BadAnswer,
    Out,
    Question,
    SpinRequest,
    avatar_question,
    card_question,
    career_question,
    default_card_answer,
    describe_card_answer,
    field_question,
    is_code_shaped,
    join_message,
    name_question,
    ready_message,
    spin_question,
    standings_lines,
)
from ..game.rules import (
    BOARD,
    CARD_SPACES,
    FIELD_NAMES,
    FINISH_SPACE,
    SEATS,
    SPACE_NAMES,
    Field,
    SpaceKind,
    card_text,
    card_title,
    career_salary,
    draw_spin,
    format_salary,
)
from ..rooms.names import is_profane
from .board import Event, EventKind, HostBoard, Phase, Who, avatar_name

_KIND_SYMBOLS = {SpaceKind.PLAIN: "·", SpaceKind.BRAND_CRISIS: "!", SpaceKind.CAREER_POINT: "C",
                 SpaceKind.YOURE_THE_BOSS: "Y", SpaceKind.DID_YOU_KNOW: "?", SpaceKind.FINISH: "F"}
LEGEND = "Board: · plain  " + "  ".join(
    f"{symbol} {SPACE_NAMES[kind]}" for kind, symbol in _KIND_SYMBOLS.items() if kind != SpaceKind.PLAIN) + "; digits = players"


class PlayerBoardView(HostBoard):
    """The board as one player sees it, with the player's own piece marked."""

    def name(self, seat: int) -> str:
        name = avatar_name(self.avatars[seat - 1]) if seat in SEATS else ""
        name = name or f"seat {seat}"
        return f"{name} (you)" if seat == self.seat else name

    def text(self, event: Event) -> str:
        if event.kind is EventKind.TURN and event.parts[:1] == (self.who(self.seat or 0),):
            return ""  # the spin question itself says it is our turn
        return "".join(self.name(part.seat) if isinstance(part, Who) else part for part in event.parts)

    def track(self) -> str:
        """The track as one line: a digit where players stand, a symbol per space kind elsewhere."""
        return "  " + "".join(str(n) if n else _KIND_SYMBOLS[kind] for n, kind in zip(self.occupancy, BOARD))

    def marker(self) -> str | None:
        """A line under the track pointing at the player's piece."""
        if not self.tracking or self.seat not in self.positions:
            return None
        space = self.positions[self.seat]
        return "  " + " " * space + f"^ you (space {space})"

    @property
    def in_game(self) -> bool:
        return self.phase in (Phase.GAME, Phase.CAREERS)


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
        self._spun_from: int | None = None  # our piece's space when we sent SPIN, until the GAME that moves it
        self._turn_only = False  # unity-2022: a game told by turns alone (no board) is on
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
        elif isinstance(packet, PlayerUpdate):
            self._free_update()
        elif isinstance(packet, Reset):
            raise Leave(1, "The room was closed (the host left or the server is shutting down).")

    def _room_update(self, avatars: tuple[int, ...]) -> None:
        lines = []
        for seat, (old, new) in enumerate(zip(self.view.avatars, avatars), start=1):
            if old == new:
                continue
            if new:
                colour = avatar_name(new) + (" (you)" if seat == self.view.seat else "")
                lines.append(f"  {colour} is ready (seat {seat}).")
            elif not self.view.in_game:
                lines.append(f"  Seat {seat} left.")
        self.view.avatars = tuple(avatars)
        if lines:
            self.say(*lines)

    def _free_update(self) -> None:
        """unity-2022 says which avatars are free, not who sits where."""
        if self.client.avatars != self.view.avatars:
            self.view.avatars = self.client.avatars
            free = ", ".join(avatar_name(a) for a in self.client.free_avatars())
            self.say(f"  Free colours now: {free or 'none'}.")

    async def _get_ready(self) -> None:
        while True:
            name = await self._ask(name_question())
            if is_profane(name):  # the server would refuse it (REDY 6): say so before the avatar is picked
                self.say(ready_message(ReadyAnswer.PROFANE))
                continue
            avatar = await self._ask(avatar_question(self.client.avatars, live=lambda: self.client.avatars))
            self.client.avatar = avatar
            await self.client.send(ReadyRequest(name, avatar))
            while True:
                packet = await self.client.receive()
                answer = self.client.ready_answer(packet)  # the answer to our REDY, in either dialect
                if answer is not None:
                    break
                self._lobby_packet(packet)
            if answer == ReadyAnswer.ACCEPTED:
                self.view.seat = self.client.seat
                self._room_update(self.client.avatars)
                break
            self._room_update(self.client.avatars)
            self.say(ready_message(answer))
        ready = ", ".join(self.view.name(s) for s in SEATS if self.view.avatars[s - 1])
        seat = f", in seat {self.client.seat}" if self.client.seat is not None else ""  # unity-2022: told at the start
        self.say(f"You are {name}, {avatar_name(avatar)}{seat}. Ready: {ready}.")
        # A player taking back its seat in a game it left gets the game at once (a GAME resync).
        with trio.move_on_after(0.3):
            self._stash.append(await self.client.receive())
        if not any(isinstance(p, (GameUpdate, UnityGameUpdate, Lobby)) for p in self._stash):
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
            # The number is only a proposal: a server run with --server-spins draws its own.
            # What the piece really moved is said when the GAME that moves it arrives.
            self.active = None
            self._spun_from = self.view.positions.get(self.view.seat) if self.view.tracking else None
            self.say("You spin...")
            await self._send(Spin(draw_spin(self.rng)))
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
            dollars = career_salary(answer.career, answer.salary)
            self.say(f"You chose {answer.career} in {FIELD_NAMES[Field(answer.field)]}, {format_salary(dollars)} a year.",
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
        elif isinstance(packet, UnityGameUpdate):
            self._turn(packet)
        elif isinstance(packet, Lobby):  # unity-2022: our own seat, before the first GAME
            self.view.seat = packet.index
        elif isinstance(packet, PlayerUpdate):
            self._free_update()
        elif isinstance(packet, CardDealt):
            self._card(packet)
        elif isinstance(packet, ReadyResponse):
            self._room_update(packet.avatars)
        elif isinstance(packet, FinalResults):
            self._abandon()
            if self.finished and not self.career_sent:
                self.say("Too slow: the server chose a career for you.")
            self.results = packet
            self.say(*standings_lines(packet, self.view.seat, self.view.name))
        elif isinstance(packet, Reset):
            if self.results is not None:
                self.say("Thanks for playing!")
                return 0
            if not (self.view.in_game or self._turn_only):
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
        if not self.view.in_game:
            players = sum(1 for a in self.view.avatars if a)
            # A rejoined game does not start with everyone on space 0: who is where is unknown.
            back = game.occupancy[0] != players
            self.say("", "You are back in the game!" if back else "The game has started!", LEGEND)
        self.last_game = game
        self._sent_since_game = False
        events = self.view.feed(game, trio.current_time())
        lines = [self.view.text(e) for e in events if e.kind is not EventKind.TURN]
        spun = self._spin_result()
        if spun:
            lines.insert(0, spun)
        lines.append(self.view.track())
        marker = self.view.marker()
        if marker:
            lines.append(marker)
        lines += [self.view.text(e) for e in events if e.kind is EventKind.TURN]
        self.say(*(line for line in lines if line))
        if game.turn and game.turn == self.view.seat and game.space not in CARD_SPACES:
            self.active = spin_question(game)

    def _turn(self, game: UnityGameUpdate) -> None:
        """unity-2022: whose turn it is, and nothing of the board."""
        if self.active is not None:
            self._abandon()
        if not self._turn_only:
            self._turn_only = True
            self.say("", f"The game has started! You are seat {self.view.seat}.")
        if game.turn == 0:
            self.say("  everyone has finished: careers next")
        elif game.turn != self.view.seat:
            self.say(f"  turn: seat {game.turn}")
        else:
            self.active = spin_question(game)

    def _spin_result(self) -> str | None:
        """After our SPIN: what the spinner really gave, read from the move (the server may have drawn it)."""
        start = self._spun_from
        end = self.view.positions.get(self.view.seat) if self.view.tracking else None
        if start is None or end is None or end == start:
            return None
        self._spun_from = None
        if end == FINISH_SPACE:
            return "You reach the finish!"
        return f"The spinner lands on {end - start}!"

    def _card(self, card: CardDealt) -> None:
        # The board keeps the turn line back until our Finish card: show it now.
        held = [self.view.text(e) for e in self.view.feed(card, trio.current_time()) if e.kind is EventKind.TURN]
        held = [line for line in held if line]
        if card.kind == SpaceKind.FINISH:
            self.finished = True
            self.say(f"{card_title(card.kind, card.number)}: {card_text(card.kind, card.number)}! Time to choose your career.",
                     *held)
            return
        self.say(*held)
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


def connect_error(exc: OSError) -> str:
    """Why a connection failed, in the system's words ('Connection refused')."""
    causes = getattr(exc.__cause__, "exceptions", None) or ([exc.__cause__] if exc.__cause__ else [])
    for cause in (exc, *causes):
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno)  # trio's own text repeats the address
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror  # a name that does not resolve: getaddrinfo's words
    return str(exc)


def _terminal_out(text: str = "", end: str = "\n") -> None:
    print(text, end=end, flush=True)


async def run_play(host: str, port: int, code: str, dialect: str = "v1.0") -> int:
    """``lgmp play CODE``: connect, then play in this terminal."""
    try:
        client = await LGMPClient.connect(host, port, dialect=dialect)
    except OSError as exc:
        print(f"lgmp play: cannot connect to {host}:{port}: {connect_error(exc)}. Is `lgmp serve` running there?",
              file=sys.stderr)
        return 1
    # Ctrl-C is the command line's to handle: it cancels this, and says goodbye.
    async with client:
        _terminal_out(f"Connected to {host}:{port}. (Ctrl-D or Ctrl-C leaves.)")
        status = await play_session(client, code, StdinLines(), _terminal_out)
        await client.leave()
        return status
