"""Everything the pure core tells the world, as frozen values.

The hub and its rooms never act; they return a list of these, in order, and the
caller carries them out (the trio shell) or watches them (views, metrics,
spectators). Two families:

**Effects** -- what the shell must do:

* ``Deliver(to, packet)``: queue ``packet`` to every member in ``to`` (encoded once);
* ``CloseMember(member, reason)``: close that member after what was queued before;
* ``StoreGame(room, seed, record, hold)``: store a finished game; every packet for
  the members in ``hold`` queued *after* this event waits until the game is
  durable, so a FINL always describes a stored game;
* ``PacketIgnored(member, room, reason, strikes)``: a well-formed packet that was
  not allowed now (the sender is resynced; ``strikes`` counts this one).

**Room facts** -- what happened in a room, enough to redraw it from the events
alone (a spectator that has seen every event since ``RoomOpened`` knows the
lobby, every piece's space, the card on the table, tokens, finishes, careers
and the standings without reading a room's internals).

The *play facts* (``PLAY_FACTS``: a piece moved, the turn changed, a card drawn
or answered, a token, a finish, a career) come several per packet of a game. A
hub made with ``facts=False`` -- a server where nothing watches its rooms and no
connection is rendered in another dialect -- does not build them; the effects
are the same either way.

Every event names its room by code; seats are 1..6; spaces 0..55. Events are
validated when built, so a bad one fails where it is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..frozen import set_directly as _set_directly
from ..game.engine import GameRecord
from ..game.rules import AVATAR_NUMBERS, SEATS
from ..wire.packets import ServerPacket

MemberId = int


def _check_seat(seat: int) -> None:
    if seat not in SEATS:
        raise ValueError(f"seat must be 1..6, got {seat!r}")


# --- effects ------------------------------------------------------------------


@_set_directly
@dataclass(frozen=True, slots=True)
class Deliver:
    to: tuple[MemberId, ...]
    packet: ServerPacket


@_set_directly
@dataclass(frozen=True, slots=True)
class CloseMember:
    member: MemberId
    reason: str


@dataclass(frozen=True, slots=True)
class StoreGame:
    room: str
    seed: int
    record: GameRecord
    hold: tuple[MemberId, ...]  # their later packets wait for the commit


@_set_directly
@dataclass(frozen=True, slots=True)
class PacketIgnored:
    member: MemberId
    room: str | None  # None: the connection had not joined a room
    reason: str
    strikes: int  # strikes inside the window, this one included

    def __post_init__(self) -> None:
        if self.strikes < 1:
            raise ValueError("an ignored packet is at least the first strike")


# --- room facts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomOpened:
    room: str
    host: MemberId
    at: float  # the core's clock (monotonic); the shell knows the wall clock


@dataclass(frozen=True, slots=True)
class RoomClosed:
    room: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlayerJoined:
    """A connection took a seat in the lobby (not ready yet: no name, no avatar)."""

    room: str
    seat: int
    member: MemberId

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@dataclass(frozen=True, slots=True)
class ReadyChecked:
    """A seated player's REDY in the lobby, its name and its avatar judged each on its own.

    ``name`` is the REDY answer for the name alone (1 accepted, 2 empty, 3 too long,
    4 invalid characters, 5 another seat has it, 6 profane); ``avatar_free`` says the
    avatar is one of 1-6 that no other ready seat holds. The REDY is granted only
    when both pass, and a ``PlayerReady`` follows. (v1.0's one answer code is the
    first failure of the two; a client that shows both answers needs this.)
    """

    room: str
    seat: int
    member: MemberId
    name: int
    avatar_free: bool

    def __post_init__(self) -> None:
        _check_seat(self.seat)

    @property
    def granted(self) -> bool:
        return self.name == 1 and self.avatar_free


@dataclass(frozen=True, slots=True)
class PlayerReady:
    """A seated player chose (or changed) its name and avatar."""

    room: str
    seat: int
    name: str
    avatar: int

    def __post_init__(self) -> None:
        _check_seat(self.seat)
        if self.avatar not in AVATAR_NUMBERS:
            raise ValueError(f"avatar must be 1..6, got {self.avatar!r}")


@dataclass(frozen=True, slots=True)
class PlayerLeft:
    """A seat's connection ended. In the lobby the seat is freed; in a game it
    stays, absent, and the server plays for it until it comes back."""

    room: str
    seat: int
    reason: str
    in_game: bool

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@dataclass(frozen=True, slots=True)
class PlayerBack:
    """A rejoining connection reclaimed its absent seat."""

    room: str
    seat: int
    member: MemberId

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@dataclass(frozen=True, slots=True)
class SeatFreed:
    """A seat whose player left mid-game and never came back is freed at the game's end."""

    room: str
    seat: int


@dataclass(frozen=True, slots=True)
class GameStarted:
    room: str
    players: tuple[tuple[int, str, int], ...]  # (seat, name, avatar) in seat order
    turn: int
    seed: int


@_set_directly
@dataclass(frozen=True, slots=True)
class PieceMoved:
    room: str
    seat: int
    start: int
    end: int
    by_card: bool  # False: a spin of ``spin``

    spin: int = 0

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@_set_directly
@dataclass(frozen=True, slots=True)
class TurnChanged:
    """The board as the room's latest GAME shows it: whose turn (0 = nobody's),
    the kind of space that GAME reports, and how many pieces stand on each space."""

    room: str
    turn: int
    space: int
    occupancy: tuple[int, ...]


@_set_directly
@dataclass(frozen=True, slots=True)
class CardDrawn:
    room: str
    kind: int  # SpaceKind of the deck
    number: int  # 1-based within the deck
    seats: tuple[int, ...]  # who is shown it (the host always is)
    awaiting: tuple[int, ...]  # whose answer it waits for (empty: none)


@_set_directly
@dataclass(frozen=True, slots=True)
class CardAnswered:
    room: str
    seat: int
    action: int
    value: int
    by_server: bool  # the server played it for an idle or absent seat

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@_set_directly
@dataclass(frozen=True, slots=True)
class TokenGained:
    room: str
    seat: int
    field: int

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@_set_directly
@dataclass(frozen=True, slots=True)
class PlayerFinished:
    room: str
    seat: int
    place: int

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@_set_directly
@dataclass(frozen=True, slots=True)
class CareerChosen:
    room: str
    seat: int
    field: int
    career: str
    salary: int  # dollars, the catalogue's figure
    by_server: bool

    def __post_init__(self) -> None:
        _check_seat(self.seat)


@dataclass(frozen=True, slots=True)
class GameOver:
    """Every player finished and chose: ``standings`` is (seat, place, career,
    salary in dollars) by place -- place is finish order, not salary."""

    room: str
    standings: tuple[tuple[int, int, str, int], ...]
    duration: float


Effect = Deliver | CloseMember | StoreGame | PacketIgnored
RoomFact = (
    RoomOpened | RoomClosed | PlayerJoined | ReadyChecked | PlayerReady | PlayerLeft | PlayerBack | SeatFreed | GameStarted
    | PieceMoved | TurnChanged | CardDrawn | CardAnswered | TokenGained | PlayerFinished | CareerChosen | GameOver
)
Event = Effect | RoomFact
#: The facts made for every packet of a game: not built by a hub with ``facts=False``.
PLAY_FACTS = (PieceMoved, TurnChanged, CardDrawn, CardAnswered, TokenGained, PlayerFinished, CareerChosen)
