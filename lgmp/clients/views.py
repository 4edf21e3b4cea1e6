"""The host's screen, as ``lgmp host`` and ``lgmp demo`` show it.

On a terminal it is a full-screen board drawn with rich that redraws in place:
the room code and the command that joins it, the 56 spaces with every player's
piece in its colour, whose turn it is, the card on the table and whom it is
for, finishes and places, and the final standings explained. When stdout is
not a terminal (a log, a pipe, a test) the same events come out as plain lines.

``screen_text`` renders the full screen at a fixed size to a string, for tests.
The board itself -- what is known, from which packet -- is ``lgmp.clients.board``;
the session that feeds it is ``lgmp.clients.host``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from typing import Protocol

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..game.rules import (
    BOARD,
    DID_YOU_KNOW_FIELD,
    FIELD_COLOURS,
    FINISH_SPACE,
    SPACE_NAMES,
    Avatar,
    SpaceKind,
    card_text,
    card_title,
    format_salary,
    ordinal,
)
from .board import Event, EventKind, HostBoard, Phase, Who, avatar_name

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 1111

PIECE = "●"
_AVATAR_STYLES = {
    Avatar.RED: "bold bright_red",
    Avatar.YELLOW: "bold bright_yellow",
    Avatar.GREEN: "bold bright_green",
    Avatar.BLUE: "bold dodger_blue1",
    Avatar.PURPLE: "bold medium_purple1",
    Avatar.PINK: "bold hot_pink",
}
# RULES.md's pile colours, as a terminal draws them.
_COLOUR_STYLES = {"red": "bright_red", "yellow": "bright_yellow", "pink": "hot_pink", "green": "bright_green",
                  "purple": "medium_purple1", "blue": "dodger_blue1"}
_KIND_SYMBOLS = {
    SpaceKind.PLAIN: ("·", "grey50"),
    SpaceKind.BRAND_CRISIS: ("!", "bold bright_red"),
    SpaceKind.CAREER_POINT: ("C", "bold bright_cyan"),
    SpaceKind.YOURE_THE_BOSS: ("Y", "bold bright_magenta"),
    SpaceKind.DID_YOU_KNOW: ("?", "bold"),  # coloured by its pile
    SpaceKind.FINISH: ("F", "bold reverse"),
}
LEGEND = "  ".join(f"{symbol} {SPACE_NAMES[kind]}" for kind, (symbol, _) in _KIND_SYMBOLS.items() if kind != SpaceKind.PLAIN)
# The lane's left column: "● Yellow 2 " -- the longest colour name is six letters.
_LANE_LABEL = 11
_LOG_KEPT = 200  # events kept for the log panel; a screen never shows more


# =============================================================================== joining hints


def join_command(command: str, code: str, host: str, port: int) -> str:
    """``lgmp play CODE`` with the options it really needs to reach this server."""
    extra = (f" --host {host}" if host != DEFAULT_HOST else "") + (f" --port {port}" if port != DEFAULT_PORT else "")
    return f"lgmp {command} {code}{extra}"


@dataclass(frozen=True, slots=True)
class Header:
    """The top of the screen: what this screen is, and how to join (None: nobody can)."""

    title: str
    join: str | None = None
    bots: str | None = None
    note: str = ""


def host_header(code: str, host: str, port: int) -> Header:
    return Header("host", join_command("play", code, host, port), join_command("bot", code, host, port) + " --count N")


# =============================================================================== text pieces


def who_text(who: Who, *, seat: bool = False) -> Text:
    """'● Red' in red (and ' (seat 1)')."""
    style = _AVATAR_STYLES.get(who.avatar, "bold")
    name = avatar_name(who.avatar) or f"seat {who.seat}"
    text = Text.assemble((f"{PIECE} {name}", style))
    if seat and avatar_name(who.avatar):
        text.append(f" (seat {who.seat})")
    return text


def who_plain(who: Who) -> str:
    return avatar_name(who.avatar) or f"seat {who.seat}"


def event_text(event: Event) -> Text:
    text = Text(style="italic" if event.kind is EventKind.NOTE else "")
    for part in event.parts:
        text.append_text(who_text(part)) if isinstance(part, Who) else text.append(part)
    return text


def event_plain(event: Event) -> str:
    return "".join(who_plain(part) if isinstance(part, Who) else part for part in event.parts)


def positions_plain(board: HostBoard) -> str:
    """'Board: Red 12, Yellow 9, Green 55 (1st)'."""
    if not board.tracking:
        occupied = ", ".join(f"{n} on {space}" for space, n in enumerate(board.occupancy) if n)
        return f"Board: {occupied} (who is where is not known)"
    parts = []
    for seat, space in sorted(board.positions.items()):
        place = board.place_of(seat)
        parts.append(f"{who_plain(board.who(seat))} {space}" + (f" ({ordinal(place)})" if place else ""))
    return "Board: " + ", ".join(parts)


def standings_plain(board: HostBoard) -> list[str]:
    rows = board.standings()
    lines = ["Final standings:"]
    for row in rows:
        name = f"{who_plain(row.who)} (seat {row.who.seat})"
        lines.append(f"  {row.place}. {name:<16} {row.career:<46}{format_salary(row.salary):>9}")
    lines.append(f"Place is the finishing order (1st reached space {FINISH_SPACE} first), not pay; "
                 "salary is the yearly pay of the career chosen.")
    if rows:
        best = max(rows, key=lambda r: (r.salary, -r.place))
        lines.append(f"Best paid: {who_plain(best.who)}, {best.career}, {format_salary(best.salary)} a year.")
    return lines


# =============================================================================== the full screen


class _Tail:
    """The newest lines that fit the height it is given, one line each."""

    def __init__(self, lines: list[Text]):
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or len(self.lines)
        for line in self.lines[-height:] if height else []:
            yield Text.assemble(line, no_wrap=True, overflow="ellipsis")


def _header(header: Header, code: str | None) -> Text:
    line = Text.assemble((" LET'S GO MARKETING! ", "bold white on dark_blue"), "  Room ",
                         (f" {code or '....'} ", "bold black on bright_yellow"), f"  {header.title}")
    line.append("\n")
    if header.join:
        line.append("Join: ", style="bold")
        line.append(header.join, style="bold bright_cyan")
        if header.bots:
            line.append("   Bots: ", style="bold")
            line.append(header.bots)
    else:
        line.append(header.note)
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def _kinds_row() -> Text:
    row = Text(" " * _LANE_LABEL)
    for space, kind in enumerate(BOARD):
        symbol, style = _KIND_SYMBOLS[kind]
        if kind == SpaceKind.DID_YOU_KNOW:
            style = "bold " + _COLOUR_STYLES[FIELD_COLOURS[DID_YOU_KNOW_FIELD[space]]]
        row.append(symbol, style=style)
    return row


def _ruler() -> Text:
    cells = [" "] * (len(BOARD) + 1)
    for space in range(0, len(BOARD), 5):
        for i, digit in enumerate(str(space)):
            cells[space + i] = digit
    return Text(" " * _LANE_LABEL + "".join(cells).rstrip(), style="grey50")


def _lane(board: HostBoard, seat: int) -> Text:
    who = board.who(seat)
    space = board.positions.get(seat, 0)
    label = Text.assemble((f"{PIECE} {avatar_name(who.avatar):<6} ", _AVATAR_STYLES.get(who.avatar, "bold")), f"{seat} ")
    row = Text.assemble(label, ("·" * space, "grey35"), (PIECE, _AVATAR_STYLES.get(who.avatar, "bold")),
                        ("·" * (len(BOARD) - 1 - space), "grey35"))
    place = board.place_of(seat)
    row.append(f" {space:>2}")
    if place:
        row.append(f" {ordinal(place)}", style="bold")
    elif board.phase is Phase.GAME and board.turn == seat:
        row.append(" ◀", style="bold")
    return row


def _counts_row(board: HostBoard) -> Text:
    row = Text(" " * _LANE_LABEL)
    for n in board.occupancy:
        row.append(str(n) if n else "·", style="bold" if n else "grey35")
    return row


def board_panel(board: HostBoard) -> Panel:
    rows = [_ruler(), _kinds_row()]
    if board.phase in (Phase.GAME, Phase.CAREERS, Phase.OVER) and not board.tracking:
        rows.append(_counts_row(board))
        rows.append(Text("(pieces per space: who is where is not known on this screen)", style="italic"))
    else:
        seats = sorted(board.positions) if board.phase is not Phase.LOBBY else board.ready_seats()
        rows += [_lane(board, seat) for seat in seats] or [Text("No player is ready yet.", style="italic")]
    return Panel(Group(*rows), title="Board", title_align="left", subtitle=LEGEND, subtitle_align="left")


def _card_lines(board: HostBoard) -> list[Text]:
    card = board.card
    if card is None:
        return []
    title, text = card_title(card.kind, card.number), card_text(card.kind, card.number)
    line = Text.assemble(("Card: ", "bold"), (title, "bold"), " for ")
    line.append_text(who_text(card.for_seat) if card.for_seat else Text("every player"))
    line.append(f": {text}.")
    if card.for_seat is None:  # every player answers
        line.append(" Answers are private: only each player knows the token they took.", style="italic")
    if card.waiting:
        line.append(" Waiting for " + ("the answer." if card.for_seat else "every answer."), style="bold")
    elif card.kind != SpaceKind.FINISH:
        line.append(" (answered)", style="grey50")
    return [line]


def status_panel(board: HostBoard, *, now: float, prompt: str) -> Panel:
    lines: list[Text] = []
    if board.phase is Phase.LOBBY:
        ready = board.ready_seats()
        line = Text.assemble(("Ready: ", "bold"))
        for i, seat in enumerate(ready):
            line.append(", " if i else "")
            line.append_text(who_text(board.who(seat), seat=True))
        lines.append(line if ready else Text("Nobody is ready yet.", style="italic"))
        lines.append(Text(prompt, style="bold"))
    elif board.phase is Phase.GAME:
        waited = max(0, int(now - board.turn_since))
        if board.card is not None and board.card.waiting:
            lines.append(Text(f"Waiting for the card's answers ({waited} s).", style="bold"))
        else:
            turn = Text.assemble(("Turn: ", "bold"), who_text(board.who(board.turn), seat=True),
                                 f" to spin (waiting {waited} s).")
            lines.append(turn)
        lines += _card_lines(board)
    elif board.phase is Phase.CAREERS:
        lines.append(Text("Every player has finished: waiting for their careers.", style="bold"))
        lines += _card_lines(board)
    else:
        lines.append(Text("The room is closed.", style="bold"))
    return Panel(Group(*lines), title="Now", title_align="left")


def standings_panel(board: HostBoard) -> Panel:
    rows = board.standings()
    table = Table(box=None, show_header=True, header_style="bold", padding=(0, 1), expand=False)
    table.add_column("Place")
    table.add_column("Player")
    table.add_column("Career")
    table.add_column("Salary", justify="right")
    for row in rows:
        table.add_row(ordinal(row.place), who_text(row.who), row.career, format_salary(row.salary))
    note = Text(f"Place is the finishing order (1st reached space {FINISH_SPACE} first), not pay.", style="italic")
    parts: list = [note, table]
    if rows:
        best = max(rows, key=lambda r: (r.salary, -r.place))
        parts.append(Text.assemble(("Best paid: ", "bold"), who_text(best.who), f", {best.career}, {format_salary(best.salary)}."))
    return Panel(Group(*parts), title=f"Final standings, game {board.games_finished}", title_align="left")


def screen(board: HostBoard, header: Header, *, code: str | None, now: float, prompt: str, log: list[Event],
           height: int) -> Layout:
    """The whole screen for a terminal ``height`` lines high: header, board, now (or the standings), log."""
    lanes = len(board.positions) if board.phase is not Phase.LOBBY else len(board.ready_seats())
    parts = [Layout(_header(header, code), size=2),
             Layout(board_panel(board), size=max(1, lanes) + 4 + (0 if board.tracking else 1))]
    if board.results is not None and board.phase is not Phase.GAME and board.phase is not Phase.CAREERS:
        parts.append(Layout(standings_panel(board), size=len(board.standings()) + 5))
        if board.phase is Phase.LOBBY:  # another game to come
            parts.append(Layout(Panel(Text(prompt, style="bold"), title="Now", title_align="left"), size=3))
    else:
        parts.append(Layout(status_panel(board, now=now, prompt=prompt), size=6))
    if height - sum(part.size or 0 for part in parts) >= 3:
        lines = [event_text(e) for e in log if e.kind is not EventKind.TURN]
        parts.append(Layout(Panel(_Tail(lines), title="What happened", title_align="left",
                                  subtitle="LGMP does not tell the host when a player drops mid-game",
                                  subtitle_align="left")))
    layout = Layout()
    layout.split_column(*parts)
    return layout


def screen_text(board: HostBoard, header: Header, *, code: str | None, width: int, height: int, now: float = 0.0,
                prompt: str = "", log: list[Event] | None = None, colour: bool = False) -> str:
    """The full screen rendered at ``width`` x ``height``, as text (ANSI colours when ``colour``)."""
    console = Console(file=StringIO(), width=width, height=height, force_terminal=colour,
                      color_system="256" if colour else None, legacy_windows=False)
    console.print(screen(board, header, code=code, now=now, prompt=prompt, log=log or [], height=height))
    return console.file.getvalue()


# =============================================================================== screens


class HostScreen(Protocol):
    """What the host session draws on."""

    def open(self, code: str, header: Header) -> None: ...

    def show(self, board: HostBoard, events: list[Event], now: float) -> None: ...

    def prompt(self, text: str) -> None: ...

    def close(self, *, keep: bool = True) -> None: ...


class PlainScreen:
    """Events as plain lines: for logs, pipes and tests."""

    def __init__(self, out: Callable[[str], object] = print):
        self.out = out
        self._prompt = ""

    def open(self, code: str, header: Header) -> None:
        if header.join:
            self.out(f"Room {code} is open. Join with: {header.join}   (bots: {header.bots})")
        else:
            self.out(f"Room {code} is open. {header.note}")

    def show(self, board: HostBoard, events: list[Event], now: float) -> None:
        for event in events:
            if event.kind is EventKind.TURN:
                self.out(f"{event_plain(event)}  {positions_plain(board)}")
            else:
                self.out(event_plain(event))
            if event.kind is EventKind.RESULT:
                for line in standings_plain(board):
                    self.out(line)

    def prompt(self, text: str) -> None:
        if text and text != self._prompt:
            self.out(text)
        self._prompt = text

    def close(self, *, keep: bool = True) -> None:
        pass


class FullScreen:
    """The board on the whole terminal, redrawn in place; the standings stay on screen after it."""

    def __init__(self, console: Console):
        self.console = console
        self.board = HostBoard()
        self.header = Header("")
        self.code: str | None = None
        self.log: deque[Event] = deque(maxlen=_LOG_KEPT)
        self._prompt = ""
        self._now = 0.0
        self._live = Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False)
        self._echo = _NoEcho()

    def open(self, code: str, header: Header) -> None:
        self.code, self.header = code, header
        self._echo.start()
        self._live.start()
        self._draw()

    def show(self, board: HostBoard, events: list[Event], now: float) -> None:
        self.board, self._now = board, now
        self.log.extend(events)
        self._draw()

    def prompt(self, text: str) -> None:
        self._prompt = text
        self._draw()

    def _draw(self) -> None:
        if self._live.is_started:
            self._live.update(screen(self.board, self.header, code=self.code, now=self._now, prompt=self._prompt,
                                     log=list(self.log), height=self.console.height), refresh=True)

    def close(self, *, keep: bool = True) -> None:
        """Leave the full screen; with ``keep``, print the final board and standings where it was."""
        if self._live.is_started:
            self._live.stop()
        self._echo.stop()
        if keep and self.board.results is not None:
            self.console.print(board_panel(self.board))
            self.console.print(standings_panel(self.board))


class _NoEcho:
    """Typed keys are not echoed while the full screen is up (an echoed Enter would scroll it)."""

    def __init__(self) -> None:
        self._saved: list | None = None

    def start(self) -> None:
        try:
            import termios
        except ImportError:  # not a POSIX terminal: nothing to switch off
            return
        try:
            if os.isatty(0):
                self._saved = termios.tcgetattr(0)
                quiet = termios.tcgetattr(0)
                quiet[3] &= ~termios.ECHO
                termios.tcsetattr(0, termios.TCSANOW, quiet)
        except (termios.error, OSError):
            self._saved = None

    def stop(self) -> None:
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(0, termios.TCSANOW, self._saved)
            except (termios.error, OSError):
                pass
            self._saved = None


def make_screen(console: Console | None = None) -> HostScreen:
    """The full screen on a terminal, plain lines otherwise."""
    console = console or Console()
    if console.is_terminal and not console.is_dumb_terminal:
        return FullScreen(console)
    return PlainScreen(lambda line: print(line, flush=True))
