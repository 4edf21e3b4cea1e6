"""A bare trio LGMP server: transport and codec only, the yardstick for ``tools.bench``.

    python -m tools.baseline_server --port 0        # prints "baseline server on HOST:PORT"

It speaks just enough LGMP for ``tools.loadgen`` to drive it exactly as it drives
the real server -- same client process, same connections, same packet shapes:

* ``JOIN "HOST"`` -> ``JOIN 1 code``; ``JOIN code`` -> ``JOIN 2`` + ``REDY 0`` (seats
  in join order, up to six);
* ``REDY name avatar`` -> ``REDY 1`` to the sender and ``REDY 0`` to the others
  (the avatar is put in the sender's seat, nothing is checked);
* ``STRT`` -> ``GAME turn=first seat`` to the whole room;
* ``SPIN`` -> ``GAME turn=next seat, space 0`` to the whole room (the spinner
  included, as the real server does);
* anything else (``CARD``, ``CRER``) is read and dropped.

No rules, no engine, no limits, no timers, no logging: what is left is the cost of
trio and the codec, which the real server pays too. A packet for many members is
encoded once with ``codec.encode`` and sent to each. Two transports:

* ``--transport direct`` (the default; ``tools.bench``'s yardstick): one task per
  connection, the plain trio way (``lgmp.server.shell`` read like this until one
  poller task came to read every connection in a room). It waits until its socket
  is readable, reads and decodes with ``codec.Decoder``, and writes the answers
  straight to the peers' non-blocking sockets itself, starting a flusher task only
  while a socket's buffer is full: a floor for what a trio server of that shape
  costs, in CPU and in memory.
* ``--transport streams``: a reader task (trio's ``receive_some``) and a writer task
  draining a bounded memory channel per connection. Our shell worked that way
  before it wrote straight to sockets; this transport is kept, and labelled by the
  benchmark, only to compare with older figures. It is not the yardstick.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import string
import sys
from dataclasses import dataclass, field

import trio

from lgmp.wire.codec import BadBytes, Decoder, encode
from lgmp.wire.packets import (
    Direction,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Spin,
    StartGame,
)

READ_SIZE = 65536
SEND_QUEUE = 256
SEATS = 6


@dataclass(eq=False)
class _Peer:
    stream: trio.SocketStream
    fd: int
    send: trio.MemorySendChannel | None = None
    receive: trio.MemoryReceiveChannel | None = None
    room: _Room | None = None
    seat: int = 0  # 0 = the host
    pending: bytearray = field(default_factory=bytearray)  # direct transport: bytes the socket did not take
    flushing: bool = False


@dataclass(eq=False)
class _Room:
    code: str
    host: _Peer
    seats: dict[int, _Peer] = field(default_factory=dict)
    avatars: list[int] = field(default_factory=lambda: [0] * SEATS)
    board: tuple[int, ...] = (0,) * 56

    def members(self) -> list[_Peer]:
        return [self.host, *(self.seats[n] for n in sorted(self.seats))]


class BaselineServer:
    def __init__(self, transport: str = "direct"):
        if transport not in ("streams", "direct"):
            raise ValueError(transport)
        self.transport = transport
        self.rooms: dict[str, _Room] = {}
        self._codes = itertools.count()
        self.port: int | None = None
        self._nursery: trio.Nursery | None = None

    def _new_code(self) -> str:
        n = next(self._codes)
        letters = string.ascii_uppercase
        return "".join(letters[(n // 26**i) % 26] for i in range(4))

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self.port)
            await trio.serve_listeners(self._run_peer, listeners, handler_nursery=nursery)

    # --- transport ------------------------------------------------------------------------

    async def _run_peer(self, stream: trio.SocketStream) -> None:
        peer = _Peer(stream, stream.socket.fileno())
        try:
            if self.transport == "streams":
                peer.send, peer.receive = trio.open_memory_channel(SEND_QUEUE)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, peer)
                    await self._read_loop(peer)
                    peer.send.close()
            else:  # one task per connection; a flusher only while a socket buffer is full
                await self._read_loop(peer)
        finally:
            self._leave(peer)
            peer.room = None
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _read_loop(self, peer: _Peer) -> None:
        decoder = Decoder(Direction.CLIENT_TO_SERVER)
        drained = True  # the last read emptied the socket: wait for readability before the next
        while True:
            try:
                if self.transport == "streams":
                    data = await peer.stream.receive_some(READ_SIZE)
                else:  # no failed recv on an emptied socket (lgmp's shell avoids it too)
                    if drained:
                        await trio.lowlevel.wait_readable(peer.fd)
                    else:
                        await trio.lowlevel.checkpoint()
                    try:
                        data = os.read(peer.fd, READ_SIZE)
                    except BlockingIOError:
                        drained = True
                        continue
                    drained = len(data) < READ_SIZE
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            decoder.receive_data(data)
            while (found := decoder.take_packet()) is not None:  # as lgmp's Connection takes them
                if found.__class__ is BadBytes:
                    return
                self._handle(peer, found)

    async def _write_loop(self, peer: _Peer) -> None:
        async for data in peer.receive:
            try:
                await peer.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return

    async def _flush(self, peer: _Peer) -> None:
        """Direct transport: write what a full socket buffer did not take, then end."""
        sock = peer.stream.socket
        try:
            while peer.pending:
                await trio.lowlevel.wait_writable(sock)
                try:
                    n = os.write(peer.fd, peer.pending)  # trio's sockets are non-blocking
                except BlockingIOError:
                    continue
                del peer.pending[:n]
        except (OSError, trio.ClosedResourceError):
            peer.pending.clear()
        finally:
            peer.flushing = False

    def _send(self, peer: _Peer, data: bytes) -> None:
        if self.transport == "streams":
            try:
                peer.send.send_nowait(data)
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # a client that stopped reading loses packets; the loadgen never does
            return
        if peer.pending:
            peer.pending += data
            return
        try:
            n = os.write(peer.fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        if n < len(data):
            peer.pending += data[n:]
            if not peer.flushing:
                peer.flushing = True
                self._nursery.start_soon(self._flush, peer)

    def _broadcast(self, room: _Room, packet) -> None:
        data = encode(packet)  # once, for every recipient
        for member in room.members():
            self._send(member, data)

    # --- just enough protocol ----------------------------------------------------------------

    def _handle(self, peer: _Peer, packet) -> None:
        cls = type(packet)
        room = peer.room
        if cls is Spin:
            if room is None or not peer.seat:
                return
            seats = sorted(room.seats)
            following = [n for n in seats if n > peer.seat]
            turn = following[0] if following else seats[0]
            self._broadcast(room, GameUpdate(turn, 0, room.board))
        elif cls is JoinRequest:
            if room is not None:
                return
            code = packet.room.upper()
            if code == "HOST":
                code = self._new_code()
                peer.room = self.rooms[code] = _Room(code, peer)
                self._send(peer, encode(JoinResponse(JoinAnswer.HOST, code)))
                return
            room = self.rooms.get(code)
            if room is None:
                self._send(peer, encode(JoinResponse(JoinAnswer.ROOM_NOT_FOUND)))
                return
            free = [n for n in range(1, SEATS + 1) if n not in room.seats]
            if not free:
                self._send(peer, encode(JoinResponse(JoinAnswer.LOBBY_FULL)))
                return
            peer.room, peer.seat = room, free[0]
            room.seats[free[0]] = peer
            self._send(peer, encode(JoinResponse(JoinAnswer.PLAYER)))
            self._send(peer, encode(ReadyResponse(ReadyAnswer.UPDATE, tuple(room.avatars))))
        elif cls is ReadyRequest:
            if room is None or not peer.seat:
                return
            room.avatars[peer.seat - 1] = packet.avatar if 1 <= packet.avatar <= 6 else 0
            room.board = (sum(1 for a in room.avatars if a),) + (0,) * 55
            avatars = tuple(room.avatars)
            self._send(peer, encode(ReadyResponse(ReadyAnswer.ACCEPTED, avatars)))
            update = encode(ReadyResponse(ReadyAnswer.UPDATE, avatars))
            for member in room.members():
                if member is not peer:
                    self._send(member, update)
        elif cls is StartGame:
            if room is None or peer is not room.host or not room.seats:
                return
            self._broadcast(room, GameUpdate(min(room.seats), 0, room.board))
        # CARD, CRER: read and dropped

    def _leave(self, peer: _Peer) -> None:
        room = peer.room
        if room is None:
            return
        peer.room = None
        if peer is room.host:  # the room is gone; its players stay connected, in no room
            self.rooms.pop(room.code, None)
            for member in room.members():
                member.room = None
        else:
            room.seats.pop(peer.seat, None)


async def _main(host: str, port: int, transport: str) -> None:
    server = BaselineServer(transport)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            bound = await nursery.start(server.serve, host, port)
            print(f"baseline server on {host}:{bound} ({transport})", flush=True)
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.baseline_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--transport", choices=["direct", "streams"], default="direct",
                        help="direct (the yardstick): one task per connection writing straight to sockets; "
                             "streams: a writer task and a channel per connection (older figures only)")
    args = parser.parse_args(argv)
    trio.run(_main, args.host, args.port, args.transport)
    print("baseline server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
