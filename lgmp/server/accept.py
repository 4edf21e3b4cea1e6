"""Accepting connections in bursts: every socket waiting on a listener per wake-up.

trio's ``SocketListener.accept`` takes one connection per call: it checks for
cancellation, tries ``accept``, and when that fails waits for readability and
tries again -- a failed system call and two trips through the scheduler per
connection -- then asks ``getpeername`` separately if the caller wants the
address. When thousands of players reconnect at once (a restarted server, a
Wi-Fi that came back) that is a large share of what seating them costs.

``Acceptor`` waits for the listener to be readable once, then accepts what the
kernel has queued, up to ``ACCEPT_BURST``, keeping the address ``accept``
returned. The accepting is done on a duplicate of the listener's descriptor (a
plain non-blocking socket, so no trio wrapper per call); the waiting is done on
trio's own socket, so closing the listener (``aclose``) wakes the waiter with
``ClosedResourceError`` as it would trio's ``accept``. The duplicate is closed
when the acceptor is.

Errors are trio's: the ones trio ignores (a connection reset before it was
accepted...) are skipped; any other ``OSError`` -- the capacity errors
``EMFILE``, ``ENFILE``, ``ENOMEM``, ``ENOBUFS`` among them -- is raised, after
the sockets already accepted in the burst have been returned. Once the listener
is closed -- while waiting, or at any time before the next call -- ``accept``
raises ``trio.ClosedResourceError``, never accepts through the duplicate.
"""

from __future__ import annotations

import errno
import os
import socket

import trio

# One wake-up accepts at most this many sockets before the scheduler runs the
# others: a connection storm must not keep the players already seated waiting.
ACCEPT_BURST = 64

# What trio's SocketListener.accept skips (a connection that went away between
# the SYN and the accept, a firewall's EPERM...): not errors of the listener.
_SKIPPED = {
    getattr(errno, name)
    for name in (
        "EPERM", "ECONNABORTED", "EPROTO", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET", "EHOSTUNREACH",
        "EOPNOTSUPP", "ENETUNREACH", "ENOSR", "ESOCKTNOSUPPORT", "EPROTONOSUPPORT", "ETIMEDOUT", "ECONNRESET",
    )
    if hasattr(errno, name)
}


class Acceptor:
    """Accepts connections from one trio listener in bursts; ``aclose`` the listener
    to stop it, ``close`` it when done."""

    def __init__(self, listener: trio.SocketListener):
        waited = listener.socket
        self._waited = waited
        self._sock = socket.socket(waited.family, waited.type, waited.proto, fileno=os.dup(waited.fileno()))
        self._sock.setblocking(False)
        self._error: OSError | None = None  # met after part of a burst: raised at the next call

    async def accept(self) -> list[tuple[trio.SocketStream, object]]:
        """The next connections (at least one), each as a stream and the address the
        kernel gave with it. Raises ``trio.ClosedResourceError`` once the listener is
        closed, and ``OSError`` for an error that is not the connection's own."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        while True:
            self._check_open()
            await trio.lowlevel.wait_readable(self._waited)
            # Closed while we were being woken: the duplicate still listens, but the
            # server has stopped accepting.
            self._check_open()
            accepted = []
            for _ in range(ACCEPT_BURST):
                try:
                    sock, address = self._sock.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _SKIPPED:
                        continue
                    if not accepted:
                        raise
                    self._error = exc
                    break
                accepted.append((trio.SocketStream(trio.socket.from_stdlib_socket(sock)), address))
            if accepted:
                return accepted

    def _check_open(self) -> None:
        if self._waited.fileno() < 0:  # the listener was closed (aclose): so are we
            raise trio.ClosedResourceError("the listener is closed")

    def close(self) -> None:
        self._sock.close()
