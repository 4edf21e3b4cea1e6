"""Relayed connections: a client whose room another process owns, carried to that owner.

LGMP has no redirect: a client stays on the connection it opened, and after a
refused JOIN (3, 4, 5) it may send another JOIN on it. So the process that
accepted the connection relays it when the JOIN names a code whose first letter
another process owns (``lgmp.rooms.shards``):

1. The JOIN costs a flood token in this process's hub, and the JOIN clock stops
   (``Hub.join_elsewhere``).
2. Connect to the owner's relay listener (a local socket, not the public port),
   send a PROXY v2 header with the client's real address (``lgmp.server.proxy``)
   and the JOIN, and read the owner's answer through the codec.
3. Answer 1 or 2: the owner has the client. This process forgets it
   (``Hub.disconnect``) and splices bytes both ways -- the answer and what came
   after it down, the client's bytes after its JOIN up -- until either side
   closes; then it closes the other. Everything from here on (flood, strikes,
   timeouts, the send-queue bound, the room) is the owner's, applied to this
   client alone, since the owner sees one connection per client.
4. Answer 3, 4 or 5 (or no owner reachable in ``RELAY_TIMEOUT``: 4): the upstream
   is dropped and the hub gives the client that answer and a fresh JOIN window
   (``Hub.refused_elsewhere``); its next JOIN is handled afresh, here or relayed.

Bounded buffering: a splice holds at most one chunk per direction; the upstream's
receive buffer is kept small (``RELAY_BUFFER``) so that a client that stops
reading backs the owner's own send queue up -- and the owner closes it exactly as
it would a direct client. A side that closes while the other direction is stuck
writing is noticed within ``GONE_CHECK`` (the kernel's TCP state), and the stuck
bytes get ``FLUSH_TIMEOUT`` more, as a direct connection's last bytes do.

The owner's side (``open_relay_listener_connection``): its relay listener reads a
PROXY v2 header first. A connection that starts with LGMP instead is served as a
direct client of that worker (tests and benchmarks reach a chosen worker that
way); one that starts with a header is served as the client it names, and is never
relayed again (a stale routing table must not bounce a JOIN around).
"""

from __future__ import annotations

import enum
import fcntl
import logging
import os
import socket
import struct
import termios
from typing import TYPE_CHECKING

import trio

from ..rooms.names import normalize_room_code
from ..rooms.shards import Address
from ..wire.codec import BadBytes, Decoder, encode
from ..wire.packets import ClientPacket, Direction, JoinAnswer, JoinRequest, JoinResponse
from .proxy import SIGNATURE, ProxyHeaderError, build_proxy_v2, parse_proxy_v2

if TYPE_CHECKING:
    from .shell import LGMPServer, _Peer

log = logging.getLogger("lgmp.server.relay")

# An owner is a process a hop away that answers a JOIN in well under a
# millisecond; a worker being restarted is back within a second. Five seconds
# means it is gone, and the client hears 4 rather than waiting on.
RELAY_TIMEOUT = 5.0
# Bytes read from one side before they are written to the other: one read, as the
# shell's own reads. It is the most a splice ever holds per direction.
RELAY_CHUNK = 65536
# The upstream's kernel receive buffer. Small, so a client that stops reading
# backs up into the owner's send queue after a few more kilobytes than a direct
# client would, instead of hiding megabytes in an auto-tuned loopback buffer. One
# client's traffic is a few hundred bytes at a time (a FINL is at most 1,552).
RELAY_BUFFER = 8 * 1024
# While one direction cannot write (its reader stopped reading), how often we look
# whether the other side has closed meanwhile (a read would not tell: we are not reading).
GONE_CHECK = 0.25
# Once the other side has closed, the bytes still stuck get this long, like a
# direct connection's final flush (``lgmp.server.shell.FLUSH_TIMEOUT``).
FLUSH_TIMEOUT = 2.0

# Full reads in a row a pump makes before it lets other tasks run.
_READS_BEFORE_YIELD = 8

_ACCEPTED = (JoinAnswer.HOST, JoinAnswer.PLAYER)
_ANSWERS = frozenset(JoinAnswer)
# tcp_info.tcpi_state values (linux/tcp_states.h): the peer has sent FIN; or RST.
_TCP_FIN_STATES = frozenset({8, 9})  # TCP_CLOSE_WAIT, TCP_LAST_ACK
_TCP_CLOSE = 7


class Outcome(enum.Enum):
    """What became of a packet offered to the relay."""

    LOCAL = "local"  # not the relay's: the hub handles it
    ANSWERED = "answered"  # a relayed JOIN was refused (the hub queued the answer) or the client was dropped
    SPLICED = "spliced"  # the connection was relayed and has ended


class JoinWatch:
    """The raw bytes of a connection that may still be relayed, after the packets taken.

    A relayed connection must carry the client's bytes after its JOIN exactly as they
    came, including a packet only half received. The decoder hands out packets, not
    bytes, so this keeps what was read and drops each packet's size as it is taken
    (``encode(decode(b)) == b`` in the codec, so ``len(encode(packet))`` is its size).
    It exists only until the connection joins a room here.
    """

    __slots__ = ("raw",)

    def __init__(self) -> None:
        self.raw = bytearray()

    def received(self, data: bytes) -> None:
        self.raw += data

    def taken(self, packet: ClientPacket) -> None:
        del self.raw[: len(encode(packet))]

    def rest(self) -> bytes:
        """Everything received after the packets taken so far."""
        return bytes(self.raw)


class Relay:
    """The relaying half of one server: ``offer`` is called with every packet of a
    connection that may still be relayed (one with a ``JoinWatch``)."""

    def __init__(self, server: LGMPServer):
        self._server = server
        self.spliced = 0  # connections handed to an owner so far
        self.refused = 0  # relayed JOINs the owner refused (or no owner answered)

    async def offer(self, peer: _Peer, packet: ClientPacket, now: float) -> Outcome:
        watch = peer.watch
        watch.taken(packet)
        if type(packet) is not JoinRequest:
            return Outcome.LOCAL
        server = self._server
        hub, conn = server.hub, peer.conn
        if hub.shard is None or hub.room_of(conn.member) is not None:
            return Outcome.LOCAL
        route = hub.shard.route(packet.room)
        if route is None or normalize_room_code(packet.room) in hub.rooms:
            # A room still here is answered here, even when its letter has moved on
            # (a cluster member that lost a lease keeps its rooms until they close).
            return Outcome.LOCAL
        owner, address = route
        server._run(hub.join_elsewhere(conn.member, now))
        if conn.closing is not None:  # it flooded
            return Outcome.ANSWERED
        rest = watch.rest()
        upstream, answer, first_down = await self._ask(peer, packet, owner, address)
        if answer in _ACCEPTED:
            self.spliced += 1
            await self._splice(peer, upstream, owner, first_down, rest)
            return Outcome.SPLICED
        if upstream is not None:
            upstream.close()
        self.refused += 1
        server._run(hub.refused_elsewhere(conn.member, trio.current_time(), answer or JoinAnswer.ROOM_NOT_FOUND))
        return Outcome.ANSWERED

    async def _ask(self, peer: _Peer, join: JoinRequest, owner: str, address: Address):
        """Send the JOIN to its owner: (upstream socket, answer, every byte read) or
        (None, None, b"") when the owner cannot be reached or gives no answer."""
        where = f"[conn {peer.conn.member} {peer.conn.peer}] JOIN {join.room!r} for {owner} at {address[0]}:{address[1]}"
        upstream = None
        try:
            client = peer.stream.socket
            header = build_proxy_v2(client.getpeername()[:2], client.getsockname()[:2])
            with trio.move_on_after(RELAY_TIMEOUT):
                family, type_, proto, _, sockaddr = (await trio.socket.getaddrinfo(*address, type=socket.SOCK_STREAM))[0]
                upstream = trio.socket.socket(family, type_, proto)
                upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RELAY_BUFFER)
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await upstream.connect(sockaddr)
                await _send_all(upstream, header + encode(join))
                answer, received = await _read_answer(upstream)
                if answer is not None:
                    kept, upstream = upstream, None  # the caller's now
                    return kept, answer, received
                log.warning("%s: the owner closed without a JOIN answer (%d bytes)", where, len(received))
                return None, None, b""
            log.warning("%s: no answer within %g s", where, RELAY_TIMEOUT)
        except OSError as exc:
            log.warning("%s: %s", where, exc)
        finally:
            if upstream is not None:  # refused, failed or cancelled (the server is going away)
                upstream.close()
        return None, None, b""

    async def _splice(self, peer: _Peer, upstream, owner: str, first_down: bytes, first_up: bytes) -> None:
        server, conn = self._server, peer.conn
        # The owner has the client now: its room and every limit are the owner's.
        server._run(server.hub.disconnect(conn.member, trio.current_time(), f"relayed to {owner}"))
        peer.watch = None
        why = "cancelled"
        try:
            if conn.pending:  # what this process told the client before (a refused JOIN's answer) goes first
                await server._final_flush(peer)
            if conn.pending:
                why = "the client did not read"
                return
            log.debug("[conn %d %s] relayed to %s", conn.member, conn.peer, owner)
            why = await splice(peer.stream.socket, upstream, first_down, first_up)
        finally:
            upstream.close()
            conn.close(f"relay to {owner} ended: {why}")


async def splice(client, upstream, to_client: bytes, to_upstream: bytes) -> str:
    """Copy bytes both ways until either side closes (or fails); why it ended.

    ``to_client`` and ``to_upstream`` are written first: bytes already read from
    each side before the splice began.
    """
    ended: list[str] = []

    async def pump(source, sink, first: bytes, name: str, cancel_scope: trio.CancelScope) -> None:
        # Straight system calls on the non-blocking sockets, parking only when the
        # socket has nothing more: a relayed packet costs a read and a write, not
        # also a trip through the scheduler each (trio's recv checkpoints every call).
        fd, streak = source.fileno(), 0
        try:
            if first:
                await _send_all(sink, first, source)
            while True:
                try:
                    data = os.read(fd, RELAY_CHUNK)
                except BlockingIOError:
                    streak = 0
                    await trio.lowlevel.wait_readable(source)
                    continue
                if not data:
                    ended.append(f"{name} closed")
                    return
                await _send_all(sink, data, source)
                streak += 1
                if len(data) < RELAY_CHUNK:  # drained: wait for more rather than ask again
                    streak = 0
                    await trio.lowlevel.wait_readable(source)
                elif streak >= _READS_BEFORE_YIELD:  # a side that never pauses must not starve the rest
                    streak = 0
                    await trio.lowlevel.checkpoint()
        except _PeerGone as exc:
            ended.append(str(exc))
        except OSError as exc:
            ended.append(f"{name} side: {exc.__class__.__name__}")
        finally:
            cancel_scope.cancel()  # either side ending ends both

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump, client, upstream, to_upstream, "the client", nursery.cancel_scope)
        nursery.start_soon(pump, upstream, client, to_client, "the owner", nursery.cancel_scope)
    return ended[0] if ended else "cancelled"


async def _read_answer(upstream) -> tuple[JoinAnswer | None, bytes]:
    """Read until the codec has the owner's first packet: (its JOIN answer, every byte
    read), or (None, the bytes) when the owner closed first or sent anything else."""
    decoder = Decoder(Direction.SERVER_TO_CLIENT)
    received = bytearray()
    while True:
        data = await upstream.recv(RELAY_CHUNK)
        if not data:
            return None, bytes(received)
        received += data
        decoder.receive_data(data)
        item = decoder.next_packet()
        if item is None:
            continue
        if type(item) is BadBytes or type(item.packet) is not JoinResponse or item.packet.response not in _ANSWERS:
            return None, bytes(received)
        return JoinAnswer(item.packet.response), bytes(received)


class _PeerGone(Exception):
    """The side we copy from closed while the side we copy to would not take its last bytes."""


async def _send_all(sink, data: bytes, source=None) -> None:
    """Write all of ``data`` to the non-blocking ``sink``. While ``sink`` will not take
    it, look every ``GONE_CHECK`` whether ``source`` has closed; if it has, give the
    stuck bytes ``FLUSH_TIMEOUT`` more, then give up (``_PeerGone``)."""
    view = memoryview(data)
    fd = sink.fileno()
    gone_at = None
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        with trio.move_on_after(GONE_CHECK):
            await trio.lowlevel.wait_writable(sink)
            continue
        if source is None:
            continue
        state = _tcp_state(source)
        if state == _TCP_CLOSE:  # reset: the other side gave up on these bytes itself
            raise _PeerGone(f"the other side reset while {len(view)} bytes were not taken")
        if gone_at is None and state in _TCP_FIN_STATES:
            gone_at = trio.current_time()
        if gone_at is not None and trio.current_time() - gone_at >= FLUSH_TIMEOUT:
            raise _PeerGone(f"the other side closed and {len(view)} bytes were not taken within {FLUSH_TIMEOUT:g} s")


def _tcp_state(sock) -> int | None:
    """The kernel's TCP state of ``sock``: it shows a FIN or RST from the peer whether
    or not we have read up to it. None where TCP_INFO is missing (reads alone tell)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except (OSError, AttributeError):
        return None


# --- the owner's side: the relay listener ----------------------------------------------------


def close_relayed(sock) -> None:
    """Close a connection that came through a relay, so that the relay notices.

    A FIN queues behind the bytes still unsent in the kernel; when the relay stopped
    reading (its client does not read), neither would ever reach it and the relay
    would hold its client forever. So when bytes are still unsent the connection is
    reset instead (SO_LINGER 0): the relay sees the reset at once, whatever it has
    not read. Bytes the relay's kernel already received stay readable.
    """
    try:
        unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        if unsent:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, ValueError):
        pass



async def open_relay_listener_connection(stream: trio.SocketStream, timeout: float) -> tuple[Address | None, bytes, bool] | None:
    """Read what a connection to the relay listener starts with.

    Returns ``(source, first, relayed)``: the client's address from a PROXY v2 header
    (None: use the socket's own peer), the bytes after the header, and whether a header
    came; or None when the connection must be closed (a bad or incomplete header, or
    nothing within ``timeout``).
    """
    buf = b""
    with trio.move_on_after(timeout):
        while True:
            data = await stream.receive_some(RELAY_CHUNK)
            if not data:
                return None
            buf += data
            if buf[: len(SIGNATURE)] != SIGNATURE[: len(buf)]:
                return None, buf, False  # LGMP straight to this worker
            try:
                parsed = parse_proxy_v2(buf)
            except ProxyHeaderError as exc:
                log.warning("relay listener: %s: closed", exc)
                return None
            if parsed is not None:
                consumed, source = parsed
                return source, buf[consumed:], True
    log.info("relay listener: no header within %g s: closed", timeout)
    return None
