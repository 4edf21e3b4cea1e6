"""Finished games to the results store: in a worker thread, one at a time, in order,
until each is durable.

A FINL must describe a stored game, so the shell holds every packet queued after a
game's ``StoreGame`` on its members' connections (a commit hold) and hands the game
here (``submit``). ``run`` stores the games in the order they finished, each in a
worker thread (a commit may fsync, or wait on a lock); a failed commit is tried
again with back-off, with a warning while it is late, for as long as the process
lives -- never given up on a timeout. Once a game is durable, ``release(game,
token)`` (the shell's) lets its FINL go.

At shutdown ``close`` ends the queue: what is queued is still stored, and
``done`` is set when the last one is. A game that finishes after that is stored
at once, in the caller's thread, with one try.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import trio

from ..rooms.events import StoreGame
from .stats import ShellStats

log = logging.getLogger("lgmp.server")

OnGameFinished = Callable[[StoreGame, float, float], object]

# A failed commit is tried again after STORE_RETRY_FIRST seconds, doubling up to
# STORE_RETRY_MAX: soon enough for a lock that clears, gentle on a broken disk.
STORE_RETRY_FIRST = 0.5
STORE_RETRY_MAX = 5.0
# While a game's results are not stored after STORE_LATE seconds, say so (and
# again every STORE_LATE): its players are waiting for their FINL.
STORE_LATE = 5.0


class Committer:
    def __init__(self, on_game_finished: OnGameFinished | None, *, stats: ShellStats,
                 release: Callable[[StoreGame, int], object]):
        """``on_game_finished(game, started, ended)`` stores a game (wall-clock times),
        raising if it could not; None: games are not stored (FINL goes at once).
        ``release(game, token)`` lets the game's held packets go."""
        self.on_game_finished = on_game_finished
        self._stats = stats
        self._release = release
        self._send, self._receive = trio.open_memory_channel(math.inf)
        self.done = trio.Event()  # set when the queue is closed and empty

    @property
    def stores(self) -> bool:
        """Games are stored: their FINL must wait for it."""
        return self.on_game_finished is not None

    def submit(self, game: StoreGame, started: float, ended: float, token: int) -> None:
        """Store ``game`` after those before it, then ``release(game, token)``."""
        try:
            self._send.send_nowait((game, started, ended, token))
        except trio.ClosedResourceError:  # shutting down: one try, here and now
            log.error("[%s] game finished during shutdown; storing it now", game.room)
            if self._commit(game, started, ended):
                self._release(game, token)

    def close(self) -> None:
        """No more games: ``run`` ends once those queued are stored (``done``)."""
        self._send.close()

    async def run(self) -> None:
        try:
            async for game, started, ended, token in self._receive:
                if self.on_game_finished is not None:
                    await self._store_durably(game, started, ended)
                self._release(game, token)
        finally:
            self.done.set()

    def _commit(self, game: StoreGame, started: float, ended: float) -> bool:
        """One attempt at storing ``game``: True once it is durable."""
        try:
            if self.on_game_finished is not None:
                self.on_game_finished(game, started, ended)
            return True
        except Exception:
            log.exception("[%s] storing the game's results failed; its FINL waits, and it will be tried again", game.room)
            return False

    async def _store_durably(self, game: StoreGame, started: float, ended: float) -> None:
        """Store ``game``, trying again after every failure, for as long as it takes.

        Its FINL is held until then: a FINL must describe a stored game, so no
        timeout ever lets it go first. While it is late a warning says so.
        """
        began = trio.current_time()
        attempts = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._warn_while_late, game, began)
            while True:
                attempts += 1
                with trio.CancelScope(shield=True):  # a worker thread cannot be cancelled mid-commit
                    started_at = time.perf_counter()
                    stored = await trio.to_thread.run_sync(self._commit, game, started, ended)
                    self._stats.commit_seconds.observe(time.perf_counter() - started_at)
                if stored:
                    break
                await trio.sleep(min(STORE_RETRY_MAX, STORE_RETRY_FIRST * 2 ** (attempts - 1)))
            nursery.cancel_scope.cancel()
        took = trio.current_time() - began
        if attempts > 1 or took >= STORE_LATE:
            log.warning("[%s] results stored after %.1f s (%d attempt%s); its FINL goes out now",
                        game.room, took, attempts, "" if attempts == 1 else "s")

    async def _warn_while_late(self, game: StoreGame, began: float) -> None:
        while True:
            await trio.sleep(STORE_LATE)
            log.warning("[%s] results still not stored after %.0f s (is the results database locked or unwritable?); "
                        "its players' FINL waits until they are", game.room, trio.current_time() - began)
