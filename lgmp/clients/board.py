"""The board as a room's members see it, rebuilt from the packets alone. Pure.

``HostBoard.feed(packet, now)`` keeps who is where, whose turn it is, the card on
the table and whom it is for, the finish order and the results, and returns
``Event``s: what just happened, in words. The screens (``lgmp.clients.views`` for
the host and the demo, ``lgmp.clients.play`` for a player) draw from both.

What LGMP v1.0 tells a host, and so what this can know:

* Players by seat and avatar colour only: names never reach the host.
* Who moved where: GAME carries counts per space, and each event GAME moves one
  piece, the previous GAME's ``turn`` (PROTOCOL.md 8.1), so pieces are tracked.
* A spin's number: a landing short of the finish moved exactly the spin; a move
  onto the finish may have been clamped, so its spin is not known.
* Card answers go to the server only: nobody else learns who took which token.
* Who left: in the lobby, from REDY 0 updates; a player who drops mid-game is
  played by the server and nothing is sent, so the host learns of it only after
  the game, when the seats of players who never came back are freed.

Card texts, names, places and salaries are the rules' own words (``lgmp.game.rules``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ..game.rules import (
    AVATAR_NAMES,
    BOARD,
    CARD_SPACES,
    DID_YOU_KNOW_FIELD,
    FIELD_NAMES,
    FINISH_SPACE,
    SEATS,
    SPACE_NAMES,
    SpaceKind,
    card_text,
    card_title,
    career_salary,
    find_card,
    move_words,
    ordinal,
)
from ..wire.packets import CardDealt, FinalResults, GameUpdate, ReadyAnswer, ReadyResponse, Reset, ServerPacket

# --------------------------------------------------------------------------- words


def avatar_name(avatar: int) -> str:
    """'Red' for avatar 1; '' for 0 (no avatar)."""
    return AVATAR_NAMES.get(avatar, "")


def _for_everyone(kind: int, number: int) -> bool:
    """Does every player answer this card (else the mover alone, or nobody)?"""
    dealt = find_card(kind, number)
    return dealt is not None and dealt.everyone_answers


# Where a piece landed, as the move line says it.
_SPACE_WORDS = {**SPACE_NAMES, SpaceKind.PLAIN: "a plain space", SpaceKind.FINISH: "the finish"}


def plural(count: int, word: str) -> str:
    """'1 bot', '2 bots'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Who:
    """A player, shown by the colour of their avatar (the host never learns names)."""

    seat: int
    avatar: int


Part = str | Who


class EventKind(enum.Enum):
    LOBBY = "lobby"
    START = "start"
    MOVE = "move"
    CARD = "card"
    FINISH = "finish"
    TURN = "turn"  # whose turn it is now: the full screen shows it in place, not in its log
    RESULT = "result"
    NOTE = "note"  # said by the screen itself (hints, refusals), not by the server


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class TableCard:
    """The card last dealt: whom it is for (None = every player) and whether it still waits."""

    kind: int
    number: int
    for_seat: Who | None
    waiting: bool


@dataclass(frozen=True, slots=True)
class Standing:
    place: int
    who: Who
    career: str
    salary: int  # dollars, the catalogue's figure


class Phase(enum.Enum):
    LOBBY = "lobby"
    GAME = "game"
    CAREERS = "careers"  # everyone has finished; careers still being chosen
    OVER = "over"  # FINL seen, RSET not yet
    CLOSED = "closed"  # RSET without FINL: the room is gone


# --------------------------------------------------------------------------- the board


class HostBoard:
    """Everything a member can know about the room, from what it was sent."""

    def __init__(self, seat: int | None = None) -> None:
        # None for the host, which is sent every Finish card; a player is sent only its own.
        self.seat = seat
        self.avatars: tuple[int, ...] = (0,) * len(SEATS)
        self.phase = Phase.LOBBY
        self.positions: dict[int, int] = {}  # seat -> space, for the seats in the game
        self.tracking = True  # False once the counts disagree with the tracked pieces
        self.occupancy: tuple[int, ...] = (0,) * len(BOARD)
        self.turn = 0
        self.turn_since = 0.0  # ``now`` when the turn (or the wait for a card's answers) began
        self.card: TableCard | None = None
        self.finish_order: list[int] = []  # seats, first finisher first
        self.results: FinalResults | None = None
        self.games_started = 0
        self.games_finished = 0
        self._last_game: GameUpdate | None = None
        self._after_game = False  # RSET after FINL seen: the next REDY 0 frees departed seats
        self._reached_finish = False  # the latest GAME took the mover onto the finish
        self._held: list[Event] = []  # the turn line, held back until the Finish card that follows

    # --- asking -----------------------------------------------------------------

    def who(self, seat: int) -> Who:
        return Who(seat, self.avatars[seat - 1] if seat in SEATS else 0)

    def ready_seats(self) -> list[int]:
        return [seat for seat in SEATS if self.avatars[seat - 1]]

    def standings(self) -> list[Standing]:
        """FINL's players by place (1 = first to finish), with the catalogue's salaries."""
        if self.results is None:
            return []
        r = self.results
        rows = [Standing(place, self.who(seat), r.careers[seat - 1], career_salary(r.careers[seat - 1], r.salaries[seat - 1]))
                for seat, place in zip(SEATS, r.places) if place]
        return sorted(rows, key=lambda s: s.place)

    def place_of(self, seat: int) -> int | None:
        return self.finish_order.index(seat) + 1 if seat in self.finish_order else None

    # --- feeding ----------------------------------------------------------------

    def feed(self, packet: ServerPacket, now: float = 0.0) -> list[Event]:
        if isinstance(packet, ReadyResponse):
            return self._avatars(packet)
        if isinstance(packet, GameUpdate):
            return self._game(packet, now)
        if isinstance(packet, CardDealt):
            return self._card(packet, now)
        if isinstance(packet, FinalResults):
            return self._final(packet)
        if isinstance(packet, Reset):
            return self._reset()
        return []

    def _avatars(self, packet: ReadyResponse) -> list[Event]:
        events: list[Event] = []
        old_avatars, self.avatars = self.avatars, tuple(packet.avatars)
        if self.phase is not Phase.LOBBY:
            return events  # a rejoiner's REDY changes nothing the others see
        for seat, old, new in zip(SEATS, old_avatars, self.avatars):
            if old == new:
                continue
            if not new:
                if self._after_game:
                    events.append(Event(EventKind.LOBBY, (Who(seat, old), " left during the game and did not come back;"
                                                          " the server played for them. The seat is free again.")))
                else:
                    events.append(Event(EventKind.LOBBY, (Who(seat, old), f" left (seat {seat} is free again).")))
            elif not old:
                events.append(Event(EventKind.LOBBY, (Who(seat, new), f" is ready in seat {seat}.")))
            else:
                events.append(Event(EventKind.LOBBY, (f"Seat {seat} changed colour: ", Who(seat, old), " is now ",
                                                      Who(seat, new), ".")))
        if packet.response == ReadyAnswer.UPDATE:
            self._after_game = False
        return events

    def _game(self, game: GameUpdate, now: float) -> list[Event]:
        if game == self._last_game:
            return []  # a resync repeats the latest GAME: nothing happened
        events, self._held = self._held, []
        self._reached_finish = False
        if self.phase is Phase.GAME or self.phase is Phase.CAREERS:
            events += self._moved(game)
        else:
            events += self._start(game)
        self._last_game, self.occupancy, self.turn = game, game.occupancy, game.turn
        self.turn_since = now  # every event GAME starts a new wait: for a spin, or for a card's answers
        if self.card is not None and self.card.waiting and game.space not in CARD_SPACES:
            self.card = TableCard(self.card.kind, self.card.number, self.card.for_seat, waiting=False)
        turn = self._turn_event(game)
        if turn is not None:
            # A Finish card follows the GAME that reaches the finish: its turn line waits for it.
            (self._held if self._reached_finish else events).append(turn)
        return events

    def _start(self, game: GameUpdate) -> list[Event]:
        self.phase = Phase.GAME
        self.games_started += 1
        self.results, self.card, self.finish_order = None, None, []
        players = self.ready_seats()
        self.positions = {seat: 0 for seat in players}
        # A member that joins a game late (a rejoining player) does not see everyone on 0.
        self.tracking = game.occupancy[0] == len(players) and sum(game.occupancy) == len(players)
        if not self.tracking:
            self.positions = {}
            return [Event(EventKind.START, ("Game in progress: who is where is not known until the end of the game.",))]
        names = _joined([self.who(seat) for seat in players])
        return [Event(EventKind.START, (f"Game {self.games_started} starts: ", *names, " on the start (space 0)."))]

    def _moved(self, game: GameUpdate) -> list[Event]:
        previous = self._last_game
        mover = previous.turn if previous is not None else 0
        resolving = previous is not None and previous.space in CARD_SPACES
        waiting_card = self.card if resolving else None
        start = self.positions.get(mover)
        end = self._track(mover, game.occupancy)
        if start is None or end is None:
            return []
        # A Finish card follows the GAME that takes a piece to the finish, to the host and that player.
        self._reached_finish = end == FINISH_SPACE and start != FINISH_SPACE and self.seat in (None, mover)
        who = self.who(mover)
        if resolving:
            if waiting_card is not None and waiting_card.for_seat is None:
                return [Event(EventKind.CARD, (f"Every player has answered {card_title(waiting_card.kind, waiting_card.number)}.",))]
            title = card_title(waiting_card.kind, waiting_card.number) if waiting_card else "the card"
            if end == start:
                return [Event(EventKind.MOVE, (who, f" stays on space {start} ({title}).",))]
            step = move_words(end - start).replace("move", "moves", 1)
            return [Event(EventKind.MOVE, (who, f" {step} by {title}: space {start} → {end}"
                                                + (", the finish!" if end == FINISH_SPACE else ".")))]
        if end == FINISH_SPACE:
            return [Event(EventKind.MOVE, (who, f" reaches the finish: space {start} → {end}!"))]
        kind = SpaceKind(game.space) if game.space in SpaceKind._value2member_map_ else SpaceKind(BOARD[end])
        where = _SPACE_WORDS[kind]
        if kind == SpaceKind.DID_YOU_KNOW:
            where += f" ({FIELD_NAMES[DID_YOU_KNOW_FIELD[end]]} pile)"
        return [Event(EventKind.MOVE, (who, f" spun {end - start}: space {start} → {end}, {where}."))]

    def _track(self, mover: int, occupancy: tuple[int, ...]) -> int | None:
        """Move the mover's piece to match ``occupancy``; its new space, or None once lost."""
        if not self.tracking or mover not in self.positions:
            self.tracking = False
            return None
        counts = list(self.occupancy)
        gained = [i for i, (a, b) in enumerate(zip(counts, occupancy)) if b > a]
        lost = [i for i, (a, b) in enumerate(zip(counts, occupancy)) if b < a]
        start = self.positions[mover]
        if not gained and not lost:
            return start
        if len(gained) != 1 or lost != [start]:
            self.tracking = False  # not one piece moving from the mover's space: stop guessing
            return None
        self.positions[mover] = gained[0]
        return gained[0]

    def _turn_event(self, game: GameUpdate) -> Event | None:
        if game.turn == 0:
            self.phase = Phase.CAREERS
            return Event(EventKind.TURN, ("Every player has finished: waiting for their careers.",))
        if game.space in CARD_SPACES:
            return None  # the card, which follows, says who must answer
        return Event(EventKind.TURN, (self.who(game.turn), "'s turn to spin."))

    def _card(self, card: CardDealt, now: float) -> list[Event]:
        title, text = card_title(card.kind, card.number), card_text(card.kind, card.number)
        if card.kind == SpaceKind.FINISH:
            seat = self._finisher()
            if seat is None:
                return self._flush_held([Event(EventKind.FINISH, (f"{title}: {text}.",))])
            self.finish_order.append(seat)
            place = len(self.finish_order)
            self.card = TableCard(card.kind, card.number, self.who(seat), waiting=False)
            event = Event(EventKind.FINISH, (self.who(seat), f" finished {ordinal(place)} ({title}: {text})"
                                                              " and now chooses a career."))
            return self._flush_held([event])
        everyone = _for_everyone(card.kind, card.number)
        for_seat = None if everyone else self.who(self.turn)
        self.card = TableCard(card.kind, card.number, for_seat, waiting=True)
        self.turn_since = now
        if everyone:
            return self._flush_held([Event(EventKind.CARD, (f"Card for every player: {title}, {text}.",))])
        return self._flush_held([Event(EventKind.CARD, ("Card for ", for_seat, f": {title}, {text}."))])

    def _finisher(self) -> int | None:
        """The seat a Finish card is for: the one on the finish that has no place yet."""
        on_finish = [seat for seat, space in self.positions.items() if space == FINISH_SPACE and seat not in self.finish_order]
        return on_finish[0] if len(on_finish) == 1 else None

    def _flush_held(self, events: list[Event]) -> list[Event]:
        held, self._held = self._held, []
        return events + held

    def _final(self, results: FinalResults) -> list[Event]:
        self.results = results
        self.phase = Phase.OVER
        self.games_finished += 1
        self.card = None
        return self._flush_held([Event(EventKind.RESULT, (f"Game {self.games_started} is over.",))])

    def _reset(self) -> list[Event]:
        if self.phase is Phase.OVER:
            self.phase = Phase.LOBBY
            self._after_game = True
            self._last_game = None
            return [Event(EventKind.LOBBY, ("Back to the lobby: same room, same players.",))]
        self.phase = Phase.CLOSED
        return [Event(EventKind.LOBBY, ("The room was closed (every player left, the host left, or the server is "
                                        "shutting down).",))]


def _joined(people: Iterable[Who]) -> list[Part]:
    """Who(1), ', ', Who(2), ' and ', Who(3)."""
    people = list(people)
    parts: list[Part] = []
    for i, person in enumerate(people):
        if i:
            parts.append(" and " if i == len(people) - 1 else ", ")
        parts.append(person)
    return parts
