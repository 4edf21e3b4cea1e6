"""A serving process: what ``lgmp serve`` (and each ``--workers`` worker) does around
the ``LGMPServer`` itself -- the garbage collector tuned for a server, the HTTP
side run beside it, and the signals: the first SIGINT/SIGTERM shuts down
gracefully, a second does not cut that short, a third exits at once.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

import trio

from ..limits import Limits
from .commits import OnGameFinished
from .shell import FLUSH_TIMEOUT, LGMPServer

log = logging.getLogger("lgmp.server")

# The cyclic garbage collector's first threshold (allocations between young
# collections). A server keeps a handful of long-lived objects per connection
# (its socket, Connection, decoder, seat) and frees nearly everything else
# by reference counting, so the default (700) only makes it walk young objects
# that are about to be kept anyway: seating 19,000 connections spent 13 % of its
# CPU in the collector. The older generations keep their default ratios.
GC_FIRST_THRESHOLD = 10_000


def tune_collector() -> None:
    """For a serving process, once its modules are loaded: collect young objects less
    often, and exempt everything alive now (modules, tables) from later collections."""
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_THRESHOLD, second, third)
    gc.freeze()


class Companion(Protocol):
    """A service run beside the server by ``run_server`` (``lgmp serve --http``)."""

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None: ...

    async def shutdown(self) -> None: ...


async def run_server(
    *,
    host: str,
    port: int,
    limits: Limits,
    seed: int | None,
    server_spins: bool,
    on_game_finished: OnGameFinished | None = None,
    ready: Callable[[int], object] | None = None,
    companion: Callable[[LGMPServer], Companion] | None = None,
    dialect: str = "v1.0",
    also_listen: Sequence[tuple[int, str]] = (),
    proxy_protocol: bool = False,
) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully.

    ``companion``, if given, makes a service that runs beside the server in the same
    process (the HTTP side): started once the server listens, shut down after it.
    ``dialect`` and ``also_listen``: as ``LGMPServer``'s; ``proxy_protocol``: as ``serve``'s.

    The signal handlers stay ours during the shutdown: a second signal (an
    impatient Ctrl-C, a supervisor repeating SIGTERM) does not cut the bounded
    drain short, so every member still gets its RSET; a third exits at once,
    with 128 + the signal's number, as users expect of Ctrl-C."""
    server = LGMPServer(limits=limits, seed=seed, server_spins=server_spins, on_game_finished=on_game_finished,
                        dialect=dialect, also_listen=also_listen)
    tune_collector()
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            beside = companion(server) if companion is not None else None  # watching before the first connection
            bound = await nursery.start(partial(server.serve, host, port, proxy_protocol=proxy_protocol))
            if ready is not None:
                ready(bound)
            if beside is not None:
                await nursery.start(beside.serve)
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                break
            nursery.start_soon(_signals_during_shutdown, signals, limits)
            await server.shutdown()
            if beside is not None:
                await beside.shutdown()
            nursery.cancel_scope.cancel()


async def _signals_during_shutdown(signals, limits: Limits) -> None:
    repeats = 0
    async for signum in signals:
        repeats += 1
        name = signal.Signals(signum).name
        if repeats >= 2:
            log.warning("received %s a third time: exiting now, without finishing the shutdown", name)
            os._exit(128 + signum)
        log.warning("received %s again: the shutdown goes on (about %g s at most) so every member gets its RSET; "
                    "send it once more to exit at once", name, limits.shutdown_grace + FLUSH_TIMEOUT)
