"""One task reads every open connection: a level-triggered epoll set of our own.

With a task per connection, each packet a client sends costs trio a wake-up of
that task -- its socket armed in trio's epoll (an ``epoll_ctl`` per wait), the
task rescheduled, its coroutine resumed -- before the server reads a byte.
Under a turn storm that was the largest share of the Python per packet after
the game itself.

``ReadPoller`` keeps its own ``epoll`` set, level-triggered, each socket added
once (``add``) and removed once (``remove``). Its one task waits, through trio,
for that set to be readable, then calls the callback of every socket that is --
as many as are ready, up to ``POLL_BATCH`` per round, so the scheduler and the
other tasks run between rounds. Nothing is re-armed per packet; a socket that
stays readable (a read that filled the buffer) comes back next round.

Deadlines: ``call_at(fd, when, callback)`` calls ``callback(now)`` once ``when``
has passed, if ``fd`` is still in the set (the shell uses it for a packet that
started but did not complete). A later ``call_at`` for the same ``fd`` replaces
the earlier; ``remove`` drops it.

It knows nothing of LGMP: callbacks are the shell's. A callback must not block
and must not raise (the shell catches its own errors per connection); one that
does anyway is logged and its socket removed, so a bug costs that connection only.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import select
from collections.abc import Callable

import trio

log = logging.getLogger("lgmp.server")

# Ready sockets handled per round before trio's scheduler runs again: large
# enough to amortize the round's own cost, small enough that timers, accepting
# and flushers are never kept waiting behind a long batch.
POLL_BATCH = 256


class ReadPoller:
    def __init__(self, *, after_round: Callable[[], object] | None = None) -> None:
        """``after_round``: called after each round's callbacks (the shell looks at its
        timers once per round instead of once per packet); ``in_round`` is True while
        the callbacks run."""
        self._after_round = after_round
        self.in_round = False
        self._epoll: select.epoll | None = None  # made when first needed, closed when run ends
        self._stopped = False  # run has ended: the server is going away
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._timers: list[tuple[float, int, int]] = []  # (when, sequence, fd): a heap
        self._timer_of: dict[int, tuple[float, int, Callable[[float], object]]] = {}  # fd -> (when, sequence, callback)
        self._sequence = itertools.count()
        self._scope: trio.CancelScope | None = None  # the wait in progress, ended by the earliest deadline

    def __len__(self) -> int:
        return len(self._callbacks)

    def add(self, fd: int, on_readable: Callable[[], object]) -> None:
        """From now on ``on_readable()`` is called whenever ``fd`` is readable (never,
        once the poller has stopped: the server is going away)."""
        if self._stopped:
            return
        self._open().register(fd, select.EPOLLIN)
        self._callbacks[fd] = on_readable

    def remove(self, fd: int) -> None:
        """Forget ``fd`` (before it is closed); nothing if it is not in the set."""
        if self._callbacks.pop(fd, None) is not None:
            self._timer_of.pop(fd, None)
            try:
                self._epoll.unregister(fd)
            except OSError:  # the socket is closed already: the kernel dropped it from the set
                pass

    def call_at(self, fd: int, when: float, callback: Callable[[float], object]) -> None:
        """Call ``callback(now)`` once trio's clock passes ``when``, unless ``fd`` is
        removed or given another deadline first."""
        if fd not in self._callbacks:
            return
        sequence = next(self._sequence)
        self._timer_of[fd] = (when, sequence, callback)
        heapq.heappush(self._timers, (when, sequence, fd))
        scope = self._scope
        if scope is not None and when < scope.deadline:
            scope.deadline = when

    def _open(self) -> select.epoll:
        if self._epoll is None:
            self._epoll = select.epoll()
        return self._epoll

    async def run(self) -> None:
        """Read until cancelled. Run again, it starts afresh (an empty set)."""
        self._stopped = False
        epoll, callbacks = self._open(), self._callbacks
        try:
            while True:
                # The wait ends when a socket is readable or the earliest deadline
                # passes; call_at moves the scope's deadline if an earlier one comes.
                scope = self._scope = trio.CancelScope(deadline=self._next_deadline())
                with scope:
                    await trio.lowlevel.wait_readable(epoll)
                self._scope = None
                if self._timers:
                    self._expire(trio.current_time())
                ready = epoll.poll(0, POLL_BATCH)
                if not ready:
                    continue
                self.in_round = True
                try:
                    for fd, _ in ready:
                        callback = callbacks.get(fd)
                        if callback is None:
                            continue
                        try:
                            callback()
                        except Exception:  # the shell's callbacks catch their own; this is a last guard
                            log.exception("a read callback failed; dropping its socket from the poller")
                            self.remove(fd)
                finally:
                    self.in_round = False
                if self._after_round is not None:
                    self._after_round()
        finally:
            self._scope = None
            self._stopped = True
            self._epoll = None
            epoll.close()
            callbacks.clear()
            self._timers.clear()
            self._timer_of.clear()

    def _next_deadline(self) -> float:
        timers, current = self._timers, self._timer_of
        while timers:
            when, sequence, fd = timers[0]
            entry = current.get(fd)
            if entry is not None and entry[1] == sequence:
                return when
            heapq.heappop(timers)  # replaced or removed since
        return math.inf

    def _expire(self, now: float) -> None:
        timers, current = self._timers, self._timer_of
        while timers and timers[0][0] <= now:
            when, sequence, fd = heapq.heappop(timers)
            entry = current.get(fd)
            if entry is None or entry[1] != sequence:
                continue
            del current[fd]
            try:
                entry[2](now)
            except Exception:
                log.exception("a read deadline's callback failed; dropping its socket from the poller")
                self.remove(fd)
