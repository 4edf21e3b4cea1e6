"""The trio shell around the hub: accept, read, write, timers. Nothing else.

Each connection has one task, its reader (bytes -> ``Decoder`` -> hub). Packets
are written straight to the (non-blocking) socket; only when its kernel buffer
is full do they wait in a bounded backlog, drained by a flusher task that exists
only while the backlog does. A packet for many members is encoded once.
Bad framing closes only that connection; an exception while handling one
connection's packet is logged and closes only that connection. One timer task
sleeps until the hub's next deadline (or until something earlier is scheduled)
and calls ``hub.tick``.

Limits enforced here, at the socket: max connections, a started packet must
complete in ``packet_timeout``, and the outgoing queue (``send_queue``) -- a
client that stops reading is closed rather than allowed to slow its room.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ..wire.codec import Decoder, encode
from ..wire.errors import RemoteProtocolError
from ..rooms.hub import Hub
from ..limits import Limits
from ..wire.packets import Direction
from ..rooms.room import Close, GameFinished, MemberId, Output, Send

log = logging.getLogger("lgmp.server.shell")

READ_SIZE = 65536  # one read's worth; the decoder frames it all at once
# FINL waits for its game's results to be committed (so a crash right after a
# client sees FINL loses nothing), but a stuck disk must not hold a room forever.
STORE_WAIT = 10.0
# After we decide to close a connection, its queued packets (an RSET, say) get
# this long to drain; a peer that does not read them is not waited for longer.
FLUSH_TIMEOUT = 2.0


@dataclass(eq=False, slots=True)
class _Peer:
    member: MemberId
    stream: trio.SocketStream
    fd: int
    address: str
    # What the socket has not taken yet, in order: (bytes, packet count) pairs,
    # and commit barriers (trio.Event) that hold the bytes behind them until a
    # game is stored. Empty almost always. (An empty deque is ~600 bytes; a list 56.)
    backlog: list = field(default_factory=list)
    queued: int = 0  # packets in the backlog: always the sum of its pairs' counts
    flushed: trio.Event | None = None  # while a flusher task runs: set when it is done
    flush_scope: trio.CancelScope | None = None  # the running flusher's, to stop it
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)  # the reader's
    closing: str | None = None  # why we are closing it, once we are
    gone: bool = False  # the socket is being closed: nothing may touch it any more


class LGMPServer:
    """Serves LGMP on one listening socket. ``serve`` runs until cancelled."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        seed: int | None = None,
        server_spins: bool = False,
        on_game_finished: Callable[[GameFinished, float, float], object] | None = None,
    ):
        self.limits = limits or Limits()
        self.hub = Hub(limits=self.limits, seed=seed, server_spins=server_spins)
        self._peers: dict[MemberId, _Peer] = {}
        self._timers_changed = trio.Event()
        self._timer_wakes_at = math.inf  # when the timer task will next look at the hub
        # Disconnects decided while a batch of outputs is being written wait until
        # it is written, so no peer sees a later packet before an earlier one.
        self._batch_depth = 0
        self._deferred_disconnects: list[tuple[MemberId, str]] = []
        self._on_game_finished = on_game_finished
        self._finished_send, self._finished_receive = trio.open_memory_channel(math.inf)
        self.port: int | None = None
        self.listeners: list[trio.SocketListener] = []
        self._nursery: trio.Nursery | None = None
        self._closed = trio.Event()

    @property
    def open_connections(self) -> int:
        """Sockets the server still holds (a closing one counts until it is closed)."""
        return len(self._peers)

    # --- running -----------------------------------------------------------------

    async def serve(self, host: str = "127.0.0.1", port: int = 1111, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
        self.port = self.listeners[0].socket.getsockname()[1]
        log.info("LGMP server listening on %s:%d", host, self.port)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._timer_loop)
            nursery.start_soon(self._store_loop)
            for listener in self.listeners:
                nursery.start_soon(self._accept_loop, listener)
            task_status.started(self.port)

    async def shutdown(self) -> None:
        """Stop accepting, RSET every member of every room, close them, flush the store."""
        log.info("shutting down: %d connections, %d rooms", len(self._peers), len(self.hub.rooms))
        for listener in self.listeners:
            await listener.aclose()
        self._carry_out(self.hub.shutdown())
        with trio.move_on_after(self.limits.shutdown_grace):
            while self._peers:
                await trio.sleep(0.01)
        for peer in list(self._peers.values()):
            peer.cancel.cancel()
        self._finished_send.close()
        with trio.move_on_after(self.limits.shutdown_grace + 5):
            await self._closed.wait()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # --- connections --------------------------------------------------------------

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and friends: back off, keep serving
                log.warning("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            if len(self._peers) >= self.limits.max_connections:
                log.warning("refusing a connection: at max_connections=%d", self.limits.max_connections)
                await stream.aclose()
                continue
            self._nursery.start_soon(self._run_peer, stream)

    async def _run_peer(self, stream: trio.SocketStream) -> None:
        member = self.hub.connect(trio.current_time())
        self._poke_timer()
        try:
            address = "%s:%d" % stream.socket.getpeername()[:2]
        except OSError:
            address = "?"
        peer = _Peer(member, stream, stream.socket.fileno(), address)
        self._peers[member] = peer
        log.debug("[conn %d %s] connected", member, address)
        reason = "closed by the server"  # stays so when we cancelled the reader ourselves
        try:
            with peer.cancel:
                try:
                    reason = await self._read_loop(peer)
                except Exception:  # a bug while handling this connection: it alone pays
                    log.exception("[conn %d %s] handler error", member, self.hub.describe(member))
                    reason = "internal error"
            self._close_peer(peer, reason)  # no-op if we closed it ourselves
            await self._final_flush(peer)
        finally:
            self._peers.pop(member, None)
            peer.gone = True
            if peer.flush_scope is not None:
                peer.flush_scope.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                if peer.flushed is not None:
                    await peer.flushed.wait()  # the flusher lets go of the socket first
                await stream.aclose()
            log.info("[conn %d %s] closed: %s", member, address, peer.closing)

    async def _final_flush(self, peer: _Peer) -> None:
        """Write what was queued before the close (an RSET; a FINL behind its commit), bounded."""
        if not peer.backlog:
            return
        held = any(isinstance(item, trio.Event) for item in peer.backlog)
        with trio.move_on_after(FLUSH_TIMEOUT + (STORE_WAIT if held else 0)):
            if peer.flushed is None:
                self._start_flusher(peer)
            await peer.flushed.wait()

    async def _read_loop(self, peer: _Peer) -> str:
        decoder = Decoder(Direction.CLIENT_TO_SERVER)
        stream, member = peer.stream, peer.member
        # A started packet must complete within packet_timeout of its first byte
        # (slowloris): the clock does not restart while the same packet trickles in.
        partial_at, partial_since = -1, 0.0  # stream offset of the partial packet, and when it began
        while peer.closing is None:
            try:
                if not decoder.buffered:
                    # No cancel scope while between packets: an idle connection
                    # would hold one (~0.8 KB) for nothing.
                    data = await stream.receive_some(READ_SIZE)
                else:
                    if decoder.offset != partial_at:
                        partial_at, partial_since = decoder.offset, trio.current_time()
                    data = None
                    with trio.move_on_at(partial_since + self.limits.packet_timeout):
                        data = await stream.receive_some(READ_SIZE)
                    if data is None:
                        return f"packet not completed within {self.limits.packet_timeout:g} s"
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                return f"read failed: {exc.__class__.__name__}"
            if not data:
                return "peer closed" if not decoder.buffered else "peer closed inside a packet"
            try:
                packets = decoder.feed(data)
                error = None
            except RemoteProtocolError as exc:
                packets, error = exc.packets, exc
            for packet in packets:
                if peer.closing is not None:
                    break
                self._carry_out(self.hub.receive(member, packet, trio.current_time()))
            if error is not None:
                return f"bad bytes: {error}"
        return peer.closing

    def _write(self, peer: _Peer, data: bytes, packets: int) -> None:
        """Write ``data`` (``packets`` packets) now if nothing waits before it and the
        socket takes it; else queue it for the flusher."""
        if not peer.backlog:
            try:
                sent = os.write(peer.fd, data)  # the socket is non-blocking
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._close_peer(peer, f"write failed: {exc.__class__.__name__}", flush=False)
                return
            if sent == len(data):
                return
            data = data[sent:]
        peer.queued += packets
        if peer.queued > self.limits.send_queue:
            # It stopped reading: close it rather than let it slow the room.
            log.info("[conn %d %s] send queue full", peer.member, self.hub.describe(peer.member))
            self._close_peer(peer, f"send queue full ({self.limits.send_queue} packets)", flush=False)
            return
        peer.backlog.append((data, packets))
        if peer.flushed is None:
            self._start_flusher(peer)

    def _hold(self, peer: _Peer, barrier: trio.Event) -> None:
        """Hold everything sent to ``peer`` after this point until ``barrier`` is set."""
        peer.backlog.append(barrier)
        if peer.flushed is None:
            self._start_flusher(peer)

    def _start_flusher(self, peer: _Peer) -> None:
        peer.flushed = trio.Event()
        self._nursery.start_soon(self._flush, peer)

    async def _flush(self, peer: _Peer) -> None:
        try:
            with trio.CancelScope() as scope:
                peer.flush_scope = scope
                await self._drain(peer)
        except Exception:  # a bug here must cost this connection only, never the server
            log.exception("[conn %d %s] flushing failed", peer.member, self.hub.describe(peer.member))
            peer.backlog.clear()
            peer.queued = 0
        finally:
            peer.flush_scope = None
            flushed, peer.flushed = peer.flushed, None
            flushed.set()

    async def _drain(self, peer: _Peer) -> None:
        """Write the backlog as the socket takes it, waiting at commit barriers."""
        backlog = peer.backlog
        try:
            while backlog and not peer.gone:
                head = backlog[0]
                if isinstance(head, trio.Event):  # a commit barrier: see _commit_barriers
                    with trio.move_on_after(STORE_WAIT):
                        await head.wait()
                    if backlog and backlog[0] is head:
                        del backlog[0]
                    continue
                await trio.lowlevel.wait_writable(peer.stream.socket)
                if peer.gone:
                    return
                chunk, packets = [], 0  # every pair up to the next barrier, in one write
                while backlog and not isinstance(backlog[0], trio.Event):
                    data, count = backlog.pop(0)
                    chunk.append(data)
                    packets += count
                data = b"".join(chunk)
                try:
                    sent = os.write(peer.fd, data)
                except BlockingIOError:
                    sent = 0
                if sent < len(data):
                    backlog.insert(0, (data[sent:], packets))  # they count until fully written
                else:
                    peer.queued -= packets
        except (OSError, ValueError, trio.ClosedResourceError) as exc:
            backlog.clear()
            peer.queued = 0
            self._close_peer(peer, f"write failed: {exc.__class__.__name__}", flush=False)

    def _close_peer(self, peer: _Peer, reason: str, *, flush: bool = True) -> None:
        """Close ``peer`` on our side: tell the hub, flush its backlog (bounded), close the socket."""
        if peer.closing is not None:
            return
        self._begin_close(peer, reason, flush=flush)
        if self._batch_depth:
            self._deferred_disconnects.append((peer.member, reason))
        else:
            self._disconnect(peer.member, reason)

    def _disconnect(self, member: MemberId, reason: str) -> None:
        try:
            outputs = self.hub.disconnect(member, trio.current_time(), reason)
        except Exception:  # a bug in a room's leave handling: log it, keep serving
            log.exception("[conn %d] handling the disconnect failed", member)
            return
        self._carry_out(outputs)

    @staticmethod
    def _begin_close(peer: _Peer, reason: str, *, flush: bool = True) -> None:
        peer.closing = reason
        if not flush:
            peer.backlog.clear()
            peer.queued = 0
        peer.cancel.cancel()  # the reader ends, flushes the backlog (bounded) and closes

    # --- carrying out the hub's outputs ---------------------------------------------

    def _carry_out(self, outputs: list[Output]) -> None:
        self._batch_depth += 1
        try:
            self._carry_out_batch(outputs)
        finally:
            self._batch_depth -= 1
        while self._deferred_disconnects and not self._batch_depth:
            self._disconnect(*self._deferred_disconnects.pop(0))
        self._poke_timer()

    def _carry_out_batch(self, outputs: list[Output]) -> None:
        # What each peer is sent in this batch is gathered first and written with
        # one system call (a GAME and its CARD, FINL and RSET...): writes are most
        # of the server's CPU time under load.
        outbox: dict[_Peer, list[bytes]] = {}
        barriers = self._commit_barriers(outputs)  # queued ahead of this batch's bytes
        for out in outputs:
            if isinstance(out, Send):
                data = encode(out.packet)  # once, for every recipient
                for member in out.to:
                    peer = self._peers.get(member)
                    if peer is not None and peer.closing is None:
                        items = outbox.get(peer)
                        if items is None:
                            outbox[peer] = [data]
                        else:
                            items.append(data)
            elif isinstance(out, Close):
                peer = self._peers.get(out.member)
                if peer is not None and peer.closing is None:
                    self._send_out(peer, outbox.pop(peer, ()))  # what came before the close goes first
                    if peer.closing is None:
                        self._begin_close(peer, out.reason)
            elif isinstance(out, GameFinished):
                self._store(out, barriers.get(out.room))
        for peer, items in outbox.items():
            if peer.closing is None:
                self._send_out(peer, items)

    def _send_out(self, peer: _Peer, items: list[bytes] | tuple) -> None:
        """Write a batch's packets for one peer as one chunk."""
        if items:
            self._write(peer, items[0] if len(items) == 1 else b"".join(items), len(items))

    def _store(self, finished: GameFinished, barrier: trio.Event | None) -> None:
        ended = time.time()
        started = ended - finished.record.duration
        try:
            self._finished_send.send_nowait((finished, started, ended, barrier))
        except trio.ClosedResourceError:  # shutting down: store it here and now
            log.error("[%s] game finished during shutdown; storing it now", finished.room)
            try:
                if self._on_game_finished is not None:
                    self._on_game_finished(finished, started, ended)
            except Exception:
                log.exception("[%s] storing the game's results failed", finished.room)
            finally:
                if barrier is not None:
                    barrier.set()

    def _poke_timer(self) -> None:
        deadline = self.hub.next_deadline()
        if deadline is not None and deadline < self._timer_wakes_at:
            self._timers_changed.set()  # something is due earlier than the timer task thinks

    def _commit_barriers(self, outputs: list[Output]) -> dict[str, trio.Event]:
        """For each game finished in this batch, hold its room's packets until it is stored.

        The FINL a client sees then always describes a committed game. Each of
        the room's members gets its own game's barrier in its backlog, so what
        follows waits for the store's worker thread; everyone else writes on.
        """
        if self._on_game_finished is None:
            return {}
        barriers: dict[str, trio.Event] = {}
        for out in outputs:
            if not isinstance(out, GameFinished):
                continue
            barrier = barriers[out.room] = trio.Event()
            room = self.hub.rooms.get(out.room)
            if room is not None:
                members = room.members()
            else:  # the room ended in the same batch: hold whoever this batch reaches
                members = {m for o in outputs if isinstance(o, Send) for m in o.to}
            for member in members:
                peer = self._peers.get(member)
                if peer is not None and peer.closing is None:
                    self._hold(peer, barrier)
        return barriers

    async def _timer_loop(self) -> None:
        while True:
            self._timers_changed = trio.Event()
            deadline = self.hub.next_deadline()
            self._timer_wakes_at = deadline if deadline is not None else math.inf
            with trio.move_on_at(self._timer_wakes_at):
                await self._timers_changed.wait()
            now = trio.current_time()
            if deadline is not None and now >= deadline:
                try:
                    self._carry_out(self.hub.tick(now))
                except Exception:  # a bug in a timer must not stop every other room's timers
                    log.exception("timer handling failed")

    async def _store_loop(self) -> None:
        """Hands finished games to the store in a worker thread, one at a time, in order."""
        try:
            async for finished, started, ended, barrier in self._finished_receive:
                if self._on_game_finished is None:
                    continue
                try:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(self._on_game_finished, finished, started, ended)
                except Exception:
                    log.exception("[%s] storing the game's results failed", finished.room)
                finally:
                    if barrier is not None:
                        barrier.set()
        finally:
            self._closed.set()


async def run_server(
    *,
    host: str,
    port: int,
    limits: Limits,
    seed: int | None,
    server_spins: bool,
    on_game_finished: Callable[[GameFinished, float, float], object] | None = None,
    ready: Callable[[int], object] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    server = LGMPServer(limits=limits, seed=seed, server_spins=server_spins, on_game_finished=on_game_finished)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            bound = await nursery.start(server.serve, host, port)
            if ready is not None:
                ready(bound)
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                break
        await server.shutdown()
        nursery.cancel_scope.cancel()
