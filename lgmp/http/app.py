"""The HTTP routes: pages, the JSON API, the spectators' event streams and /metrics.

Everything about rooms comes from ``ServerWatch`` (room views kept from the core's
events); the only action, closing a room, goes through ``LGMPServer.close_room``
so its RSETs go out like any other core event. Stored results are read from the
results file with a read-only connection of its own, in a worker thread.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..results.store import ResultsStore, StoreError
from . import api, pages
from .spectators import HEARTBEAT, RECONNECT_MS, Refused, Spectators, Viewer

if TYPE_CHECKING:
    from .service import HTTPService

log = logging.getLogger("lgmp.http")

RESULTS_SAMPLE = 300  # games the results page plots: enough for a shape, quick to read
API_RESULTS_MAX = 200  # games one /api/results answer may list


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


class EventStream(Response):
    """One spectator's Server-Sent Events stream, fed from its ``Viewer`` queue.

    Ends when the queue ends (the room closed), when the client goes away, or when
    the viewer is dropped for not reading (its cancel scope is cancelled)."""

    def __init__(self, spectators: Spectators, viewer: Viewer):
        super().__init__(media_type="text/event-stream")
        self.spectators, self.viewer = spectators, viewer

    async def __call__(self, scope, receive, send) -> None:
        viewer = self.viewer
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
            with viewer.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._until_disconnect, receive, nursery.cancel_scope)
                    await self._pump(send)
                    nursery.cancel_scope.cancel()
        finally:
            self.spectators.leave(viewer)

    async def _pump(self, send) -> None:
        viewer = self.viewer
        await send({"type": "http.response.body", "body": f"retry: {RECONNECT_MS}\n\n".encode(), "more_body": True})
        while True:
            message = b": keep-alive\n\n"
            with trio.move_on_after(HEARTBEAT):
                try:
                    message = await viewer.receive.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    break
            await send({"type": "http.response.body", "body": message, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _until_disconnect(receive, scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()


def build_app(service: HTTPService) -> Starlette:
    watch = service.watch
    spectators = watch.spectators

    def find_room(request: Request):
        """(code, view) or an error response: 400 for a malformed code, 404 for no room."""
        code = api.parse_room_code(request.path_params["code"])
        if code is None:
            return None, _error(400, "a room code is four letters A-Z")
        view = watch.room(code)
        if view is None:
            return code, _error(404, f"no room {code}")
        return code, view

    # --- the API -----------------------------------------------------------------------

    async def list_rooms(request: Request) -> Response:
        return JSONResponse({"rooms": [api.room_json(v, watch.wall_time(v.opened_at)) for v in _ordered(watch.rooms())]})

    async def get_room(request: Request) -> Response:
        code, found = find_room(request)
        if isinstance(found, Response):
            return found
        return JSONResponse(api.room_json(found, watch.wall_time(found.opened_at), detail=True))

    async def delete_room(request: Request) -> Response:
        if service.admin_token is None:
            return _error(403, "no admin token is configured (lgmp serve --admin-token or --admin-token-file)")
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), service.admin_token.encode()):
            return _error(401, "a valid 'Authorization: Bearer TOKEN' header is required", **{"WWW-Authenticate": "Bearer"})
        code, found = find_room(request)
        if isinstance(found, Response):
            return found
        closed = service.server.close_room(code)
        log.info("[%s] closed through the API (%s)", code, "done" if closed else "already gone")
        return JSONResponse({"closed": code}) if closed else _error(404, f"no room {code}")

    def list_results(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return _error(400, "limit must be a whole number")
        if not 1 <= limit <= API_RESULTS_MAX:
            return _error(400, f"limit must be 1..{API_RESULTS_MAX}")
        store, problem = service.results()
        if store is None:
            return _error(503, problem)
        try:
            return JSONResponse({"games": [api.game_json(g) for g in store.recent_games(limit)], "total": store.game_count()})
        except StoreError as exc:
            return _error(503, str(exc))

    def get_result(request: Request) -> Response:
        text = request.path_params["game_id"]
        if not text.isdigit() or len(text) > 18:
            return _error(400, "a game id is a positive whole number")
        store, problem = service.results()
        if store is None:
            return _error(503, problem)
        try:
            game = store.game(int(text))
            if game is None:
                return _error(404, f"no game {text}")
            return JSONResponse({**api.game_json(game), "players": [api.player_json(p) for p in store.players(game.id)]})
        except StoreError as exc:
            return _error(503, str(exc))

    # --- metrics -------------------------------------------------------------------------

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    # --- pages ---------------------------------------------------------------------------

    def overview_ctx() -> dict:
        g = watch.gauges()
        rooms = [api.room_json(v, watch.wall_time(v.opened_at)) for v in _ordered(watch.rooms())[:100]]
        figures = {"connections": g.connections, "rooms_lobby": g.rooms.get("lobby", 0), "rooms_game": g.rooms.get("game", 0),
                   "players_present": g.players["present"], "players_absent": g.players["absent"],
                   "spectators": g.spectators, "games_finished": watch.counts.games_finished}
        ctx = pages.overview_context(rooms, figures, watch.activity.recent(watch.now()),
                                     watch.activity.games_per_minute(watch.now()), uptime=watch.uptime())
        ctx["total_rooms"], ctx["more"] = len(watch.views.rooms), max(0, len(watch.views.rooms) - len(rooms))
        return ctx

    async def overview(request: Request) -> Response:
        return HTMLResponse(pages.overview_page(overview_ctx()))

    async def overview_live(request: Request) -> Response:
        return HTMLResponse(pages.overview_fragment(overview_ctx()), headers={"cache-control": "no-store"})

    async def room_page(request: Request) -> Response:
        code, found = find_room(request)
        if isinstance(found, Response):
            if found.status_code == 404:
                return HTMLResponse(pages.closed_room_page(code), status_code=404)
            return HTMLResponse(pages._env.get_template("message.html").render(
                title="Not a room code", message="A room code is four letters A-Z."), status_code=400)
        return HTMLResponse(pages.room_page(found))

    async def room_events(request: Request) -> Response:
        code, found = find_room(request)
        if isinstance(found, Response):
            return found
        try:
            viewer = spectators.join(code)
        except Refused as exc:
            return _error(503, f"too many spectators ({exc.reason.replace('_', ' ')})", **{"Retry-After": "30"})
        if viewer is None:
            return _error(404, f"no room {code}")
        return EventStream(spectators, viewer)

    def results_page(request: Request) -> Response:
        store, problem = service.results()
        if store is None:
            return HTMLResponse(pages.results_page(None, problem))
        try:
            games = store.recent_games(RESULTS_SAMPLE)
            players = [p for g in games for p in store.players(g.id)]
            ctx = pages.results_context(games, players, store.leaderboard(10), store.game_count())
        except StoreError as exc:
            return HTMLResponse(pages.results_page(None, str(exc)), status_code=503)
        return HTMLResponse(pages.results_page(ctx))

    routes = [
        Route("/", overview),
        Route("/overview/live", overview_live),
        Route("/rooms/{code}", room_page),
        Route("/rooms/{code}/events", room_events),
        Route("/results", results_page),
        Route("/metrics", metrics),
        Route("/api/rooms", list_rooms),
        Route("/api/rooms/{code}", get_room, methods=["GET"]),
        Route("/api/rooms/{code}", delete_room, methods=["DELETE"]),
        Route("/api/results", list_results),
        Route("/api/results/{game_id}", get_result),
        Mount("/static", StaticFiles(packages=[("lgmp.http", "static")]), name="static"),
    ]
    return Starlette(routes=routes)


def _ordered(views: list) -> list:
    """Games first, then lobbies; newest first within each."""
    return sorted(views, key=lambda v: (v.phase != "game", -v.opened_at))


def open_results(path: str | None) -> tuple[ResultsStore | None, str]:
    """A read-only handle on the results file, or None and why not."""
    if path is None:
        return None, "this server keeps no results (lgmp serve --no-db)"
    try:
        return ResultsStore.open(path, create=False), ""
    except StoreError as exc:
        return None, str(exc)
