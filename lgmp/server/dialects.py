"""How the server speaks each dialect: v1.0 as the core makes it, unity-2022 rendered per connection.

The rooms and the game know one protocol: their events (``lgmp.rooms.events``) carry
v1.0 packets in ``Deliver`` and say what happened in room facts. A connection that
speaks v1.0 is sent those packets as they are. A connection that speaks another
dialect has a *renderer*: it sees, in order, every event that concerns it -- the
``Deliver`` of packets addressed to it and the facts of the room it is in -- and
says what to send it instead. ``Renderers`` keeps the renderers and knows which room
each connection is in, from the facts that put it there (``RoomOpened``,
``PlayerJoined``, ``PlayerBack``). Both are pure: no sockets, no clocks.

``UnityRenderer`` is the Unity client's 2022 dialect (PROTOCOL.md chapter 12):

* lobby: a player's JOIN answer carries the free avatars (the v1.0 avatar update
  that follows it is folded in); its REDY answer gives the name and avatar answers
  of ``ReadyChecked`` and is followed by a PUPD; every later avatar update is a PUPD;
  the host is sent LOBY when a seat is first taken and HUPD when its player is ready;
* game: GAME with the turn alone, sent when the turn is settled (never while a card
  waits for answers); a player is first sent LOBY with its own index, so it can tell
  its turn; the host is sent MOVE for every piece that moves and CUPD for every
  You're the Boss or Did You Know answer; CARD, FINL and RSET are v1.0's bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..game.rules import CARD_SPACES
from ..rooms.events import (
    CardAnswered,
    Deliver,
    Event,
    GameStarted,
    MemberId,
    PieceMoved,
    PlayerBack,
    PlayerJoined,
    PlayerReady,
    ReadyChecked,
    RoomClosed,
    RoomOpened,
)
from ..wire.codec import V1_0, Dialect
from ..wire.dialects import dialect_named
from ..wire.packets import (
    CardAction,
    CardDealt,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinResponse,
    Packet,
    ReadyAnswer,
    ReadyResponse,
    Reset,
)
from ..wire.unity2022 import (
    UNITY_2022,
    CardUpdate,
    EndTurn,
    HostUpdate,
    Land,
    Lobby,
    Move,
    PlayerUpdate,
    UnityGameUpdate,
    UnityJoinResponse,
    UnityReadyResponse,
    free_flags,
)


class Renderer(Protocol):
    def render(self, event: Event) -> list[Packet]:
        """The packets this connection is sent for ``event`` (which concerns it)."""


@dataclass(frozen=True, slots=True)
class ServedDialect:
    """What the server needs to serve the clients of one dialect."""

    wire: Dialect
    #: Makes a connection's renderer; None: the core's v1.0 packets go as they are.
    renderer: Callable[[MemberId], Renderer] | None = None
    #: Its clients act on the first packet of each read only: one packet per write,
    #: ``unity_packet_gap`` apart.
    paced: bool = False
    #: Packet types of which only the latest unsent one matters (a whole state each).
    snapshots: frozenset[type] = frozenset()
    #: Client packets the server reads and needs nothing from (they still count
    #: against flood control).
    notices: frozenset[type] = frozenset()

    @property
    def name(self) -> str:
        return self.wire.name


# --- the Unity client's 2022 dialect -----------------------------------------------


class UnityRenderer:
    """One unity-2022 connection's share of the core's events, as 2022 packets."""

    __slots__ = ("member", "is_host", "seat", "_announced", "_join_pending", "_checked", "_seat_told")

    def __init__(self, member: MemberId):
        self.member = member
        self.is_host = False
        self.seat: int | None = None  # a player's seat (its index on the host's screen)
        # Host: the seats sent a LOBY. The Unity host keeps one avatar per LOBY, in the
        # order they came, and finds HUPD's by that order: with seats taken lowest
        # first, that order is the seat number only if each seat is announced once.
        self._announced: set[int] = set()
        self._join_pending = False  # JOIN 2 waits for the avatars that follow it
        self._checked: ReadyChecked | None = None  # our REDY's two answers, until its v1.0 answer comes
        self._seat_told = False  # a player was sent its own index since the game started

    def render(self, event: Event) -> list[Packet]:
        handler = _HANDLERS.get(type(event))
        return handler(self, event) if handler is not None else []

    # --- facts ---------------------------------------------------------------------

    def _opened(self, event: RoomOpened) -> list[Packet]:
        if event.host == self.member:
            self.is_host = True
        return []

    def _joined(self, event: PlayerJoined) -> list[Packet]:
        if event.member == self.member:
            self.seat, self._seat_told = event.seat, False
            return []
        return self._announce(event.seat) if self.is_host else []

    def _announce(self, seat: int) -> list[Packet]:
        if seat in self._announced:
            return []
        self._announced.add(seat)
        return [Lobby(seat)]

    def _checked_ready(self, event: ReadyChecked) -> list[Packet]:
        if event.member == self.member:
            self._checked = event
        return []

    def _ready(self, event: PlayerReady) -> list[Packet]:
        if not self.is_host:
            return []
        return [*self._announce(event.seat), HostUpdate(event.seat, event.avatar, event.name)]

    def _back(self, event: PlayerBack) -> list[Packet]:
        if event.member == self.member:
            self.seat, self._seat_told = event.seat, False
        return []

    def _started(self, event: GameStarted) -> list[Packet]:
        self._seat_told = False
        return []

    def _moved(self, event: PieceMoved) -> list[Packet]:
        if self.is_host and event.end != event.start:
            return [Move(event.seat, event.end - event.start)]
        return []

    def _answered(self, event: CardAnswered) -> list[Packet]:
        if self.is_host and event.action == CardAction.TOKEN:
            return [CardUpdate(event.seat)]
        return []

    # --- the core's v1.0 packets, for this connection ---------------------------------

    def _deliver(self, event: Deliver) -> list[Packet]:
        packet = event.packet
        kind = type(packet)
        if kind is ReadyResponse:
            return self._avatars(packet)
        if kind is GameUpdate:
            return self._game(packet)
        if kind is JoinResponse:
            if packet.response == JoinAnswer.PLAYER:
                self._join_pending = True  # the avatars come next, in the same batch
                return []
            return [UnityJoinResponse(packet.response, packet.room)]
        if kind in (CardDealt, FinalResults, Reset):
            return [packet]
        return []

    def _avatars(self, packet: ReadyResponse) -> list[Packet]:
        flags = free_flags(packet.avatars)
        if self._join_pending:
            self._join_pending = False
            return [UnityJoinResponse(JoinAnswer.PLAYER, free=flags)]
        if packet.response == ReadyAnswer.UPDATE:
            return [] if self.is_host else [PlayerUpdate(flags)]
        # The answer to our own REDY: both answers, then the avatars it no longer carries.
        checked, self._checked = self._checked, None
        if checked is not None:
            answer = UnityReadyResponse(checked.name, int(checked.avatar_free))
        else:  # a seat reclaimed mid-game: v1.0's one answer stands for both
            answer = UnityReadyResponse(packet.response, int(packet.response == ReadyAnswer.ACCEPTED))
        return [answer, PlayerUpdate(flags)]

    def _game(self, packet: GameUpdate) -> list[Packet]:
        if packet.space in CARD_SPACES:
            return []  # a card waits for answers: the turn is not settled, and the CARD says the rest
        out: list[Packet] = []
        if not self.is_host and self.seat is not None and not self._seat_told:
            self._seat_told = True
            out.append(Lobby(self.seat))
        out.append(UnityGameUpdate(packet.turn))
        return out


_HANDLERS: dict[type, Callable[[UnityRenderer, Event], list[Packet]]] = {
    Deliver: UnityRenderer._deliver,
    RoomOpened: UnityRenderer._opened,
    PlayerJoined: UnityRenderer._joined,
    ReadyChecked: UnityRenderer._checked_ready,
    PlayerReady: UnityRenderer._ready,
    PlayerBack: UnityRenderer._back,
    GameStarted: UnityRenderer._started,
    PieceMoved: UnityRenderer._moved,
    CardAnswered: UnityRenderer._answered,
}


V1_0_SERVED = ServedDialect(V1_0)
UNITY_2022_SERVED = ServedDialect(
    UNITY_2022,
    renderer=UnityRenderer,
    paced=True,
    snapshots=frozenset({PlayerUpdate}),
    notices=frozenset({Land, EndTurn}),
)
SERVED: dict[str, ServedDialect] = {s.name: s for s in (V1_0_SERVED, UNITY_2022_SERVED)}


def served(dialect: str | Dialect | ServedDialect) -> ServedDialect:
    """How the server serves ``dialect`` (a name, a codec dialect or already this)."""
    if isinstance(dialect, ServedDialect):
        return dialect
    return SERVED[dialect_named(dialect).name]


# --- which connection sees which event ----------------------------------------------

# The facts that put a connection in a room, and the field that names it.
_ENTERS = {RoomOpened: "host", PlayerJoined: "member", PlayerBack: "member"}


class Renderers:
    """The connections whose packets are rendered, and the room each one is in."""

    def __init__(self) -> None:
        self._by_member: dict[MemberId, Renderer] = {}
        self._room_of: dict[MemberId, str] = {}
        self._in_room: dict[str, dict[MemberId, None]] = {}  # insertion-ordered sets

    def __bool__(self) -> bool:
        return bool(self._by_member)

    def __contains__(self, member: MemberId) -> bool:
        return member in self._by_member

    def add(self, member: MemberId, renderer: Renderer) -> None:
        self._by_member[member] = renderer

    def remove(self, member: MemberId) -> None:
        self._by_member.pop(member, None)
        self._leave(member)

    def render(self, event: Event) -> list[tuple[MemberId, Packet]]:
        """What each rendered connection is sent for ``event``, in order."""
        kind = type(event)
        by_member = self._by_member
        if kind is Deliver:
            out = []
            for member in event.to:
                renderer = by_member.get(member)
                if renderer is not None:
                    out += [(member, packet) for packet in renderer.render(event)]
            return out
        room = getattr(event, "room", None)
        if room is None:
            return []
        field = _ENTERS.get(kind)
        if field is not None:
            member = getattr(event, field)
            if member in by_member:
                self._leave(member)
                self._room_of[member] = room
                self._in_room.setdefault(room, {})[member] = None
        members = self._in_room.get(room)
        if not members:
            return []
        out = [(member, packet) for member in members for packet in by_member[member].render(event)]
        if kind is RoomClosed:
            for member in self._in_room.pop(room):
                self._room_of.pop(member, None)
        return out

    def _leave(self, member: MemberId) -> None:
        room = self._room_of.pop(member, None)
        if room is not None:
            members = self._in_room.get(room)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self._in_room[room]
