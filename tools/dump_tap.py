"""``lgmp-dump tap``: a transparent TCP proxy that prints LGMP packets as they pass.

Each accepted connection gets an upstream connection and two pumps, one per
direction. A pump forwards every chunk exactly as received; before forwarding it
hands the chunk to that direction's ``StreamDumper`` (its own ``Decoder``) and emits
the records. Observing can never alter or stop the bytes: a decode error is emitted
once and that direction is then forwarded undecoded, and any failure of the
observer itself (a bug, a closed stdout) only switches observing off.

Records are emitted before the chunk is forwarded, so a request is printed before
the reply it causes. Half-closes are passed on (EOF one way leaves the other open),
and when either peer breaks the connection both sides are closed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from lgmp.wire.codec import Dialect

from .dump_core import ARROWS, C2S, S2C, NoteRecord, Record, StreamDumper

Emit = Callable[[Record], None]

RECEIVE_SIZE = 65536


@dataclass
class TapStats:
    """What the tap has seen, for tests and the closing note."""

    connections: int = 0
    errors: int = 0
    bytes: dict[str, int] = field(default_factory=dict)


class _Abort(Exception):
    """A peer broke the connection: stop both directions."""


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port, *_ = stream.socket.getpeername()
    except OSError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Connection:
    def __init__(self, number: int, emit: Emit, stats: TapStats, clock: Callable[[], float]):
        self.id = f"#{number}"
        self.emit = emit
        self.stats = stats
        self.clock = clock
        self.counts = {C2S: 0, S2C: 0}

    def note(self, event: str, text: str, **details: object) -> None:
        self._emit_safely(NoteRecord(self.id, event, text, self.clock(), dict(details)))

    def _emit_safely(self, record: Record) -> bool:
        try:
            self.emit(record)
            return True
        except Exception as exc:  # the observer must never take the bytes down with it
            print(f"lgmp-dump: tap {self.id}: cannot print ({exc!r}); still forwarding", file=sys.stderr)
            return False

    async def pump(self, source: trio.SocketStream, sink: trio.SocketStream, dumper: StreamDumper) -> None:
        observing = True
        while True:
            try:
                chunk = await source.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Abort(f"{ARROWS[dumper.direction]} receive failed: {exc}") from exc
            if not chunk:
                break
            self.counts[dumper.direction] += len(chunk)
            if observing:
                observing = self._observe(dumper, lambda: dumper.feed(chunk, self.clock()))
            try:
                await sink.send_all(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Abort(f"{ARROWS[dumper.direction]} send failed: {exc}") from exc
        if observing:
            self._observe(dumper, lambda: dumper.close(self.clock()))
        try:
            await sink.send_eof()  # pass the half-close on; the other direction goes on
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _observe(self, dumper: StreamDumper, step: Callable[[], list[Record]]) -> bool:
        """Run one decode step and emit its records; False once observing must stop."""
        try:
            records = step()
        except Exception as exc:  # pragma: no cover - a dumper bug must not stop the bytes
            print(f"lgmp-dump: tap {self.id}: decoder failed ({exc!r}); still forwarding", file=sys.stderr)
            return False
        for record in records:
            if not self._emit_safely(record):
                return False
        if dumper.failed is not None:
            self.stats.errors += 1
            return False  # the error is printed; from here on this direction is only forwarded
        return True


async def _handle(
    client: trio.SocketStream,
    *,
    number: int,
    upstream: tuple[str, int],
    emit: Emit,
    stats: TapStats,
    clock: Callable[[], float],
    dialect: Dialect | None = None,
) -> None:
    conn = _Connection(number, emit, stats, clock)
    host, port = upstream
    async with client:
        try:
            server = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            conn.note("upstream-failed", f"cannot connect to upstream {host}:{port}: {exc}", upstream=f"{host}:{port}")
            return
        conn.note("open", f"open {_peer(client)} > {host}:{port}", client=_peer(client), upstream=f"{host}:{port}")
        reason = "closed"
        async with server:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(conn.pump, client, server, StreamDumper(conn.id, C2S, dialect))
                    nursery.start_soon(conn.pump, server, client, StreamDumper(conn.id, S2C, dialect))
            except* _Abort as group:
                reason = f"aborted ({group.exceptions[0]})"
        stats.bytes[conn.id] = conn.counts[C2S] + conn.counts[S2C]
        conn.note(
            "close",
            f"{reason}: c>s {conn.counts[C2S]} bytes, s>c {conn.counts[S2C]} bytes",
            bytes_c2s=conn.counts[C2S],
            bytes_s2c=conn.counts[S2C],
        )


async def serve_tap(
    listeners: list[trio.SocketListener],
    upstream: tuple[str, int],
    emit: Emit,
    *,
    stats: TapStats | None = None,
    clock: Callable[[], float] = time.time,
    dialect: Dialect | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Tap every connection accepted on ``listeners`` to ``upstream``; runs until cancelled."""
    stats = stats if stats is not None else TapStats()

    async def handler(client: trio.SocketStream) -> None:
        stats.connections += 1
        number = stats.connections
        try:
            await _handle(client, number=number, upstream=upstream, emit=emit, stats=stats, clock=clock, dialect=dialect)
        except Exception as exc:  # pragma: no cover - one broken connection must not end the tap
            print(f"lgmp-dump: tap #{number}: {exc!r}", file=sys.stderr)

    await trio.serve_listeners(handler, listeners, task_status=task_status)


async def run_tap(
    listen_port: int,
    upstream: tuple[str, int],
    emit: Emit,
    *,
    listen_host: str = "127.0.0.1",
    stats: TapStats | None = None,
    clock: Callable[[], float] = time.time,
    dialect: Dialect | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``listen_host:listen_port`` and tap every connection to ``upstream``.

    Runs until cancelled. ``task_status.started`` gets the listeners, so a caller
    that asked for port 0 learns the real one.
    """
    listeners = await trio.open_tcp_listeners(listen_port, host=listen_host)
    await serve_tap(listeners, upstream, emit, stats=stats, clock=clock, dialect=dialect, task_status=task_status)
