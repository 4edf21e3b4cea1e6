"""Typed LGMP v1.0 packets: one frozen, slotted dataclass per packet per direction.

These are plain values. They know nothing of bytes: ``lgmp.wire.codec`` is the one
place that turns them into bytes and back. The same 4-byte tag means different
layouts per direction (JOIN, REDY, CARD), so each direction has its own classes.

Text fields are ``str``. On the wire LGMP text is ASCII; a peer's non-ASCII
byte decodes as a lone surrogate (Python's ``surrogateescape``) so the packet
still round-trips byte for byte and the room layer can answer it ("invalid
characters") instead of the framer dropping the connection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


# --- client -> server -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """``JOIN`` room[4]: join a room, or create one with ``"HOST"``."""

    room: str


@dataclass(frozen=True, slots=True)
class ReadyRequest:
    """``REDY`` len, name[len], avatar: choose a username and an avatar."""

    name: str
    avatar: int


@dataclass(frozen=True, slots=True)
class StartGame:
    """``STRT``: the host starts the game."""


@dataclass(frozen=True, slots=True)
class Spin:
    """``SPIN`` number: the number the spinner landed on."""

    number: int


@dataclass(frozen=True, slots=True)
class CardAnswer:
    """``CARD`` action, value: the answer to a card (int8 value when action is 1)."""

    action: int
    value: int


@dataclass(frozen=True, slots=True)
class CareerChoice:
    """``CRER`` field, len, career[len], salary (thousands)."""

    field: int
    career: str
    salary: int


# --- server -> client -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinResponse:
    """``JOIN`` response, then room[4] only when response is 1 (host)."""

    response: int
    room: str | None = None


@dataclass(frozen=True, slots=True)
class ReadyResponse:
    """``REDY`` response, avatar[6] (avatar of seats 1..6, 0 = empty or not ready)."""

    response: int
    avatars: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GameUpdate:
    """``GAME`` turn, space kind, occupancy[56]."""

    turn: int
    space: int
    occupancy: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CardDealt:
    """``CARD`` kind (space kind of the deck), number (1-based within the deck)."""

    kind: int
    number: int


@dataclass(frozen=True, slots=True)
class FinalResults:
    """``FINL`` place[6], six x (len, career[len]), salary[6]; indexed by seat 1..6."""

    places: tuple[int, ...]
    careers: tuple[str, ...]
    salaries: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Reset:
    """``RSET``: back to the lobby or to a new room."""


ClientPacket = JoinRequest | ReadyRequest | StartGame | Spin | CardAnswer | CareerChoice
ServerPacket = JoinResponse | ReadyResponse | GameUpdate | CardDealt | FinalResults | Reset
Packet = ClientPacket | ServerPacket

CLIENT_PACKETS: tuple[type, ...] = (JoinRequest, ReadyRequest, StartGame, Spin, CardAnswer, CareerChoice)
SERVER_PACKETS: tuple[type, ...] = (JoinResponse, ReadyResponse, GameUpdate, CardDealt, FinalResults, Reset)
