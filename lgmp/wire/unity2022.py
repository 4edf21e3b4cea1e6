"""The 2022 lobby dialect of LGMP, as the game's own Unity client speaks it (``unity-2022``).

The Unity client of "Let's Go Marketing!" and the small Node.js server beside it
(their last commit, April 2022) moved on from v1.0 in the lobby: the client's REDY
puts the avatar before the name, the JOIN answer to a player carries the free
avatars, and four server packets are new (LOBY, HUPD, PUPD, and a REDY answer of
two codes). After STRT the 2022 protocol text keeps CARD, FINL and RSET, shortens
GAME to the turn alone, and adds MOVE and CUPD for the host and LAND and ENDT from
it. PROTOCOL.md's chapter 12 is the reference; this module declares the bytes.

Packets whose bytes are v1.0's are v1.0's classes with v1.0's declarations. The
others are classes of their own, named ``Unity...`` where they stand for a v1.0
packet of the same tag. ``ReadyRequest`` is the one v1.0 class with a layout of its
own here: the client's REDY decodes into the same packet the rooms already handle.

Avatar flags (JOIN 2, PUPD) are indexed by avatar 1..6: 1 = free, 0 = taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import Bytes, If, Int8sb, Rebuild, Struct, len_, this

from . import codec
# The field types and checks are v1.0's: the same bytes mean the same things.
from .codec import Declaration, Dialect, _room_code, _seats, _text, _u8, _WireText
from .packets import (
    INT8,
    ROOM_CODE_LENGTH,
    SEAT_COUNT,
    CardAnswer,
    CardDealt,
    CareerChoice,
    Direction,
    FinalResults,
    JoinAnswer,
    JoinRequest,
    ReadyRequest,
    Reset,
    Spin,
    StartGame,
    _check_byte,
    _check_bytes,
    _check_text,
    _refuse,
)

__all__ = [
    "CLIENT_PACKETS",
    "SERVER_PACKETS",
    "UNITY_2022",
    "CardUpdate",
    "EndTurn",
    "HostUpdate",
    "Land",
    "Lobby",
    "Move",
    "PlayerUpdate",
    "UnityGameUpdate",
    "UnityJoinResponse",
    "UnityReadyResponse",
    "free_flags",
]

AVATAR_FREE, AVATAR_TAKEN = 1, 0  # the flags of JOIN 2 and PUPD, and the REDY avatar answer


def free_flags(avatars: tuple[int, ...]) -> tuple[int, ...]:
    """The 2022 avatar flags (1 = free, by avatar 1..6) of a v1.0 seat array (avatar by seat)."""
    return tuple(AVATAR_TAKEN if avatar in avatars else AVATAR_FREE for avatar in range(1, SEAT_COUNT + 1))


# --- client -> server (beside v1.0's) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Land:
    """``LAND`` kind, category: the host's piece landed (the card kind 1-5, and the Did You
    Know pile). The server decides landings itself: it reads LAND and does nothing."""

    kind: int
    category: int

    def __post_init__(self) -> None:
        _check_byte(self, "kind", self.kind)
        _check_byte(self, "category", self.category)


@dataclass(frozen=True, slots=True)
class EndTurn:
    """``ENDT``: the host says the turn is over. The server passes turns itself: it reads
    ENDT and does nothing."""


# --- server -> client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnityJoinResponse:
    """``JOIN`` response, then room[4] when it is 1 (host), or the avatar flags[6] when
    it is 2 (player); nothing more for 3, 4, 5."""

    response: int
    room: str | None = None
    free: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_byte(self, "response", self.response)
        if self.response == JoinAnswer.HOST:
            _check_text(self, "room", self.room, ROOM_CODE_LENGTH)
        elif self.room is not None:
            raise _refuse(self, "room", f"is sent only with response {JoinAnswer.HOST:d} (host), not {self.response}")
        if self.response == JoinAnswer.PLAYER:
            _check_bytes(self, "free", self.free, SEAT_COUNT)
        elif self.free is not None:
            raise _refuse(self, "free", f"is sent only with response {JoinAnswer.PLAYER:d} (player), not {self.response}")


@dataclass(frozen=True, slots=True)
class UnityReadyResponse:
    """``REDY`` name answer, avatar answer: the answer to the player's own REDY, the name
    and the avatar judged each on its own (avatar: 1 free, 0 taken or out of range)."""

    name_answer: int
    avatar_answer: int

    def __post_init__(self) -> None:
        _check_byte(self, "name_answer", self.name_answer)
        _check_byte(self, "avatar_answer", self.avatar_answer)


@dataclass(frozen=True, slots=True)
class Lobby:
    """``LOBY`` index: to the host, a player joined with this index (1-6); to a player,
    its own index (the seat GAME's turn names)."""

    index: int

    def __post_init__(self) -> None:
        _check_byte(self, "index", self.index)


@dataclass(frozen=True, slots=True)
class HostUpdate:
    """``HUPD`` index, avatar, len, name[len]: to the host, the player of that index is ready."""

    index: int
    avatar: int
    name: str

    def __post_init__(self) -> None:
        _check_byte(self, "index", self.index)
        _check_byte(self, "avatar", self.avatar)
        _check_text(self, "name", self.name)


@dataclass(frozen=True, slots=True)
class PlayerUpdate:
    """``PUPD`` flags[6]: to a player, which avatars are free (1) or taken (0)."""

    free: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_bytes(self, "free", self.free, SEAT_COUNT)


@dataclass(frozen=True, slots=True)
class UnityGameUpdate:
    """``GAME`` turn: whose turn it is now (the seat that may spin; 0 once everyone finished)."""

    turn: int

    def __post_init__(self) -> None:
        _check_byte(self, "turn", self.turn)


@dataclass(frozen=True, slots=True)
class Move:
    """``MOVE`` turn, spaces: to the host, move that seat's piece this many spaces (int8:
    a card may move it back)."""

    turn: int
    spaces: int

    def __post_init__(self) -> None:
        _check_byte(self, "turn", self.turn)
        _check_byte(self, "spaces", self.spaces, INT8)


@dataclass(frozen=True, slots=True)
class CardUpdate:
    """``CUPD`` player: to the host, this seat has answered the You're the Boss or Did You
    Know card on the table."""

    player: int

    def __post_init__(self) -> None:
        _check_byte(self, "player", self.player)


# --- the declarations ---------------------------------------------------------------------

_C2S, _S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
_V1 = {(d.direction, d.packet_type): d for d in codec.DECLARATIONS}

DECLARATIONS: tuple[Declaration, ...] = (
    _V1[_C2S, JoinRequest],
    # len, avatar, name[len]: the length is not next to its text, so it is computed when built.
    Declaration(
        ReadyRequest, _C2S, b"REDY",
        Struct(
            "name_length" / Rebuild(_u8, len_(this.name)),
            "avatar" / _u8,
            "name" / _WireText(Bytes(this.name_length)),
        ),
        reordered=True,
    ),
    _V1[_C2S, StartGame],
    _V1[_C2S, Spin],
    _V1[_C2S, CardAnswer],
    Declaration(Land, _C2S, b"LAND", Struct("kind" / _u8, "category" / _u8)),
    Declaration(EndTurn, _C2S, b"ENDT", Struct()),
    _V1[_C2S, CareerChoice],
    # The room follows a host's answer, the avatar flags a player's; a refusal is the code alone.
    Declaration(
        UnityJoinResponse, _S2C, b"JOIN",
        Struct(
            "response" / _u8,
            "room" / If(this.response == int(JoinAnswer.HOST), _room_code),
            "free" / If(this.response == int(JoinAnswer.PLAYER), _seats),
        ),
    ),
    Declaration(Lobby, _S2C, b"LOBY", Struct("index" / _u8)),
    Declaration(HostUpdate, _S2C, b"HUPD", Struct("index" / _u8, "avatar" / _u8, "name" / _text)),
    Declaration(PlayerUpdate, _S2C, b"PUPD", Struct("free" / _seats)),
    Declaration(UnityReadyResponse, _S2C, b"REDY", Struct("name_answer" / _u8, "avatar_answer" / _u8)),
    Declaration(UnityGameUpdate, _S2C, b"GAME", Struct("turn" / _u8)),
    Declaration(Move, _S2C, b"MOVE", Struct("turn" / _u8, "spaces" / Int8sb)),
    _V1[_S2C, CardDealt],
    Declaration(CardUpdate, _S2C, b"CUPD", Struct("player" / _u8)),
    _V1[_S2C, FinalResults],
    _V1[_S2C, Reset],
)

#: The Unity client's 2022 dialect.
UNITY_2022 = Dialect("unity-2022", DECLARATIONS)

CLIENT_PACKETS: tuple[type, ...] = UNITY_2022.packet_types(_C2S)
SERVER_PACKETS: tuple[type, ...] = UNITY_2022.packet_types(_S2C)
