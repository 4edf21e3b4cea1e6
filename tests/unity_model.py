"""A model of the Unity client's network code, to test the server against it.

It follows ``ClientTCP.cs`` of the game's last commit (April 2022) as written, not as
meant: a loop reads up to 4,096 bytes, appends them to a buffer and handles the
packet the buffer starts with; then the whole buffer is cleared, so **everything
after the first packet of a read is lost**. A length check that fails returns
*without* clearing (the next read is appended and the packet handled then); so does
a HUPD on a player's screen, which therefore wedges the client for good. An
exception in a handler (an index out of range) is caught by the read loop, again
without clearing. REDY is built as ``PacketBuilder.Ready`` builds it: len, avatar,
name.

Like the real client it reads all the time (``run``, a task of its own), whatever
the test is doing; a test waits for what it expects with ``read_until``.

The model keeps the screen state the handlers change (the host's avatar list, the
player's avatar buttons, its own avatar) and, to judge the server, what the real
client cannot see: which packets it handled, the bytes it threw away, the errors it
would have logged, and whether it is stuck behind a packet it will never handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from lgmp.wire.codec import Decoded, Decoder, encode
from lgmp.wire.packets import Direction, JoinRequest, Packet, ReadyRequest, StartGame
from lgmp.wire.unity2022 import UNITY_2022

READ_SIZE = 4096  # ClientTCP.StartReceivingPackets: maxPacketSize
TIMEOUT = 5.0


@dataclass
class HostAvatar:
    """One ``avatarBase`` the host instantiated for a LOBY."""

    position: int  # avatarPositions index, 0-5
    name: str = "Waiting..."
    avatar: int | None = None  # avatarImages index, 0-5, once a HUPD set it


@dataclass
class UnityClient:
    stream: trio.SocketStream
    buffer: bytes = b""
    # --- what the client's fields hold -------------------------------------------------
    is_host: bool = False
    connected_room: str | None = None
    attempted_room: str | None = None
    screen: str = "main"  # "join" (the player panel) or "room" (the host panel)
    player_num_text: str = ""
    curr_avatars: list[HostAvatar] = field(default_factory=list)  # host: one per LOBY, in order
    avatar_buttons: list[bool] = field(default_factory=lambda: [True] * 6)  # player: SetActive per avatar
    my_avatar: tuple[str, int] | None = None  # player: (name, avatarImages index) once accepted
    curr_avatar_selection: int = 0
    username_input: str = ""
    error_panel: tuple[str, int] | None = None
    testing_text: str = ""
    # --- what a test can see ------------------------------------------------------------
    handled: list[Packet] = field(default_factory=list)  # each packet a read began with, once handled
    handled_bytes: list[bytes] = field(default_factory=list)
    discarded: list[bytes] = field(default_factory=list)  # bytes cleared after the handled packet
    errors: list[str] = field(default_factory=list)  # "ERROR HANDLING DATA" and Debug.LogError
    reads: int = 0
    read_times: list[float] = field(default_factory=list)
    closed: bool = False
    _changed: trio.Event = field(default_factory=trio.Event)

    @classmethod
    async def connect(cls, port: int, nursery: trio.Nursery, host: str = "127.0.0.1") -> UnityClient:
        """Connect, and start reading at once (in ``nursery``)."""
        client = cls(await trio.open_tcp_stream(host, port))
        nursery.start_soon(client.run)
        return client

    async def aclose(self) -> None:
        await self.stream.aclose()

    # --- the buttons ----------------------------------------------------------------------

    async def on_button_host(self) -> None:
        await self._send(JoinRequest("HOST"))

    async def on_connect_room(self, code: str) -> None:
        self.attempted_room = code
        await self._send(JoinRequest(code))

    def on_choose_avatar(self, selection: int) -> None:
        """An avatar button, 1-6."""
        self.curr_avatar_selection = selection - 1

    def on_username_end_edit(self, text: str) -> None:
        self.username_input = text

    async def on_submit_player(self) -> None:
        await self._send(ReadyRequest(self.username_input, self.curr_avatar_selection + 1))

    async def start_game(self) -> None:
        """The client has no Start button yet (a TODO); the host's STRT as it would send it."""
        await self._send(StartGame())

    async def _send(self, packet: Packet) -> None:
        await self.stream.send_all(encode(packet, UNITY_2022))

    # --- reading --------------------------------------------------------------------------

    async def run(self) -> None:
        """StartReceivingPackets: read, append, handle one packet; until the socket closes."""
        try:
            while not self.closed:
                try:
                    data = await self.stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self.closed = True
                else:
                    self.reads += 1
                    self.read_times.append(trio.current_time())
                    self.buffer += data
                    try:
                        self._process_packets()
                    except _UnityException as exc:
                        self.errors.append(f"ERROR HANDLING DATA: {exc}")
                self._changed.set()
                self._changed = trio.Event()
        finally:
            self.closed = True
            self._changed.set()

    async def read_until(self, done, timeout: float = TIMEOUT) -> None:
        """Wait until ``done()`` is true (or fail after ``timeout``)."""
        with trio.fail_after(timeout):
            while not done():
                if self.closed:
                    raise AssertionError("the server closed the connection")
                await self._changed.wait()
        self._taken = len(self.handled)

    async def read_packets(self, count: int, timeout: float = TIMEOUT) -> list[Packet]:
        """Wait until ``count`` more packets have been handled since the last call; those packets."""
        target = self._taken + count
        await self.read_until(lambda: len(self.handled) >= target, timeout)
        self._taken = target
        return self.handled[target - count : target]

    _taken: int = 0  # packets read_packets has returned

    async def quiet(self, wait: float = 0.3) -> None:
        """Assert that nothing more arrives for ``wait`` seconds (nor arrived unread)."""
        reads = self.reads
        await trio.sleep(wait)
        assert self.reads == reads, f"unexpected {self.handled[self._taken:]}"

    @property
    def stuck(self) -> bool:
        """A whole packet waits in the buffer that the client will never handle."""
        decoder = Decoder(Direction.SERVER_TO_CLIENT, dialect=UNITY_2022)
        decoder.receive_data(self.buffer)
        return isinstance(decoder.next_packet(), Decoded)

    # --- ClientTCP.ProcessPackets ---------------------------------------------------------

    def _process_packets(self) -> None:
        buf = self.buffer
        if len(buf) < 4:
            return
        tag = buf[:4].decode("ascii", "replace")
        if tag == "JOIN":
            self.testing_text = "JOIN"
            if len(buf) < 5:
                return
            response = buf[4]
            if response == 1:
                if len(buf) < 9:
                    return
                self.is_host = True
                self.connected_room = buf[5:9].decode("ascii", "replace")
                self.screen = "room"
            elif response == 2:
                if len(buf) < 11:
                    return
                self.connected_room = self.attempted_room
                for i in range(6):
                    self._set_button(i, buf[5 + i])
                self.screen = "join"
            else:
                reasons = {3: "This room is full", 4: "Unable to find room", 5: "This game has already started"}
                self.error_panel = (reasons.get(response, "Unknown Error"), response)
        elif tag == "LOBY":
            number = self._read_u8(4)
            self.testing_text = "LOBY"
            if self.is_host:
                self.player_num_text = f"Players in room: {number}"
                # avatarPositions[number - 1] throws for 0 or over 6, before the avatar is added.
                self.curr_avatars.append(HostAvatar(_index(number - 1, 6)))
        elif tag == "REDY":
            self.testing_text = "REDY"
            if len(buf) < 6:
                return
            user_response, avatar_response = buf[4], buf[5]
            if avatar_response == 0:
                self.curr_avatar_selection = 0
            if user_response == 1 and avatar_response == 1:
                self.my_avatar = (self.username_input, self.curr_avatar_selection)
        elif tag == "HUPD":
            self.testing_text = "HUPD"
            if not self.is_host:
                return  # without clearing: the client handles this HUPD again at every read, forever
            if len(buf) < 7:
                return
            length = buf[6]
            if len(buf) < 7 + length:
                return
            slot, avatar = buf[4], buf[5]
            name = buf[7 : 7 + length].decode("ascii", "replace")
            shown = self.curr_avatars[_index(slot - 1, len(self.curr_avatars))]
            shown.avatar = _index(avatar - 1, 6)
            shown.name = name
        elif tag == "PUPD":
            self.testing_text = "PUPD"
            if len(buf) < 10:
                return
            for i in range(6):
                self._set_button(i, buf[4 + i])
        elif tag in ("GAME", "CARD", "MOVE", "CUPD", "FINL", "RSET"):
            pass
        else:
            self.errors.append(f"Unknown identifier: {tag}")
        self._clear()

    def _set_button(self, i: int, flag: int) -> None:
        if flag == 0:
            self.avatar_buttons[i] = False
        if flag == 1:
            self.avatar_buttons[i] = True

    def _read_u8(self, offset: int) -> int:
        if offset >= len(self.buffer):
            self.errors.append("Offest outside of byte array bounds")  # Buffer.ReadUInt8 logs and returns 0
            return 0
        return self.buffer[offset]

    def _clear(self) -> None:
        """``buffer.Clear()``, and what it threw away."""
        decoder = Decoder(Direction.SERVER_TO_CLIENT, dialect=UNITY_2022)
        decoder.receive_data(self.buffer)
        found = decoder.next_packet()
        if isinstance(found, Decoded):
            self.handled.append(found.packet)
            self.handled_bytes.append(self.buffer[: found.size])
            rest = self.buffer[found.size :]
        else:  # the client handled bytes the server's dialect does not frame
            self.errors.append(f"handled bytes that are no 2022 packet: {self.buffer!r}")
            rest = b""
        if rest:
            self.discarded.append(rest)
        self.buffer = b""


class _UnityException(Exception):
    """What C# would throw (IndexOutOfRangeException): the read loop catches it."""


def _index(index: int, length: int) -> int:
    """A C# array index: negative or too large throws (Python would wrap a negative one)."""
    if not 0 <= index < length:
        raise _UnityException(f"IndexOutOfRangeException: {index} of {length}")
    return index
