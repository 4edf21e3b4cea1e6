"""Typed LGMP v1.0 packets: one frozen, slotted dataclass per packet per direction.

These are plain values. The only thing they know of the wire is what it can carry,
and they check it when they are built: every int fits its byte (an int8 for a CARD
move), every text is at most 255 one-byte characters, the room code is exactly four,
the seat arrays have six entries and the board 56, and a JOIN answer carries a room
exactly when it is 1. A packet that breaks one raises ``LocalProtocolError`` naming
the field, where it is built, not later where it is encoded. ``lgmp.wire.codec`` is
the one place that turns packets into bytes and back. The same 4-byte tag means
different layouts per direction (JOIN, REDY, CARD), so each direction has its own
classes.

Text fields are ``str``. On the wire LGMP text is ASCII; a peer's non-ASCII
byte decodes as a lone surrogate (Python's ``surrogateescape``) so the packet
still round-trips byte for byte and the room layer can answer it ("invalid
characters") instead of the framer dropping the connection. Such surrogates are
the only non-ASCII characters a packet accepts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..frozen import set_directly
from .errors import LocalProtocolError

# The wire's limits, which the packets check (lgmp.wire.codec declares the layouts).
SEAT_COUNT = 6  # seat-indexed arrays (REDY avatars, FINL places, careers, salaries): seats 1..6
BOARD_SPACES = 56  # GAME carries one occupancy count per board space 0..55
ROOM_CODE_LENGTH = 4  # JOIN carries the room as exactly four bytes
TEXT_MAX = 255  # variable text is prefixed by its length in one unsigned byte
UINT8 = (0, 255)  # every number is one unsigned byte...
INT8 = (-128, 127)  # ...except a CARD move, one two's-complement byte


class Direction(enum.Enum):
    """Who sends the bytes. A decoder is built for one direction."""

    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"


class JoinAnswer(enum.IntEnum):
    """JOIN response codes (server -> client)."""

    HOST = 1
    PLAYER = 2
    LOBBY_FULL = 3
    ROOM_NOT_FOUND = 4
    GAME_STARTED = 5


class ReadyAnswer(enum.IntEnum):
    """REDY response codes (server -> client). 0 is an update, not an answer."""

    UPDATE = 0
    ACCEPTED = 1
    EMPTY_NAME = 2
    NAME_TOO_LONG = 3
    INVALID_CHARACTERS = 4
    ALREADY_TAKEN = 5
    PROFANE = 6


class CardAction(enum.IntEnum):
    """CARD (client -> server) action codes."""

    MOVE = 1  # value is a signed move (Brand Crisis, Career Point)
    TOKEN = 2  # value is a field number, or 0 to decline (You're the Boss, Did You Know)


#: The room name a client sends in JOIN to create a room.
HOST_ROOM = "HOST"


# --- the checks: each names the packet and the field -------------------------


def _refuse(packet: object, field: str, problem: str) -> LocalProtocolError:
    return LocalProtocolError(f"{type(packet).__name__}.{field} {problem}")


def _check_byte(packet: object, field: str, value: Any, bounds: tuple[int, int] = UINT8) -> None:
    # type() first: the common case (a plain int) costs one comparison. IntEnum members
    # are ints and welcome; bool is an int too, but True as a number is a bug.
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _refuse(packet, field, f"must be an int, not {type(value).__name__}")
    low, high = bounds
    if not low <= value <= high:
        raise _refuse(packet, field, f"must be in {low}..{high}, got {value}")


def _check_text(packet: object, field: str, value: Any, length: int | None = None) -> None:
    if type(value) is not str:
        raise _refuse(packet, field, f"must be str, not {type(value).__name__}")
    if not value.isascii():
        try:  # a peer's bytes 0x80..0xFF, decoded as surrogate escapes, are welcome too
            value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            raise _refuse(packet, field, f"must be ASCII: {value!r}") from None
    # Either way one character is one byte on the wire.
    if length is not None and len(value) != length:
        raise _refuse(packet, field, f"must be exactly {length} characters, got {len(value)}")
    if len(value) > TEXT_MAX:
        raise _refuse(packet, field, f"must be at most {TEXT_MAX} characters, got {len(value)}")


def _check_bytes(packet: object, field: str, values: Any, count: int) -> None:
    if type(values) is not tuple or len(values) != count:
        raise _refuse(packet, field, f"must be a tuple of {count} ints in 0..255, got {_shape(values)}")
    try:
        bytes(values)  # one C call checks every entry is an int in 0..255
    except (TypeError, ValueError):
        for index, value in enumerate(values):  # only to name the bad entry
            _check_byte(packet, f"{field}[{index}]", value)


def _shape(values: Any) -> str:
    if type(values) is tuple:
        return f"{len(values)} entries"
    return f"a {type(values).__name__}"


def _check_texts(packet: object, field: str, values: Any, count: int) -> None:
    if type(values) is not tuple or len(values) != count:
        raise _refuse(packet, field, f"must be a tuple of {count} str, got {_shape(values)}")
    for index, value in enumerate(values):
        _check_text(packet, f"{field}[{index}]", value)


# --- client -> server -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """``JOIN`` room[4]: join a room, or create one with ``"HOST"``."""

    room: str

    def __post_init__(self) -> None:
        _check_text(self, "room", self.room, ROOM_CODE_LENGTH)


@dataclass(frozen=True, slots=True)
class ReadyRequest:
    """``REDY`` len, name[len], avatar: choose a username and an avatar."""

    name: str
    avatar: int

    def __post_init__(self) -> None:
        _check_text(self, "name", self.name)
        _check_byte(self, "avatar", self.avatar)


@dataclass(frozen=True, slots=True)
class StartGame:
    """``STRT``: the host starts the game."""


@set_directly  # built for every packet of a game
@dataclass(frozen=True, slots=True)
class Spin:
    """``SPIN`` number: the number the spinner landed on."""

    number: int

    def __post_init__(self) -> None:
        _check_byte(self, "number", self.number)


@set_directly  # built for every packet of a game
@dataclass(frozen=True, slots=True)
class CardAnswer:
    """``CARD`` action, value: the answer to a card (int8 value when action is 1)."""

    action: int
    value: int

    def __post_init__(self) -> None:
        _check_byte(self, "action", self.action)
        _check_byte(self, "value", self.value, INT8 if self.action == CardAction.MOVE else UINT8)


@dataclass(frozen=True, slots=True)
class CareerChoice:
    """``CRER`` field, len, career[len], salary (thousands)."""

    field: int
    career: str
    salary: int

    def __post_init__(self) -> None:
        _check_byte(self, "field", self.field)
        _check_text(self, "career", self.career)
        _check_byte(self, "salary", self.salary)


# --- server -> client -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinResponse:
    """``JOIN`` response, then room[4] only when response is 1 (host)."""

    response: int
    room: str | None = None

    def __post_init__(self) -> None:
        _check_byte(self, "response", self.response)
        if self.response == JoinAnswer.HOST:
            _check_text(self, "room", self.room, ROOM_CODE_LENGTH)
        elif self.room is not None:
            raise _refuse(self, "room", f"is sent only with response {JoinAnswer.HOST:d} (host), not {self.response}")


@dataclass(frozen=True, slots=True)
class ReadyResponse:
    """``REDY`` response, avatar[6] (avatar of seats 1..6, 0 = empty or not ready)."""

    response: int
    avatars: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_byte(self, "response", self.response)
        _check_bytes(self, "avatars", self.avatars, SEAT_COUNT)


@set_directly  # built for every packet of a game
@dataclass(frozen=True, slots=True)
class GameUpdate:
    """``GAME`` turn, space kind, occupancy[56]."""

    turn: int
    space: int
    occupancy: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_byte(self, "turn", self.turn)
        _check_byte(self, "space", self.space)
        _check_bytes(self, "occupancy", self.occupancy, BOARD_SPACES)


@set_directly  # built for every packet of a game
@dataclass(frozen=True, slots=True)
class CardDealt:
    """``CARD`` kind (space kind of the deck), number (1-based within the deck)."""

    kind: int
    number: int

    def __post_init__(self) -> None:
        _check_byte(self, "kind", self.kind)
        _check_byte(self, "number", self.number)


@dataclass(frozen=True, slots=True)
class FinalResults:
    """``FINL`` place[6], six x (len, career[len]), salary[6]; indexed by seat 1..6."""

    places: tuple[int, ...]
    careers: tuple[str, ...]
    salaries: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_bytes(self, "places", self.places, SEAT_COUNT)
        _check_texts(self, "careers", self.careers, SEAT_COUNT)
        _check_bytes(self, "salaries", self.salaries, SEAT_COUNT)


@dataclass(frozen=True, slots=True)
class Reset:
    """``RSET``: back to the lobby or to a new room."""


ClientPacket = JoinRequest | ReadyRequest | StartGame | Spin | CardAnswer | CareerChoice
ServerPacket = JoinResponse | ReadyResponse | GameUpdate | CardDealt | FinalResults | Reset
Packet = ClientPacket | ServerPacket

CLIENT_PACKETS: tuple[type, ...] = (JoinRequest, ReadyRequest, StartGame, Spin, CardAnswer, CareerChoice)
SERVER_PACKETS: tuple[type, ...] = (JoinResponse, ReadyResponse, GameUpdate, CardDealt, FinalResults, Reset)
