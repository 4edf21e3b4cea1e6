"""``lgmp``: the command line. Sub-commands: serve, host, bot, play, demo, results, rooms."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import trio

from .limits import Limits

DEFAULT_PORT = 1111


class _RoomLogFilter(logging.Filter):
    """Log lines name their room and seat in brackets; lines without one say so."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("["):
            record.msg, record.args = "[-] " + message, ()
        return True


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(_RoomLogFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _add_connect_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"server port (default {DEFAULT_PORT})")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group("limits (see lgmp/limits.py for the reason behind each default)")
    for f in dataclasses.fields(Limits):
        default = getattr(defaults, f.name)
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(default),
            default=default,
            metavar=type(default).__name__.upper(),
            help=f"{f.metadata.get('help', '')} (default {default})",
        )


def _add_http_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("HTTP: metrics, room API, spectator pages")
    group.add_argument("--http", default="127.0.0.1:8111", metavar="HOST:PORT",
                       help="where to serve HTTP (default 127.0.0.1:8111; port 0 picks a free one)")
    group.add_argument("--no-http", action="store_true", help="serve no HTTP")
    group.add_argument("--admin-token", default=None, metavar="TOKEN",
                       help="bearer token that allows DELETE /api/rooms/CODE (none: refused)")
    group.add_argument("--admin-token-file", default=None, metavar="PATH", help="read the admin token from this file")


def _http_companion(args: argparse.Namespace, results_path: str | None):
    """The HTTP service's factory for run_server, or None with --no-http. Raises ValueError."""
    if args.no_http:
        return None
    from .http.service import HTTPService, HTTPSettings, parse_address

    host, port = parse_address(args.http)
    token = args.admin_token
    if args.admin_token_file:
        try:
            with open(args.admin_token_file) as f:
                token = f.read().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the admin token file: {exc.strerror or exc}") from exc
        if not token:
            raise ValueError(f"the admin token file {args.admin_token_file} is empty")

    def http_ready(url: str) -> None:
        print(f"HTTP on {url} (pages, /api/rooms, /metrics)", flush=True)

    settings = HTTPSettings(host=host, port=port, admin_token=token, results_path=results_path, on_ready=http_ready)
    return lambda server: HTTPService(server, settings)


def _listen_error(exc: BaseException) -> OSError | None:
    """The OSError inside what trio raised (its nurseries wrap errors in groups)."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _listen_error(exc.exceptions[0])
    return None


def _limits_from(args: argparse.Namespace) -> Limits:
    return Limits(**{name: getattr(args, name) for name in Limits.option_names()})


DIALECT_NAMES = ("v1.0", "unity-2022")  # lgmp.wire.dialects.DIALECTS, without importing the codec here


def _add_dialect_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--dialect", choices=DIALECT_NAMES, default="v1.0",
                        help=f"{what} (default v1.0; unity-2022: the game's Unity client, PROTOCOL.md chapter 12)")


def _port_and_dialect(text: str) -> tuple[int, str]:
    """``--also-listen PORT:DIALECT``."""
    port, _, dialect = text.partition(":")
    if not port.isdigit() or dialect not in DIALECT_NAMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not PORT:DIALECT (a dialect is one of {', '.join(DIALECT_NAMES)})")
    return int(port), dialect


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgmp", description="LGMP v1.0 server and tools for Let's Go Marketing!")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the LGMP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--seed", type=int, default=None, help="seed for room codes and games (reproducible runs)")
    serve.add_argument("--server-spins", action="store_true", help="the server draws every spin itself (anti-cheat)")
    serve.add_argument("--db", default=None, help="results database (default lgmp-results.sqlite3)")
    serve.add_argument("--no-db", action="store_true", help="do not store results")
    _add_http_options(serve)
    _add_dialect_option(serve, "what clients on --port speak")
    serve.add_argument("--also-listen", action="append", type=_port_and_dialect, default=[], metavar="PORT:DIALECT",
                       help="listen on another port too, for clients of that dialect; rooms are shared (repeatable)")
    _add_limit_options(serve)

    host = commands.add_parser("host", help="create a room and show its board as the game goes")
    _add_connect_options(host)
    host.add_argument("--start-when", type=int, default=None, metavar="N", help="start once N players are ready (default: press Enter)")
    host.add_argument("--games", type=int, default=1, help="games to host before leaving (default 1)")

    bot = commands.add_parser("bot", help="bots join a room and play until the game ends")
    bot.add_argument("code", help="the room code")
    _add_connect_options(bot)
    bot.add_argument("--count", type=int, default=1, help="how many bots (default 1)")
    bot.add_argument("--delay", type=float, default=0.5, help="seconds a bot thinks before each move (default 0.5)")
    bot.add_argument("--seed", type=int, default=None)
    bot.add_argument("--games", type=int, default=1, help="games to play before leaving (default 1)")
    _add_dialect_option(bot, "what the bots speak")

    play = commands.add_parser("play", help="play in this terminal")
    play.add_argument("code", help="the room code")
    _add_connect_options(play)
    _add_dialect_option(play, "what to speak")

    demo = commands.add_parser("demo", help="start a server, a host view and bots, and show a whole game")
    demo.add_argument("--bots", type=int, default=4, help="how many bots play (1-6, default 4)")
    demo.add_argument("--delay", type=float, default=0.15, help="seconds a bot thinks before each move")
    demo.add_argument("--seed", type=int, default=None)

    rooms = commands.add_parser("rooms", help="list a running server's rooms (from its HTTP API)")
    rooms.add_argument("--url", default="http://127.0.0.1:8111", help="the server's HTTP address (default http://127.0.0.1:8111)")
    rooms.add_argument("--json", action="store_true", help="print the API's JSON as it is")

    results = commands.add_parser("results", help="show stored game results")
    try:
        from .results import cli as results_cli
    except ImportError:  # pragma: no cover - the store is optional at import time
        results_cli = None
    if results_cli is not None:
        results_cli.add_arguments(results)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level if args.command == "serve" else ("warning" if args.log_level == "info" else args.log_level))
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "host":
        from .clients.views import run_host

        return trio.run(run_host, args.host, args.port, args.start_when, args.games)
    if args.command == "bot":
        return trio.run(_bots, args)
    if args.command == "play":
        from .clients.play import run_play

        return trio.run(run_play, args.host, args.port, args.code, args.dialect)
    if args.command == "demo":
        from .clients.views import run_demo

        return trio.run(run_demo, args.bots, args.delay, args.seed)
    if args.command == "results":
        from .results.cli import run

        return run(args)
    if args.command == "rooms":
        from .http.rooms_cli import run_rooms

        return run_rooms(args.url, as_json=args.json)
    raise AssertionError(args.command)


def _serve(args: argparse.Namespace) -> int:
    from .server.shell import run_server

    store = None
    on_game_finished = None
    if not args.no_db:
        from .results.store import DEFAULT_DB, ResultsStore, StoreError

        try:
            store = ResultsStore.open(args.db or DEFAULT_DB)
        except StoreError as exc:
            print(f"lgmp serve: {exc}", file=sys.stderr)
            return 1

        def on_game_finished(finished, started, ended):
            game_id = store.record_game(room=finished.room, seed=finished.seed, record=finished.record, started=started, ended=ended)
            logging.getLogger("lgmp.results.store").info("[%s] results stored as game %d", finished.room, game_id)

    def ready(port: int) -> None:
        where = args.db or "lgmp-results.sqlite3"
        ports = "".join(f", {p} ({d})" for p, d in args.also_listen)
        dialects = f" ({args.dialect}){ports}" if args.also_listen or args.dialect != "v1.0" else ""
        print(f"LGMP server on {args.host}:{port}{dialects}" + ("" if args.no_db else f", results in {where}"), flush=True)

    try:
        companion = _http_companion(args, None if args.no_db else (args.db or "lgmp-results.sqlite3"))
    except ValueError as exc:
        print(f"lgmp serve: --http: {exc}" if "HOST:PORT" in str(exc) else f"lgmp serve: {exc}", file=sys.stderr)
        if store is not None:
            store.close()
        return 2
    try:
        trio.run(
            lambda: run_server(
                host=args.host,
                port=args.port,
                limits=_limits_from(args),
                seed=args.seed,
                server_spins=args.server_spins,
                on_game_finished=on_game_finished,
                ready=ready,
                dialect=args.dialect,
                also_listen=args.also_listen,
                companion=companion,
            )
        )
    except (OSError, ExceptionGroup) as exc:
        error = _listen_error(exc)
        if error is None:
            raise
        if type(error).__name__ == "CannotListen":  # the HTTP side's address
            print(f"lgmp serve: {error.strerror}", file=sys.stderr)
            return 1
        print(f"lgmp serve: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
    print("LGMP server stopped", flush=True)
    return 0


async def _bots(args: argparse.Namespace) -> int:
    from .clients.bot import play_bot

    results = []

    async def one(i: int) -> None:
        seed = None if args.seed is None else args.seed + i
        results.append(await play_bot(args.host, args.port, args.code, name=f"Bot{i + 1}", seed=seed, delay=args.delay,
                                      games=args.games, dialect=args.dialect))

    async with trio.open_nursery() as nursery:
        for i in range(args.count):
            nursery.start_soon(one, i)
            await trio.sleep(0.05)  # join in order, so seats follow bot numbers
    for r in sorted(results, key=lambda r: r.name):
        seat = f"seat {r.seat}" if r.seat else "not seated"
        place = f"place {r.results.places[r.seat - 1]}" if r.results and r.seat else "no result"
        print(f"{r.name}: {seat}, {place}")
    return 0 if all(r.results for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
