"""A trio LGMP client: connect, host or join a room, ready up, and await typed packets.

Used by the bots, the terminal views, the tests and the tools. Packets arrive in
order; a helper that waits for one kind of packet keeps the others, so a later
``receive`` still sees them. The client tracks what the server has told it (room
avatars, the latest GAME, its seat) so callers need not.

It speaks v1.0 unless given another ``dialect`` (``unity-2022``: the Unity
client's). ``receive`` returns that dialect's packets as they are; the lobby
helpers (``host_room``, ``join``, ``ready``, ``free_avatars``) work in either. A
2022 player is never told who sits where: ``avatars`` then lists the avatars in
use in avatar order, and ``seat`` is known from the LOBY the server sends a player
before its first GAME.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

from ..game.rules import AVATAR_NUMBERS, SEATS
from ..wire.codec import V1_0, Decoded, Decoder, Dialect, encode
from ..wire.dialects import dialect_named
from ..wire.errors import LGMPError
from ..wire.packets import (
    ClientPacket,
    Direction,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    ServerPacket,
)
from ..wire.unity2022 import AVATAR_FREE, Lobby, PlayerUpdate, UnityJoinResponse, UnityReadyResponse

READ_SIZE = 65536


class ConnectionClosed(LGMPError):
    """The server closed the connection."""


class LGMPClient:
    def __init__(self, stream: trio.abc.Stream, *, dialect: str | Dialect = V1_0):
        self.stream = stream
        self.dialect = dialect_named(dialect)
        self._decoder = Decoder(Direction.SERVER_TO_CLIENT, dialect=self.dialect)
        self._inbox: deque[ServerPacket] = deque()  # decoded, not yet returned
        self._held: deque[ServerPacket] = deque()  # skipped over by a wait_for, returned first
        self._closed: str | None = None  # why the stream ended, once it has
        self.room: str | None = None
        self.hosting = False  # this connection created its room
        self.seat: int | None = None  # known once the server accepted our REDY
        self.avatar: int | None = None
        self.avatars: tuple[int, ...] = (0,) * len(SEATS)
        self.last_game: GameUpdate | None = None
        self.sent = 0
        self.received = 0

    @classmethod
    async def connect(cls, host: str = "127.0.0.1", port: int = 1111, *, dialect: str | Dialect = V1_0) -> LGMPClient:
        return cls(await trio.open_tcp_stream(host, port), dialect=dialect)

    async def __aenter__(self) -> LGMPClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def leave(self, timeout: float = 2.0) -> None:
        """Close as a finished client should: say we are done sending, read what the
        server still sends until it closes its side, then close. Closing with
        unread bytes would make the kernel reset the connection instead, and the
        server's next write to it fail with a broken pipe."""
        with trio.move_on_after(timeout):
            try:
                await self.stream.send_eof()
                while await self.stream.receive_some(READ_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        await self.aclose()

    # --- packets -------------------------------------------------------------------

    async def send(self, packet: ClientPacket) -> None:
        await self.stream.send_all(encode(packet, self.dialect))
        self.sent += 1

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (tests of bad input use this)."""
        await self.stream.send_all(data)

    async def receive(self) -> ServerPacket:
        """The next packet from the server. ``ConnectionClosed`` at the end of the stream;
        ``RemoteProtocolError`` once the server's bytes are not LGMP, after every good
        packet before them has been returned."""
        if self._held:
            return self._held.popleft()
        while not self._inbox:
            if self._closed is not None:
                raise ConnectionClosed(self._closed)
            if self._decoder.failed is not None:
                raise self._decoder.failed.error()
            try:
                data = await self.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionClosed(str(exc)) from exc
            if not data:
                cut = self._decoder.end_of_stream()
                self._closed = "the server closed the connection" + (f" ({cut.error()})" if cut is not None else "")
                continue
            self._decoder.receive_data(data)
            while isinstance(found := self._decoder.next_packet(), Decoded):
                self._observe(found.packet)
                self._inbox.append(found.packet)
            # Bad bytes (``found`` is BadBytes) are raised above once the inbox is empty.
        self.received += 1
        return self._inbox.popleft()

    async def wait_for(self, match: type | tuple[type, ...] | Callable[[ServerPacket], bool]) -> ServerPacket:
        """The next packet that matches; the ones skipped stay for ``receive``."""
        predicate = match if callable(match) and not isinstance(match, type) else (lambda p: isinstance(p, match))
        skipped: list[ServerPacket] = []
        try:
            while True:
                packet = await self.receive()
                if predicate(packet):
                    return packet
                skipped.append(packet)
        finally:
            self._held.extendleft(reversed(skipped))

    def _observe(self, packet: ServerPacket) -> None:
        if isinstance(packet, ReadyResponse):
            self.avatars = tuple(packet.avatars)
            if packet.response == ReadyAnswer.ACCEPTED and self.avatar is not None:
                self.seat = self.avatars.index(self.avatar) + 1 if self.avatar in self.avatars else None
        elif isinstance(packet, GameUpdate):
            self.last_game = packet
        elif isinstance(packet, (PlayerUpdate, UnityJoinResponse)) and packet.free is not None:
            self.avatars = _in_use(packet.free)
        elif isinstance(packet, Lobby) and self.room is not None and not self.hosting:
            self.seat = packet.index  # a 2022 player's own index, before its first GAME

    # --- the lobby ---------------------------------------------------------------------

    async def host_room(self) -> str:
        """Create a room; its code."""
        await self.send(JoinRequest("HOST"))
        answer = await self.wait_for((JoinResponse, UnityJoinResponse))
        if answer.response != JoinAnswer.HOST:
            raise LGMPError(f"the server refused to create a room: JOIN {answer.response}")
        self.room, self.hosting = answer.room, True
        return answer.room

    async def join(self, code: str) -> JoinAnswer:
        """Join room ``code``; the answer. When seated, the avatar list follows at once
        (in 2022, inside the answer)."""
        await self.send(JoinRequest(code))
        answer = JoinAnswer((await self.wait_for((JoinResponse, UnityJoinResponse))).response)
        if answer is JoinAnswer.PLAYER:
            self.room = code.upper()
            if self.dialect is V1_0:
                await self.wait_for(lambda p: isinstance(p, ReadyResponse) and p.response == ReadyAnswer.UPDATE)
        return answer

    async def ready(self, name: str, avatar: int) -> ReadyAnswer:
        """Ask for ``name`` and ``avatar``; the server's answer (1 = accepted)."""
        self.avatar = avatar
        await self.send(ReadyRequest(name, avatar))
        answer = await self.wait_for(lambda p: self.ready_answer(p) is not None)
        return self.ready_answer(answer)

    def ready_answer(self, packet: ServerPacket) -> ReadyAnswer | None:
        """The answer ``packet`` gives to our REDY, or None when it is no such answer.

        A 2022 answer has two codes; as one, the name's when it is refused, else
        "already taken" when the avatar is (the v1.0 code for a taken avatar)."""
        if isinstance(packet, ReadyResponse):
            return None if packet.response == ReadyAnswer.UPDATE else _answer(packet.response)
        if isinstance(packet, UnityReadyResponse):
            if packet.name_answer != ReadyAnswer.ACCEPTED:
                return _answer(packet.name_answer)
            return ReadyAnswer.ACCEPTED if packet.avatar_answer == AVATAR_FREE else ReadyAnswer.ALREADY_TAKEN
        return None

    def free_avatars(self) -> list[int]:
        return [a for a in sorted(AVATAR_NUMBERS) if a not in self.avatars]


def _in_use(free: tuple[int, ...]) -> tuple[int, ...]:
    """2022 avatar flags as an avatar list: the avatars in use, in avatar order, then zeros."""
    used = [avatar for avatar, flag in enumerate(free, start=1) if flag != AVATAR_FREE]
    return tuple(used + [0] * (len(free) - len(used)))


def _answer(code: int) -> ReadyAnswer | int:
    try:
        return ReadyAnswer(code)
    except ValueError:  # a code this client does not know: still an answer
        return code
