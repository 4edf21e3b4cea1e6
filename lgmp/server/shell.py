"""The trio shell: accept, read, write, timers. Nothing else.

Every decision is made elsewhere: what bytes mean and when a connection must
close, in its sans-IO ``Connection``; what happens in the game, in the pure
``Hub``. This module moves bytes and time between them and the operating
system:

* one poller task reads every connection (``lgmp.server.poller``: an epoll set
  of our own, each socket added once) and hands each read to the
  ``Connection`` and its packets to the hub (``_readable``); a connection has
  no task of its own while it is open, only once it closes (``_end_peer``:
  the bounded final flush, then the close). A connection whose JOIN may still
  go to another process is read by a task of its own until it is in a room
  here, and one that starts with a PROXY header until the header is read
  (``_serve_peer``);
* the hub's events are carried out in order (``_carry_out``): packets are
  encoded once per broadcast and queued on each recipient's connection, then
  written straight to the non-blocking socket, one write per peer per batch; a
  flusher task exists only while a peer's kernel buffer is full or its bytes
  wait behind a commit hold;
* connections that ended on their own side (EOF, bad bytes, a full send queue,
  a failed write) are told to the hub as inputs after the batch, never from
  inside it (``_run``);
* one timer task sleeps until the hub's next deadline; a packet that started
  and did not complete times out on the poller's own deadlines;
* listeners are accepted from in bursts (``lgmp.server.accept``);
* a finished game's members hold what is queued after it (a commit hold) and
  the game goes to ``lgmp.server.commits``, which stores games in a worker
  thread, one at a time, retrying for as long as it takes; the hold is
  released (``_release``) only once the game is durable;
* with a shard plan (``shard``: several processes share the code letters), a
  JOIN for another process's letter is handed to ``lgmp.server.relay`` instead
  of the hub, and the relay listener takes connections relayed from the others.

Accepting stays cheap under attack: on a public port the hub's ``admit`` (a
dictionary look-up per source address, or evicting the oldest connection in no
room when the server is full) decides before any task exists, and a refused
socket is closed at once, its log lines rate-limited. A connection that starts
with a PROXY v2 header (the relay listener; the main port with
``proxy_protocol``) is admitted once the header names its client, whose address
is then the connection's source.

Each listening port has a dialect (``lgmp.server.dialects``); rooms are shared
across ports. A connection that speaks v1.0 is sent the core's packets as they
are; one that speaks another dialect is sent what its renderer makes of the
events that concern it, one paced packet per write if its clients need that.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial

import trio

from ..limits import Limits
from ..rooms.events import CloseMember, Deliver, Event, StoreGame
from ..rooms.hub import Hub
from ..rooms.sources import source_key
from ..rooms.shards import ShardPlan
from ..wire.codec import encode
from ..wire.packets import Spin
from .accept import Acceptor
from .commits import Committer, OnGameFinished
from .poller import ReadPoller
from .connection import Connection
from .dialects import V1_0_SERVED, Renderers, ServedDialect, served
from .proxy import ProxyHeaderError, parse_proxy_v2
from .stats import ShellStats
from .relay import JoinWatch, Outcome, Relay, close_relayed, open_relay_listener_connection

log = logging.getLogger("lgmp.server")

READ_SIZE = 65536  # one read's worth; the decoder frames it all at once
# FINL waits for its game's results to be durable, however long that takes. A
# connection the core is closing (its host left, say) whose FINL still waits
# behind a commit is given this long for it; then it closes without the FINL,
# never with a FINL for a game that is not stored.
STORE_WAIT = 10.0
# Sockets the server has closed but not yet let go of (flushing an RSET, say), and
# sockets still reading their PROXY header, may exceed max_connections by this
# many; beyond it new sockets are refused.
CLOSING_SLACK = 256
# Refused connections are logged at most once per this many seconds, with a
# count: refusing must stay cheap when one address opens thousands a second.
REFUSAL_LOG_EVERY = 1.0
# After we decide to close a connection, its queued packets (an RSET, say) get
# this long to drain; a peer that does not read them is not waited for longer.
FLUSH_TIMEOUT = 2.0
# Accept errors that mean "out of descriptors or memory for now": back off and
# go on serving, as trio's serve_listeners does. Anything else is a real error.
_CAPACITY_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_BACKOFF = 0.1  # seconds: long enough for a closing socket to free its descriptor

class _Peer:
    """A connection's socket-side half: what the shell needs to move its bytes."""

    __slots__ = ("conn", "stream", "fd", "reader", "ending", "flusher", "wake", "watch", "relayed", "served",
                 "rendered", "partial_deadline")

    def __init__(self, conn: Connection, stream: trio.SocketStream, served: ServedDialect = V1_0_SERVED):
        self.conn = conn
        self.stream = stream
        self.fd = stream.socket.fileno()
        # While a task of its own reads it (a JOIN that may be relayed): cancelled to stop
        # it once the connection closes. None while the poller reads it.
        self.reader: trio.CancelScope | None = None
        self.ending = False  # its flush-and-close has begun
        self.flusher: trio.Event | None = None  # while a flusher task runs: set when it ends
        self.wake: trio.Event | None = None  # set when a hold is released under a waiting flusher
        self.watch: JoinWatch | None = None  # while a JOIN of this connection may still be relayed
        self.relayed = False  # it came through another process's relay
        self.served = served  # the dialect its listener speaks
        self.rendered = served.renderer is not None  # sent its renderer's packets, not the core's
        self.partial_deadline: float | None = None  # the poller times out a started packet then


class LGMPServer:
    """Serves LGMP on one listening socket. ``serve`` runs until cancelled."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        seed: int | None = None,
        server_spins: bool = False,
        on_game_finished: OnGameFinished | None = None,
        dialect: str = "v1.0",
        also_listen: Sequence[tuple[int, str]] = (),
        shard: ShardPlan | None = None,
    ):
        """``dialect``: what the main port speaks; ``also_listen``: more (port, dialect)
        listeners on the same host, sharing the rooms."""
        self.limits = limits or Limits()
        self.dialect = served(dialect)
        self.also_listen = [(port, served(name)) for port, name in also_listen]
        if shard is not None and (self.dialect.renderer is not None or self.also_listen):
            raise ValueError("other dialects are served by a single process: not with a shard plan (--workers, --cluster)")
        #: (port, dialect name) of every listening port once serving, the main one first.
        self.listening: list[tuple[int, str]] = []
        self._renderers = Renderers()  # connections whose packets are rendered in another dialect
        # The play facts are built only for readers: a connection rendered in another
        # dialect, or an observer (``watch``). Without them a game's packets cost less.
        rendered = any(d.renderer is not None for d in (self.dialect, *(d for _, d in self.also_listen)))
        self.hub = Hub(limits=self.limits, seed=seed, server_spins=server_spins, shard=shard, facts=rendered)
        self.relay = Relay(self)
        self.relay_listeners: list[trio.SocketListener] = []
        self._peers: dict[int, _Peer] = {}
        # Reads every open connection (but those a task of their own reads first). Its
        # callbacks' batches leave the timer to be looked at once per round.
        self._poller = ReadPoller(after_round=self._poke_timer)
        self._lost: list[_Peer] = []  # ended on their own side; the hub is told after the batch
        self._timers_changed = trio.Event()
        self._timer_wakes_at = math.inf  # when the timer task will next look at the hub
        self._holds = 0  # commit-hold tokens handed out
        self.port: int | None = None
        self.listeners: list[trio.SocketListener] = []
        self._nursery: trio.Nursery | None = None
        self._observers: list[Callable[[list[Event], float], object]] = []
        self.stats = ShellStats()  # counters only the shell sees (connections, packets, timings)
        # Finished games go to the store in order; their FINL waits for it (``_store``).
        self._committer = Committer(on_game_finished, stats=self.stats, release=self._release)
        self._handshakes = 0  # sockets reading their PROXY header: not in the hub yet
        self._refused = 0  # refused since the last log line about it
        self._refusal_log_at = -math.inf

    def watch(self, observer: Callable[[list[Event], float], object]) -> None:
        """Call ``observer(events, now)`` with every batch of the core's events, before
        they are carried out. It runs inside the server's loop: it must be quick and
        must not block (a slow consumer keeps its own bounded queue). Call it before
        serving: rooms made before it do not build the play facts."""
        self._observers.append(observer)
        self.hub.facts = True

    @property
    def open_connections(self) -> int:
        """Sockets the server still holds (a closing one counts until it is closed)."""
        return len(self._peers)

    def close_room(self, code: str, reason: str = "closed by an operator") -> bool:
        """Close room ``code`` as if its host left: RSET to every member, then close them.
        False when there is no such room."""
        events = self.hub.close_room(code, reason)
        self._run(events)
        return bool(events)

    # --- running -----------------------------------------------------------------

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 1111,
        *,
        listeners: list[trio.SocketListener] | None = None,
        relay_listeners: list[trio.SocketListener] = (),
        proxy_protocol: bool = False,
        task_status=trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on ``host:port``, or on ``listeners`` already open (a worker's share of
        the public port), and on each ``also_listen`` port with its dialect;
        ``relay_listeners`` take connections relayed by other processes.
        ``proxy_protocol``: every connection to the main port starts with a PROXY v2
        header from a relay or load balancer, naming the client's real address."""
        ports: list[tuple[list[trio.SocketListener], ServedDialect]] = []
        try:
            main = listeners if listeners is not None else await trio.open_tcp_listeners(port, host=host, backlog=4096)
            ports.append((main, self.dialect))
            for number, dialect in self.also_listen:
                ports.append((await trio.open_tcp_listeners(number, host=host, backlog=4096), dialect))
        except BaseException:
            for opened, _ in ports[1 if listeners is not None else 0 :]:
                for listener in opened:
                    await listener.aclose()
            raise
        self.listeners = [listener for opened, _ in ports for listener in opened]
        self.relay_listeners = list(relay_listeners)
        self.port = ports[0][0][0].socket.getsockname()[1]
        self.listening = [(opened[0].socket.getsockname()[1], dialect.name) for opened, dialect in ports]
        for bound, name in self.listening:
            log.info("LGMP server listening on %s:%d (%s)", host, bound, name)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._poller.run)
                nursery.start_soon(self._timer_loop)
                nursery.start_soon(self._committer.run)
                for index, (opened, dialect) in enumerate(ports):
                    # None: the socket's peer is the client, admitted as it is accepted.
                    serve = partial(self._serve_proxied, dialect=dialect) if proxy_protocol and index == 0 else None
                    for listener in opened:
                        nursery.start_soon(self._accept_loop, listener, serve, dialect)
                for listener in self.relay_listeners:
                    nursery.start_soon(self._accept_loop, listener, self._serve_relayed)
                task_status.started(self.port)
        finally:
            self._close_what_is_left()

    def _close_what_is_left(self) -> None:
        """Serving ended without ``shutdown`` (cancelled, or a bug): connections the
        poller read have no task to close them, so close their sockets here."""
        for peer in list(self._peers.values()):
            self._poller.remove(peer.fd)
            peer.stream.socket.close()
        self._peers.clear()

    async def shutdown(self) -> None:
        """Stop accepting, RSET every member of every room, close them, flush the store."""
        log.info("shutting down: %d connections, %d rooms", len(self._peers), len(self.hub.rooms))
        for listener in self.listeners + self.relay_listeners:
            await listener.aclose()
        self._run(self.hub.shutdown())
        with trio.move_on_after(self.limits.shutdown_grace):
            while self._peers:
                await trio.sleep(0.01)
        for peer in list(self._peers.values()):
            self._stop_reading(peer)
        self._committer.close()
        with trio.move_on_after(self.limits.shutdown_grace + 5) as waiting:
            await self._committer.done.wait()
        if waiting.cancelled_caught:
            log.error("shutting down with finished games whose results could not be stored; their FINL was never sent")
        # The store's last commits released FINLs (and the RSETs behind them): give
        # them the same bounded time to drain before everything is cancelled.
        with trio.move_on_after(self.limits.shutdown_grace):
            while self._peers:
                await trio.sleep(0.01)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # --- connections --------------------------------------------------------------

    async def _accept_loop(self, listener: trio.SocketListener, serve: Callable | None,
                           dialect: ServedDialect = V1_0_SERVED) -> None:
        """Accept connections, a burst per wake-up (``lgmp.server.accept``). ``serve``
        None: the socket's peer is the client, admitted (or refused) here and now;
        else ``serve(stream)`` reads a PROXY header first."""
        acceptor = Acceptor(listener)
        try:
            while True:
                try:
                    accepted = await acceptor.accept()
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return
                except OSError as exc:
                    if exc.errno not in _CAPACITY_ERRORS:
                        raise
                    log.warning("accept failed: %s; retrying in %g s", exc, _ACCEPT_BACKOFF)
                    await trio.sleep(_ACCEPT_BACKOFF)
                    continue
                for stream, address in accepted:
                    self._accepted(stream, address, serve, dialect)
        finally:
            acceptor.close()

    def _accepted(self, stream: trio.SocketStream, address, serve: Callable | None, dialect: ServedDialect) -> None:
        if len(self._peers) + self._handshakes >= self.limits.max_connections + CLOSING_SLACK:
            self._refuse(stream, "%s:%s" % tuple(address[:2]), f"{len(self._peers)} sockets open or closing")
            return
        if serve is not None:
            self._handshakes += 1
            self._nursery.start_soon(serve, stream)
            return
        host, port = address[:2]
        peer = self._open(stream, host, "%s:%d" % (host, port), dialect)
        if peer is None:
            return
        if self.hub.shard is not None:  # its JOIN may be another process's: a task reads it first
            # Its scope exists from now on: stopping it before the task starts (an
            # eviction by the next socket of this burst, a shutdown) cancels that task,
            # which then ends the connection -- once.
            peer.reader = trio.CancelScope()
            self._nursery.start_soon(self._serve_peer, peer)
        else:  # no task at all: the poller reads it, a task flushes and closes it at the end
            self._begin(peer, relayable=True)
            self._adopt(peer)

    def _open(self, stream: trio.SocketStream, host: str, address: str, dialect: ServedDialect) -> _Peer | None:
        """Ask the hub whether a connection from ``host`` may open; if so, its peer.
        Synchronous, so nothing else runs between the hub's answer and its ``connect``."""
        source = source_key(host)
        now = trio.current_time()
        refusal, events = self.hub.admit(now, source=source)
        if refusal is not None:
            self._refuse(stream, address, refusal)
            return None
        member = self.hub.connect(now, source=source)
        gap = self.limits.unity_packet_gap if dialect.paced else 0.0
        conn = Connection(member, limits=self.limits, peer=address, dialect=dialect.wire, gap=gap)
        peer = self._peers[member] = _Peer(conn, stream, dialect)
        if dialect.renderer is not None:
            self._renderers.add(member, dialect.renderer(member))
        self._run(events)  # an eviction that made room, if any
        return peer

    def _refuse(self, stream: trio.SocketStream, address: str, reason: str) -> None:
        """Close a socket we will not serve, at once; say so at most every REFUSAL_LOG_EVERY."""
        stream.socket.close()
        self._refused += 1
        now = trio.current_time()
        if now >= self._refusal_log_at:
            log.warning("refused %d connection(s) since the last such line; latest %s: %s", self._refused, address, reason)
            self._refused, self._refusal_log_at = 0, now + REFUSAL_LOG_EVERY

    async def _serve_proxied(self, stream: trio.SocketStream, *, dialect: ServedDialect = V1_0_SERVED) -> None:
        """A connection to the main port with ``proxy_protocol``: the PROXY v2 header
        (within ``join_timeout``) names the client; then it is served as any other."""
        buffer, parsed = b"", None
        try:
            try:
                with trio.move_on_after(self.limits.join_timeout):
                    while (parsed := parse_proxy_v2(buffer)) is None:
                        data = await stream.receive_some(READ_SIZE)
                        if not data:
                            raise ProxyHeaderError("closed before its PROXY header was complete")
                        buffer += data
                if parsed is None:
                    raise ProxyHeaderError(f"no PROXY header within {self.limits.join_timeout:g} s")
            except (ProxyHeaderError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.info("[-] closing a connection on the PROXY listener: %s", exc)
                stream.socket.close()
                return
        finally:
            self._handshakes -= 1
        consumed, client = parsed
        await self._serve_connection(stream, source=client, first=buffer[consumed:], dialect=dialect)

    async def _serve_relayed(self, stream: trio.SocketStream) -> None:
        """A connection to the relay listener: a client relayed by another process (a
        PROXY v2 header names it), or a client that came straight to this one."""
        try:
            try:
                opened = await open_relay_listener_connection(stream, self.limits.join_timeout)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                opened = None
            except Exception:  # a bug here must cost this connection only
                log.exception("relay listener: reading a connection's start failed")
                opened = None
        finally:
            self._handshakes -= 1
        if opened is None:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.aclose()
            return
        source, first, relayed = opened
        await self._serve_connection(stream, source=source, first=first, relayable=not relayed)

    async def _serve_connection(
        self,
        stream: trio.SocketStream,
        *,
        source: tuple[str, int] | None = None,
        first: bytes = b"",
        relayable: bool = True,
        dialect: ServedDialect = V1_0_SERVED,
    ) -> None:
        """Admit a connection whose client ``source`` names (None: the socket's peer),
        then serve it. ``first``: bytes already read after its header."""
        try:
            host, port = source or stream.socket.getpeername()[:2]
        except OSError:
            stream.socket.close()
            return
        peer = self._open(stream, host, "%s:%d" % (host, port), dialect)
        if peer is not None:
            await self._serve_peer(peer, first, relayable)

    def _begin(self, peer: _Peer, *, relayable: bool) -> None:
        self.stats.opened += 1
        if relayable and self.hub.shard is not None:
            peer.watch = JoinWatch()
        peer.relayed = not relayable
        self._poke_timer()
        log.debug("[conn %d %s] connected", peer.conn.member, peer.conn.peer)

    async def _serve_peer(self, peer: _Peer, first: bytes = b"", relayable: bool = True) -> None:
        """A connection that needs a task to begin with -- its JOIN may be relayed, or
        bytes came with its header: read it here until the poller can (``_read``);
        if it closes first, flush and close it."""
        self._begin(peer, relayable=relayable)
        conn = peer.conn
        if peer.reader is None:
            peer.reader = trio.CancelScope()
        with peer.reader:
            try:
                if await self._read(peer, first):
                    peer.reader = None  # the poller reads it now; this task is not needed
                    return
            except Exception:  # a bug while handling this connection: it alone pays
                log.exception("[conn %d %s] handler error", conn.member, self.hub.describe(conn.member))
                self._lose(peer, "internal error")
        peer.reader = None
        peer.ending = True
        await self._end_peer(peer)

    def _adopt(self, peer: _Peer) -> None:
        """From now on the poller reads the connection."""
        self._poller.add(peer.fd, partial(self._readable, peer))
        self._watch_partial(peer)

    def _stop_reading(self, peer: _Peer) -> None:
        """The connection is closing: stop reading it, then flush and close it (bounded)."""
        if peer.reader is not None:  # its own task reads it: that task goes on to the end
            peer.reader.cancel()
        elif not peer.ending:
            peer.ending = True
            self._poller.remove(peer.fd)
            self._nursery.start_soon(self._end_peer, peer)

    async def _end_peer(self, peer: _Peer) -> None:
        """Flush what is queued (bounded) and close: the end of every connection."""
        conn, stream, member, address = peer.conn, peer.stream, peer.conn.member, peer.conn.peer
        try:
            if conn.closing is None:  # stopped from outside: the server is going away
                self._lose(peer, "closed by the server")
            self._run([])  # tell the hub, if it does not know yet
            await self._final_flush(peer)
        finally:
            self._peers.pop(member, None)
            self._renderers.remove(member)
            self.stats.connection_closed(conn.closing)
            if peer.flusher is not None:
                # The bounded flush is over: what is still queued (behind a hold, say)
                # will never be written, and a flusher waiting at a hold must not
                # outlive its socket.
                conn.send_failed("the connection closed first")
                if peer.wake is not None:
                    peer.wake.set()
            self._poller.remove(peer.fd)  # before its descriptor is closed and reused
            with trio.CancelScope(shield=True):
                with trio.move_on_after(1):
                    if peer.flusher is not None:
                        await peer.flusher.wait()  # the flusher lets go of the socket first
                if peer.relayed:
                    close_relayed(stream.socket)
                await stream.aclose()  # even when the flusher did not end in time
            log.info("[conn %d %s] closed: %s", member, address, conn.closing)

    async def _read(self, peer: _Peer, data: bytes = b"") -> bool:
        """Read the connection while its task must (a JOIN that may be relayed to another
        process, since offering it waits), then hand it to the poller: True once the
        poller reads it, False if it closed first. ``data``: bytes already read (after
        a relay listener's header)."""
        conn = peer.conn
        if peer.watch is not None:
            await self._read_relayable(peer, data)
        elif data:
            self._received(peer, data, trio.current_time())
        if conn.closing is not None:
            return False
        self._adopt(peer)
        return True

    def _readable(self, peer: _Peer) -> None:
        """The poller found the socket readable: read once, hand over what came."""
        conn = peer.conn
        if conn.closing is not None:  # closed meanwhile: its task is ending
            self._poller.remove(peer.fd)
            return
        try:
            try:
                data = os.read(peer.fd, READ_SIZE)  # trio's sockets are non-blocking
            except BlockingIOError:  # woken with nothing to read after all
                return
            except OSError as exc:  # a reset peer...
                self._lose(peer, f"read failed: {exc.__class__.__name__}")
            else:
                self._received(peer, data, trio.current_time())
                if conn.closing is None:
                    self._watch_partial(peer)
        except Exception:  # a bug while handling this connection: it alone pays
            log.exception("[conn %d %s] handler error", conn.member, self.hub.describe(conn.member))
            self._lose(peer, "internal error")
        if conn.closing is not None:
            # Ended here (lost): the hub hears of it now, and _stop_reading takes the
            # socket out of the poller and starts the task that flushes and closes it.
            # (Closed by the core while handling this read: that was done already.)
            self._run([])

    def _watch_partial(self, peer: _Peer) -> None:
        """A packet has started but not completed: time it out (slowloris)."""
        deadline = peer.conn.read_deadline()
        if deadline is not None and deadline != peer.partial_deadline:
            peer.partial_deadline = deadline
            self._poller.call_at(peer.fd, deadline, partial(self._partial_expired, peer))

    def _partial_expired(self, peer: _Peer, now: float) -> None:
        conn = peer.conn
        peer.partial_deadline = None
        try:
            conn.handle_timer(now)
            if conn.closing is None:
                self._watch_partial(peer)  # a later packet started since: its own deadline
                return
        except Exception:  # a bug: this connection alone pays
            log.exception("[conn %d %s] packet timer error", conn.member, self.hub.describe(conn.member))
            self._lose(peer, "internal error")
        self._poller.remove(peer.fd)
        self._note_lost(peer)
        self._run([])

    def _received(self, peer: _Peer, data: bytes, now: float) -> None:
        """Bytes read from a connection in a room (or not relayable): its packets to the hub."""
        peer.conn.receive_data(data, now)
        self._take_packets(peer, now)

    def _take_packets(self, peer: _Peer, now: float) -> None:
        """Every whole packet the connection has received, to the hub, in order."""
        conn, hub, member = peer.conn, self.hub, peer.conn.member
        notices = peer.served.notices
        received = self.stats.received
        while (packet := conn.next_packet()) is not None:
            kind = type(packet)
            received[kind] += 1
            if kind in notices:  # read, and nothing to do but count it
                self._run(hub.notice(member, now))
            elif kind is Spin:  # time what the server adds to SPIN->GAME, up to the written GAME
                started = time.perf_counter()
                self._run(hub.receive(member, packet, now))
                self.stats.spin_seconds.observe(time.perf_counter() - started)
            else:
                self._run(hub.receive(member, packet, now))
        self._note_lost(peer)

    async def _read_relayable(self, peer: _Peer, data: bytes = b"") -> None:
        """Read here while a JOIN may go to another process; return once this
        connection is in a room here (or closing)."""
        conn, hub, member = peer.conn, self.hub, peer.conn.member
        fd = peer.fd
        # A read that did not fill READ_SIZE emptied the socket, so the next one
        # would fail (EAGAIN) until the peer sends again: wait for readability
        # first instead. Only after a full read is there likely more to take now.
        drained = True
        while conn.closing is None and peer.watch is not None:
            if not data:
                deadline = conn.read_deadline()
                try:
                    timed_out = True
                    with trio.move_on_at(math.inf if deadline is None else deadline):
                        await (trio.lowlevel.wait_readable(fd) if drained else trio.lowlevel.checkpoint())
                        timed_out = False
                    if timed_out:
                        conn.handle_timer(trio.current_time())
                        self._note_lost(peer)
                        continue
                    try:
                        data = os.read(fd, READ_SIZE)
                    except BlockingIOError:
                        drained = True
                        continue
                    except OSError as exc:
                        raise trio.BrokenResourceError from exc
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._lose(peer, f"read failed: {exc.__class__.__name__}")
                    return
                drained = len(data) < READ_SIZE
            now = trio.current_time()
            conn.receive_data(data, now)
            peer.watch.received(data)
            data = b""
            # Until it is in a room here, every packet but a notice is offered to the relay.
            while peer.watch is not None and (packet := conn.next_packet()) is not None:
                self.stats.received[type(packet)] += 1
                if type(packet) in peer.served.notices:
                    self._run(hub.notice(member, now))
                    continue
                outcome = await self.relay.offer(peer, packet, now)
                if outcome is Outcome.SPLICED:
                    return
                if outcome is Outcome.ANSWERED:
                    now = trio.current_time()
                    continue
                self._run(hub.receive(member, packet, now))
                if hub.room_of(member) is not None:
                    peer.watch = None  # in a room here: nothing more to relay
            if peer.watch is None:
                self._take_packets(peer, now)  # what came behind its JOIN in the same read
            self._note_lost(peer)
        self._run([])

    async def _final_flush(self, peer: _Peer) -> None:
        """Write what was queued before the close (an RSET; a FINL behind its commit), bounded."""
        conn = peer.conn
        if not conn.pending:
            return
        with trio.move_on_after(FLUSH_TIMEOUT + (STORE_WAIT if conn.held else 0)):
            if peer.flusher is None:
                self._start_flusher(peer)
            await peer.flusher.wait()

    def _lose(self, peer: _Peer, reason: str) -> None:
        peer.conn.abort(reason)
        self._note_lost(peer)

    def _note_lost(self, peer: _Peer) -> None:
        if peer.conn.lost and peer not in self._lost:
            self._lost.append(peer)

    # --- carrying out the hub's events ----------------------------------------------

    def _run(self, events: list[Event]) -> None:
        """Carry out ``events``, then tell the hub of every connection that ended on
        its own side meanwhile (which may bring more events), until none is left."""
        self._carry_out(events)
        while self._lost:
            peer = self._lost.pop(0)
            self._stop_reading(peer)  # it flushes and closes
            try:
                events = self.hub.disconnect(peer.conn.member, trio.current_time(), peer.conn.closing)
            except Exception:  # a bug in a room's leave handling: log it, keep serving
                log.exception("[conn %d] handling the disconnect failed", peer.conn.member)
                continue
            self._carry_out(events)
        if not self._poller.in_round:  # else once, after the round (the timer task cannot run before)
            self._poke_timer()

    def _carry_out(self, events: list[Event]) -> None:
        if self._observers and events:
            now = trio.current_time()
            for observer in self._observers:
                try:
                    observer(events, now)
                except Exception:  # a broken observer must not stop the game
                    log.exception("an event observer failed")
        # What each peer is sent in this batch is queued first and written with
        # one system call (a GAME and its CARD, FINL and RSET...): writes are
        # most of the server's CPU time under load.
        touched: dict[_Peer, None] = {}
        peers = self._peers
        renderers = self._renderers
        rendering = bool(renderers)  # some connection speaks another dialect
        sent = self.stats.sent
        for event in events:
            kind = type(event)
            if kind is Deliver:
                data = encode(event.packet)  # once, for every recipient
                queued = 0
                for member in event.to:
                    peer = peers.get(member)
                    if peer is not None and peer.conn.closing is None and not peer.rendered:
                        peer.conn.send(data)
                        touched[peer] = None
                        queued += 1
                sent[type(event.packet)] += queued
            elif kind is CloseMember:
                peer = peers.get(event.member)
                if peer is not None and peer.conn.closing is None:
                    peer.conn.close(event.reason)
                    self._stop_reading(peer)  # it flushes what is queued (bounded) and closes
                    touched[peer] = None
            elif kind is StoreGame:
                self._store(event)
            if rendering:
                self._render(event, touched)
        for peer in touched:
            conn = peer.conn
            if conn.lost or peer.flusher is not None:
                self._write(peer)
                continue
            data = conn.take()  # the common case: everything queued, straight to the socket
            if data is None:  # paced, or something waits behind a commit hold
                self._write(peer)
            elif data:
                try:
                    written = os.write(peer.fd, data)
                except BlockingIOError:
                    written = 0
                except OSError as exc:
                    conn.put_back(0)
                    conn.send_failed(exc.__class__.__name__)
                    self._note_lost(peer)
                    continue
                if written < len(data):  # the kernel buffer is full: a flusher writes the rest
                    conn.put_back(written)
                    self._start_flusher(peer)

    def _render(self, event: Event, touched: dict[_Peer, None]) -> None:
        """Queue what ``event`` means to each connection of another dialect that it concerns."""
        for member, packet in self._renderers.render(event):
            peer = self._peers.get(member)
            if peer is not None and peer.conn.closing is None:
                dialect, kind = peer.served, type(packet)
                snapshot = kind if kind in dialect.snapshots else None
                peer.conn.send(encode(packet, dialect.wire), snapshot=snapshot)
                self.stats.sent[kind] += 1
                touched[peer] = None

    def _write(self, peer: _Peer) -> None:
        """Write what the connection has ready, straight to the non-blocking socket;
        leave the rest to a flusher task."""
        conn = peer.conn
        if conn.lost:
            self._note_lost(peer)
            return
        if peer.flusher is not None:
            return  # it writes what is queued, in order
        if not conn.wants_write:  # nothing, or only what waits behind a hold
            if conn.pending:
                self._start_flusher(peer)
            return
        now = trio.current_time() if conn.paced else None
        data = conn.data_to_send(now)
        if data:  # (a paced packet may have to wait for its gap)
            try:
                sent = os.write(peer.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                conn.send_failed(exc.__class__.__name__)
                self._note_lost(peer)
                return
            conn.bytes_sent(sent, now)
        if conn.pending:
            self._start_flusher(peer)

    def _start_flusher(self, peer: _Peer) -> None:
        peer.flusher = trio.Event()
        self._nursery.start_soon(self._flush, peer)

    async def _flush(self, peer: _Peer) -> None:
        """Write the connection's queue as the socket takes it, waiting at commit holds."""
        conn = peer.conn
        try:
            while conn.pending:
                if conn.held:
                    peer.wake = trio.Event()
                    await peer.wake.wait()
                    continue
                due = conn.send_deadline()  # paced: the next packet waits for its gap
                if due is not None and due > trio.current_time():
                    await trio.sleep_until(due)
                    continue
                await trio.lowlevel.wait_writable(peer.stream.socket)
                now = trio.current_time() if conn.paced else None
                data = conn.data_to_send(now)
                if not data:
                    continue
                try:
                    sent = os.write(peer.fd, data)
                except BlockingIOError:
                    sent = 0
                conn.bytes_sent(sent, now)
        except (OSError, ValueError, trio.ClosedResourceError) as exc:
            conn.send_failed(exc.__class__.__name__)
            self._note_lost(peer)
            self._run([])
        except Exception:  # a bug here must cost this connection only, never the server
            log.exception("[conn %d %s] flushing failed", conn.member, self.hub.describe(conn.member))
            conn.send_failed("internal error")
            self._note_lost(peer)
            self._run([])
        finally:
            flusher, peer.flusher, peer.wake = peer.flusher, None, None
            flusher.set()

    # --- finished games --------------------------------------------------------------

    def _store(self, game: StoreGame) -> None:
        """Hold the room's later packets until ``game`` is stored, and queue it for the store."""
        token = 0
        if self._committer.stores:
            self._holds += 1
            token = self._holds
            for member in game.hold:
                peer = self._peers.get(member)
                if peer is not None and peer.conn.closing is None:
                    peer.conn.hold(token)
        # The core's clock is trio's (monotonic); the results want the wall clock.
        ended = time.time() - (trio.current_time() - game.record.ended_at)
        self._committer.submit(game, ended - game.record.duration, ended, token)

    def _release(self, game: StoreGame, token: int) -> None:
        """``game`` is durable: what its members' connections held goes out."""
        if not token:
            return
        for member in game.hold:
            peer = self._peers.get(member)
            if peer is not None:
                peer.conn.release(token)
                if peer.wake is not None:
                    peer.wake.set()

    # --- timers ----------------------------------------------------------------------

    def _poke_timer(self) -> None:
        deadline = self.hub.next_deadline()
        if deadline is not None and deadline < self._timer_wakes_at:
            self._timers_changed.set()  # something is due earlier than the timer task thinks

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
                    self._run(self.hub.tick(now))
                except Exception:  # a bug in a timer must not stop every other room's timers
                    log.exception("timer handling failed")
