"""PROTOCOL.md's decisions, written again from the document, for the room fuzzer to check against.

Each function reads a room's state *before* a packet is handled and says what
the protocol document says must happen: whether the packet is ignored (a
strike, section 10.2 and the rules in sections 7-8), or which answer code a
``JOIN`` (5.1) or ``REDY`` (5.2, 10.5) gets. They deliberately do not call the
room's or the engine's validation code; they only read state (seats, turn,
the waiting card, places, careers). Taken from the server as is: the
profanity word list (``lgmp.rooms.names.is_profane``), and the game's rule
data with its look-ups (``lgmp.game.rules``: which answers a card allows, a
career by field and name, its wire salary), which tests/test_rules.py checks
against RULES.md table by table.
"""

from __future__ import annotations

import string

from lgmp.rooms.names import is_profane
from lgmp.wire.packets import (
    HOST_ROOM,
    CardAnswer,
    CareerChoice,
    ClientPacket,
    JoinAnswer,
    JoinRequest,
    ReadyAnswer,
    ReadyRequest,
    Spin,
    StartGame,
)
from lgmp.rooms.room import Phase, Room
from lgmp.game.rules import (
    AVATAR_NAMES,
    SEATS,
    SPIN_NUMBERS,
    Field,
    card_answers,
    find_career,
    wire_salary,
)

NAME_CHARS = frozenset(string.ascii_letters + string.digits + "[]")
NAME_MAX = 12


def ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def ascii_fold(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def expected_join(rooms: dict[str, Room], max_rooms: int, packet: JoinRequest) -> JoinAnswer:
    """5.1: the answer to a JOIN from a connection that is in no room yet."""
    code = ascii_upper(packet.room)
    if code == HOST_ROOM:
        return JoinAnswer.HOST if len(rooms) < max_rooms else JoinAnswer.LOBBY_FULL
    room = rooms.get(code)
    if room is None:
        return JoinAnswer.ROOM_NOT_FOUND
    if room.phase is Phase.LOBBY:
        return JoinAnswer.PLAYER if len(room.seats) < len(SEATS) else JoinAnswer.LOBBY_FULL
    return JoinAnswer.PLAYER if any(s.member is None for s in room.seats.values()) else JoinAnswer.GAME_STARTED


def expected_ready(room: Room, member: int, packet: ReadyRequest) -> ReadyAnswer:
    """5.2 (lobby, checks in the order 2-6) and 10.5 (a rejoiner reclaiming a vacant seat)."""
    name, avatar = packet.name, packet.avatar
    if room.phase is Phase.GAME:
        for seat in room.seats.values():
            if seat.member is None and ascii_fold(seat.name) == ascii_fold(name) and seat.avatar == avatar:
                return ReadyAnswer.ACCEPTED
        return ReadyAnswer.ALREADY_TAKEN
    if not name:
        return ReadyAnswer.EMPTY_NAME
    if len(name) > NAME_MAX:
        return ReadyAnswer.NAME_TOO_LONG
    if any(c not in NAME_CHARS for c in name) or avatar not in AVATAR_NAMES:  # no such bulldog
        return ReadyAnswer.INVALID_CHARACTERS
    own = room.seat_of(member)
    for seat in room.seats.values():
        if seat is not own and seat.ready and (ascii_fold(seat.name) == ascii_fold(name) or seat.avatar == avatar):
            return ReadyAnswer.ALREADY_TAKEN
    if is_profane(name):
        return ReadyAnswer.PROFANE
    return ReadyAnswer.ACCEPTED


def avatars_for(room: Room, member: int) -> tuple[int, ...]:
    """10.5: the avatar array ``member`` is shown: a rejoiner sees a vacant seat's avatar as 0."""
    if room.phase is Phase.GAME and member in room.rejoiners:
        return tuple(s.avatar if (s := room.seats.get(n)) is not None and s.member is not None else 0 for n in SEATS)
    return tuple(room.seats[n].avatar if n in room.seats else 0 for n in SEATS)


def invited(room: Room | None, member: int, packet: ClientPacket, *, joins_before: int) -> bool:
    """10.1: a packet the protocol asked for, which flood control never counts: a
    connection's first JOIN, the host's STRT once every seated player is ready, a
    SPIN on the sender's turn with no card waiting, an answer to a card waiting for
    the sender, a CRER once finished and before a career is chosen."""
    if room is None:
        return isinstance(packet, JoinRequest) and joins_before == 0
    if room.phase is Phase.LOBBY:
        return (isinstance(packet, StartGame) and member == room.host and bool(room.seats)
                and all(s.ready for s in room.seats.values()))
    seat = room.seat_of(member)
    if seat is None:
        return False
    game = room.game
    player = game._players[seat.number]
    pending = game._pending
    if isinstance(packet, Spin):
        return pending is None and game.turn == seat.number and player.place is None
    if isinstance(packet, CardAnswer):
        return pending is not None and seat.number in pending.awaiting
    if isinstance(packet, CareerChoice):
        return player.place is not None and player.career is None
    return False


def refusal_strikes(room: Room | None, member: int, packet: ClientPacket, answer) -> bool:
    """10.2: refusals that are answered *and* count a strike: every refused JOIN (3, 4,
    5), and a rejoiner's REDY that matches no vacant seat (5)."""
    if isinstance(packet, JoinRequest):
        return answer not in (JoinAnswer.HOST, JoinAnswer.PLAYER)
    if isinstance(packet, ReadyRequest) and room is not None and room.phase is Phase.GAME:
        return answer is ReadyAnswer.ALREADY_TAKEN
    return False


def ignored(room: Room | None, member: int, packet: ClientPacket, *, server_spins: bool) -> str | None:
    """10.2: why ``packet`` from ``member`` is ignored (a strike), or None when it is not."""
    if room is None:
        return None if isinstance(packet, JoinRequest) else "a packet other than JOIN before JOIN"
    if isinstance(packet, JoinRequest):
        return "a second JOIN"
    is_host = member == room.host
    seat = room.seat_of(member)
    in_game = room.phase is Phase.GAME
    if isinstance(packet, ReadyRequest):
        if is_host:
            return "REDY from the host"
        if in_game and member not in room.rejoiners:
            return "REDY from a seated player during a game"
        return None
    if isinstance(packet, StartGame):
        if not is_host:
            return "STRT from a player"
        if in_game:
            return "STRT outside the lobby"
        if not room.seats:
            return "STRT with no player seated"
        if not all(s.ready for s in room.seats.values()):
            return "STRT while a seated player is not ready"
        return None
    # SPIN, CARD, CRER: only from a seated player, only in a game.
    if not in_game:
        return f"{type(packet).__name__} in the lobby"
    if seat is None:
        return f"{type(packet).__name__} from the host or a rejoiner"
    game = room.game
    player = game._players[seat.number]
    pending = game._pending
    if isinstance(packet, Spin):
        if player.place is not None:
            return "SPIN from a finished player"
        if pending is not None:
            return "SPIN while a card waits"
        if game.turn != seat.number:
            return "SPIN out of turn"
        if not server_spins and packet.number not in SPIN_NUMBERS:
            return "SPIN number outside 1-6"
        return None
    if isinstance(packet, CardAnswer):
        if pending is None or seat.number not in pending.awaiting:
            return "CARD when no card waits for this seat's answer"
        if packet.action != pending.card.action:
            return "CARD with the wrong action"
        if packet.value not in card_answers(pending.card):
            return "CARD with a value the card does not allow"
        return None
    assert isinstance(packet, CareerChoice)
    if player.place is None:
        return "CRER before finishing"
    if player.career is not None:
        return "CRER a second time"
    if packet.field not in Field._value2member_map_:
        return "CRER field outside 1-6"
    career = find_career(packet.field, packet.career)
    if career is None:
        return "CRER career not listed under its field"
    if packet.salary != wire_salary(career):
        return "CRER salary does not match"
    return None
