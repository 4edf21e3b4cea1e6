"""A room as its events tell it: what a spectator, a metrics exporter or a host
screen needs, rebuilt from ``lgmp.rooms.events`` alone, never from a room's internals.

``RoomView.apply(event)`` folds one event in; ``RoomViews`` keeps one view per
live room for a whole event stream. Both are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..game.rules import SEATS, Field
from .events import (
    CardAnswered,
    CardDrawn,
    CareerChosen,
    Event,
    GameOver,
    GameStarted,
    PieceMoved,
    PlayerBack,
    PlayerFinished,
    PlayerJoined,
    PlayerLeft,
    PlayerReady,
    RoomClosed,
    RoomOpened,
    SeatFreed,
    TokenGained,
    TurnChanged,
)


@dataclass(slots=True)
class SeatView:
    number: int
    name: str = ""
    avatar: int = 0  # 0: not ready yet
    present: bool = True  # False: left mid-game; the server plays for it
    space: int = 0
    tokens: list[int] = field(default_factory=lambda: [0] * len(Field))  # per field 1..6
    place: int | None = None
    career: str | None = None
    salary: int | None = None  # dollars


@dataclass(slots=True)
class CardView:
    kind: int
    number: int
    seats: tuple[int, ...]  # who was shown it
    awaiting: set[int]  # whose answer is still missing


@dataclass(slots=True)
class RoomView:
    code: str
    opened_at: float = 0.0
    phase: str = "lobby"  # "lobby", "game" or "closed"
    seats: dict[int, SeatView] = field(default_factory=dict)
    turn: int = 0
    space: int = 0  # the kind of space the latest GAME reports
    card: CardView | None = None  # the card on the table, until the next GAME or card
    standings: tuple[tuple[int, int, str, int], ...] = ()  # the last game's (seat, place, career, salary)
    games: int = 0  # games finished in this room
    # Who played the current (or last) game, seat -> (name, avatar): standings still
    # name a player whose seat was freed when the game ended.
    roster: dict[int, tuple[str, int]] = field(default_factory=dict)
    last_move: PieceMoved | None = None  # the latest move of the current game, for a caption

    def apply(self, event: Event) -> None:
        handler = _APPLY.get(type(event))
        if handler is not None:
            handler(self, event)

    def seats_in_order(self) -> list[SeatView]:
        return [self.seats[n] for n in SEATS if n in self.seats]

    def name_of(self, seat: int) -> str:
        """The seat's player's name, from the seat or, once it was freed, the roster."""
        if seat in self.seats and self.seats[seat].name:
            return self.seats[seat].name
        return self.roster.get(seat, ("", 0))[0]

    def avatar_of(self, seat: int) -> int:
        if seat in self.seats and self.seats[seat].avatar:
            return self.seats[seat].avatar
        return self.roster.get(seat, ("", 0))[1]

    # --- one method per fact ----------------------------------------------------------

    def _opened(self, e: RoomOpened) -> None:
        self.opened_at = e.at

    def _closed(self, e: RoomClosed) -> None:
        self.phase = "closed"

    def _joined(self, e: PlayerJoined) -> None:
        self.seats[e.seat] = SeatView(e.seat)

    def _ready(self, e: PlayerReady) -> None:
        seat = self.seats.setdefault(e.seat, SeatView(e.seat))
        seat.name, seat.avatar = e.name, e.avatar

    def _left(self, e: PlayerLeft) -> None:
        if e.in_game:
            self.seats[e.seat].present = False
        else:
            self.seats.pop(e.seat, None)

    def _back(self, e: PlayerBack) -> None:
        self.seats[e.seat].present = True

    def _freed(self, e: SeatFreed) -> None:
        self.seats.pop(e.seat, None)

    def _started(self, e: GameStarted) -> None:
        self.phase, self.turn, self.card, self.standings = "game", e.turn, None, ()
        self.roster = {seat: (name, avatar) for seat, name, avatar in e.players}
        self.last_move = None
        for seat in self.seats.values():
            seat.space, seat.tokens, seat.place, seat.career, seat.salary = 0, [0] * len(Field), None, None, None

    def _moved(self, e: PieceMoved) -> None:
        self.seats[e.seat].space = e.end
        self.last_move = e

    def _turn(self, e: TurnChanged) -> None:
        self.turn, self.space = e.turn, e.space
        if self.card is not None and not self.card.awaiting:
            self.card = None

    def _drawn(self, e: CardDrawn) -> None:
        self.card = CardView(e.kind, e.number, e.seats, set(e.awaiting))

    def _answered(self, e: CardAnswered) -> None:
        if self.card is not None:
            self.card.awaiting.discard(e.seat)

    def _token(self, e: TokenGained) -> None:
        self.seats[e.seat].tokens[e.field - 1] += 1

    def _finished(self, e: PlayerFinished) -> None:
        self.seats[e.seat].place = e.place

    def _career(self, e: CareerChosen) -> None:
        seat = self.seats[e.seat]
        seat.career, seat.salary = e.career, e.salary

    def _over(self, e: GameOver) -> None:
        self.phase, self.turn, self.card, self.standings = "lobby", 0, None, e.standings
        self.games += 1


_APPLY = {
    RoomOpened: RoomView._opened,
    RoomClosed: RoomView._closed,
    PlayerJoined: RoomView._joined,
    PlayerReady: RoomView._ready,
    PlayerLeft: RoomView._left,
    PlayerBack: RoomView._back,
    SeatFreed: RoomView._freed,
    GameStarted: RoomView._started,
    PieceMoved: RoomView._moved,
    TurnChanged: RoomView._turn,
    CardDrawn: RoomView._drawn,
    CardAnswered: RoomView._answered,
    TokenGained: RoomView._token,
    PlayerFinished: RoomView._finished,
    CareerChosen: RoomView._career,
    GameOver: RoomView._over,
}


class RoomViews:
    """One ``RoomView`` per live room, kept from a stream of the hub's events."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomView] = {}

    def apply(self, events: list[Event]) -> None:
        for event in events:
            code = getattr(event, "room", None)
            if code is None or type(event) not in _APPLY:
                continue
            if type(event) is RoomOpened:
                self.rooms[code] = RoomView(code)
            view = self.rooms.get(code)
            if view is None:
                continue
            view.apply(event)
            if view.phase == "closed":
                del self.rooms[code]
