"""The HTTP side of ``lgmp serve``: hypercorn's trio worker serving the Starlette app
in the server's own trio process, beside the LGMP listener.

``HTTPService(server, settings)`` must be made before the server accepts its first
connection (it watches the core's events from then on); ``serve`` binds and runs
until ``shutdown``, which ends the spectators' streams first so the HTTP server
can stop at once.

Several processes later (``--workers``/``--cluster``): every figure here is a plain
count (``ShellStats``, ``EventCounts``) that adds up across processes, and the room
list is made of ``RoomView``s, so a parent can serve the sum of its workers'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from ..results.store import ResultsStore
from ..server.shell import LGMPServer
from .app import build_app, open_results
from .metrics import LGMPCollector, make_registry
from .pages import room_fragments
from .spectators import UPDATE_INTERVAL, sse
from .watch import ServerWatch

log = logging.getLogger("lgmp.http")

DEFAULT_HTTP = "127.0.0.1:8111"
# Shutdown waits this long for HTTP requests in flight (the streams are ended first).
GRACEFUL_TIMEOUT = 2.0


class CannotListen(OSError):
    """The HTTP address cannot be bound."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); ValueError if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@dataclass(frozen=True, slots=True)
class HTTPSettings:
    host: str = "127.0.0.1"
    port: int = 8111
    admin_token: str | None = None  # None: DELETE /api/rooms/{code} is refused
    results_path: str | None = None  # the results file to read; None: the server keeps none
    on_ready: Callable[[str], object] | None = None  # called with the base URL once bound
    update_interval: float = UPDATE_INTERVAL  # spectators' updates per room at most this often


class HTTPService:
    def __init__(self, server: LGMPServer, settings: HTTPSettings = HTTPSettings()):
        self.server = server
        self.settings = settings
        self.admin_token = settings.admin_token or None
        self.watch = ServerWatch(server, render=self._render_update, interval=settings.update_interval)
        self.registry = make_registry(
            LGMPCollector(server.stats, self.watch.counts, self.watch.spectator_counts, self.watch.gauges))
        self.app = build_app(self)
        self.url: str | None = None
        self.port: int | None = None
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._results: ResultsStore | None = None
        self._published: dict[str, dict[str, str]] = {}  # per watched room: the regions last sent

    # --- for the routes ------------------------------------------------------------------

    def _render_update(self, code: str, whole: bool) -> bytes | None:
        """A room's update for its spectators: every region when ``whole``, else only
        the regions that differ from its previous update (most turns move a piece and
        leave the seats table alone)."""
        published = self._published
        view = self.watch.room(code)
        if view is None:
            published.pop(code, None)
            return None
        fragments = room_fragments(view)
        previous = published.get(code)
        if len(published) > 2 * len(self.watch.spectators.rooms) + 16:  # forget rooms nobody watches now
            for gone in [c for c in published if c not in self.watch.spectators.rooms]:
                del published[gone]
        published[code] = fragments
        if not whole and previous is not None:
            fragments = {k: v for k, v in fragments.items() if previous.get(k) != v}
            if not fragments:
                return None  # nothing a viewer can see changed
        return sse("room", fragments)

    def results(self) -> tuple[ResultsStore | None, str]:
        """The results file, read-only, opened on first use (the server creates it)."""
        if self._results is None:
            self._results, problem = open_results(self.settings.results_path)
            return self._results, problem
        return self._results, ""

    # --- running -----------------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        host, port = self.settings.host, self.settings.port
        config = Config()
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("lgmp.http.hypercorn")
        config.graceful_timeout = GRACEFUL_TIMEOUT
        try:
            async with trio.open_nursery() as nursery:

                async def run_hypercorn(task_status) -> None:
                    await hypercorn_serve(self.app, config, shutdown_trigger=self._stop.wait, task_status=task_status)
                    nursery.cancel_scope.cancel()  # it stopped: so does the publisher

                await nursery.start(self.watch.spectators.run)
                try:
                    binds = await nursery.start(run_hypercorn)
                except (OSError, BaseExceptionGroup) as exc:
                    error = exc
                    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                        error = error.exceptions[0]  # hypercorn's nurseries wrap the bind error
                    if not isinstance(error, OSError):
                        raise
                    raise CannotListen(error.errno, f"cannot listen for HTTP on {host}:{port}: {error.strerror or error}") from exc
                self.url = binds[0]
                self.port = int(self.url.rpartition(":")[2])
                log.info("HTTP on %s", self.url)
                if self.settings.on_ready is not None:
                    self.settings.on_ready(self.url)
                task_status.started(self.port)
        finally:
            if self._results is not None:
                self._results.close()
            self._stopped.set()

    async def shutdown(self) -> None:
        self.watch.spectators.close_all("the server is shutting down")
        self._stop.set()
        with trio.move_on_after(GRACEFUL_TIMEOUT + 2):
            await self._stopped.wait()
