"""``lgmp``: the command line. Sub-commands: serve, host, bot, play, demo, results, rooms.

What a person meets here, whatever they type:

* A usage error is one line on stderr and exit status 2 (the parser checks
  ranges and conflicts, so nothing half-starts with a bad option).
* Any other error a user can cause (a port in use, no server, an unknown room)
  is one line on stderr saying what to do, and exit status 1. Never a traceback.
* Ctrl-C stops ``host``, ``bot``, ``demo`` and ``play`` with at most one line
  and exit status 130; it stops ``serve`` cleanly, which is its normal end, so 0.
* Global options (``--log-level``) work before or after the sub-command.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from . import __version__
from .game import rules
from .limits import Limits

DEFAULT_PORT = 1111
SEATS = len(rules.SEATS)  # how many players a room seats, so how many bots at most
INTERRUPTED = 130  # the shells' status for a program stopped by SIGINT (128 + 2)
LOG_LEVELS = ("debug", "info", "warning", "error")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line: what is wrong and where to read more."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


class _RoomLogFilter(logging.Filter):
    """Log lines name their room and seat in brackets; lines without one say so."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("["):
            record.msg, record.args = "[-] " + message, ()
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so a full-screen view can route it."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _setup_logging(level: str) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(_RoomLogFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


# --------------------------------------------------------------------------- option types


def _whole(low: int, high: float = math.inf, what: str = "a whole number") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            bounds = f"from {low} to {high}" if high != math.inf else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {bounds}")
        return value

    return parse


def _number(unit: str, *, above_zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not math.isfinite(value) or value < 0 or (above_zero and value == 0):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {'more than 0' if above_zero else '0 or more'} {unit}")
        return value

    return parse


_seconds = _number("seconds")


def _room_code(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 4 or not code.isascii() or not code.isalpha():
        raise argparse.ArgumentTypeError(f"{text!r} is not a room code: a code is four letters A-Z, like QZMB")
    return code


_listen_port = _whole(0, 65535, "a port number")
_server_port = _whole(1, 65535, "a port number")

DIALECT_NAMES = ("v1.0", "unity-2022")  # lgmp.wire.dialects.DIALECTS, without importing the codec here


def _add_dialect_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--dialect", choices=DIALECT_NAMES, default="v1.0",
                        help=f"{what} (default v1.0; unity-2022: the game's Unity client, PROTOCOL.md chapter 12)")


def _port_and_dialect(text: str) -> tuple[int, str]:
    """``--also-listen PORT:DIALECT``."""
    port, _, dialect = text.partition(":")
    if dialect not in DIALECT_NAMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not PORT:DIALECT (a dialect is one of {', '.join(DIALECT_NAMES)})")
    return _listen_port(port), dialect


def _add_connect_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=_server_port, default=DEFAULT_PORT, help=f"server port (default {DEFAULT_PORT})")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group("limits (see lgmp/limits.py for the reason behind each default)")
    for f in dataclasses.fields(Limits):
        default = getattr(defaults, f.name)
        # Counts of things are 1 or more (0 where it turns a limit off), rates above 0,
        # times 0 or more seconds.
        if isinstance(default, int):
            parse, metavar = _whole(f.metadata.get("minimum", 1)), "N"
        elif f.name.endswith("_rate"):
            parse, metavar = _number("packets per second", above_zero=True), "RATE"
        else:
            parse, metavar = _seconds, "SECONDS"
        group.add_argument("--" + f.name.replace("_", "-"), type=parse, default=default, metavar=metavar,
                           help=f"{f.metadata.get('help', '')} (default {default})")


def _limits_from(args: argparse.Namespace) -> Limits:
    return Limits(**{name: getattr(args, name) for name in Limits.option_names()})


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On the sub-commands the default is SUPPRESS, so an option given before the
    # sub-command is not overwritten by the sub-command's own default.
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=None if top else argparse.SUPPRESS,
                        help="log detail on stderr (default: info for serve, warning for the rest)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lgmp", description="LGMP v1.0 server and tools for Let's Go Marketing!")
    parser.add_argument("--version", action="version", version=f"lgmp {__version__} (LGMP v1.0)")
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        _add_global_options(sub, top=False)
        return sub

    serve = command("serve", "run the LGMP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_listen_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--seed", type=int, default=None, help="seed for room codes and games (reproducible runs)")
    serve.add_argument("--server-spins", action="store_true", help="the server draws every spin itself (anti-cheat)")
    store = serve.add_mutually_exclusive_group()
    store.add_argument("--db", metavar="PATH|URL", default=None,
                       help="results database: an SQLite file (default: in your data folder; printed at start) "
                            "or postgresql://USER@HOST:PORT/DB")
    store.add_argument("--no-db", action="store_true", help="do not store results")
    _add_http_options(serve)
    _add_dialect_option(serve, "what clients on --port speak")
    serve.add_argument("--also-listen", action="append", type=_port_and_dialect, default=[], metavar="PORT:DIALECT",
                       help="listen on another port too, for clients of that dialect; rooms are shared (repeatable)")
    serve.add_argument(
        "--workers", default="1", metavar="N|auto",
        help="server processes sharing the port, to use N cores (SO_REUSEPORT; auto = one per core, at most 26). "
             "Each room lives in one worker, which owns the first letters of its codes; a worker relays a "
             "player whose room another worker owns. Results go to the one database (default 1: one process)",
    )
    _add_cluster_options(serve)
    serve.add_argument("--proxy-protocol", action="store_true",
                       help="every connection to --port starts with a PROXY protocol v2 header from a relay or load "
                            "balancer, whose client address is then the source the per-source limits count (only for "
                            "a port nothing but the relay can reach)")
    _add_limit_options(serve)

    host = command("host", "create a room and show its board as the game goes")
    _add_connect_options(host)
    host.add_argument("--start-when", type=_whole(1, SEATS), default=None, metavar="N",
                      help="start once N players are ready (default: when you press Enter)")
    host.add_argument("--games", type=_whole(1), default=1, metavar="N", help="games to host before leaving (default 1)")

    bot = command("bot", "bots join a room and play until the game ends")
    bot.add_argument("code", type=_room_code, help="the room code (four letters, shown on the host's screen)")
    _add_connect_options(bot)
    bot.add_argument("--count", type=_whole(1, SEATS), default=1, metavar="N", help=f"how many bots, 1-{SEATS} (default 1)")
    bot.add_argument("--delay", type=_seconds, default=0.5, metavar="SECONDS",
                     help="seconds a bot thinks before each move (default 0.5)")
    bot.add_argument("--seed", type=int, default=None, help="seed for the bots' choices (reproducible runs)")
    bot.add_argument("--games", type=_whole(1), default=1, metavar="N", help="games to play before leaving (default 1)")
    _add_dialect_option(bot, "what the bots speak")

    play = command("play", "play in this terminal")
    play.add_argument("code", type=_room_code, help="the room code (four letters, shown on the host's screen)")
    _add_connect_options(play)
    _add_dialect_option(play, "what to speak")

    demo = command("demo", "start a server, a host screen and bots, and show a whole game")
    demo.add_argument("--bots", type=_whole(1, SEATS), default=4, metavar="N", help=f"how many bots play, 1-{SEATS} (default 4)")
    demo.add_argument("--delay", type=_seconds, default=0.15, metavar="SECONDS",
                      help="seconds a bot thinks before each move (default 0.15)")
    demo.add_argument("--seed", type=int, default=None, help="seed for the room and the bots (reproducible runs)")

    from .results import cli as results_cli

    results_cli.add_arguments(command("results", "show stored game results"))

    rooms = command("rooms", "list a running server's rooms (from its HTTP API), or a whole cluster's (--cluster)")
    rooms.add_argument("--url", default="http://127.0.0.1:8111", help="the server's HTTP address (default http://127.0.0.1:8111)")
    rooms.add_argument("--json", action="store_true", help="print the API's JSON as it is")
    rooms.add_argument("--cluster", metavar="redis://HOST:PORT[/DB]", default=None,
                       help="list every room of the cluster whose state is in this Redis/Valkey database "
                            "(code, node, created, players, phase) instead")
    return parser


# --------------------------------------------------------------------------- running


def main(argv: list[str] | None = None) -> int:
    command = ""
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        _setup_logging(args.log_level or ("info" if command == "serve" else "warning"))
        return _run(args)
    except* KeyboardInterrupt:  # Ctrl-C outside the commands' own handling (while starting up, say)
        pass
    print(f"lgmp {command}: stopped." if command else "lgmp: stopped.", file=sys.stderr)
    return INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "host":
        from .clients.host import run_host

        return _until_interrupted("host", lambda: run_host(args.host, args.port, args.start_when, args.games),
                                  "stopped; the room is closed.")
    if args.command == "bot":
        from .clients.bots import run_bots

        return _until_interrupted("bot", lambda: run_bots(args.host, args.port, args.code, count=args.count,
                                                          delay=args.delay, seed=args.seed, games=args.games,
                                                          dialect=args.dialect),
                                  "stopped; the bots left the room.")
    if args.command == "play":
        from .clients.play import run_play

        # The goodbye goes where the game went, and ends a prompt the player was answering.
        return _until_interrupted("play", lambda: run_play(args.host, args.port, args.code, args.dialect),
                                  "\nYou left the game.",
                                  plain=True)
    if args.command == "demo":
        from .clients.demo import run_demo

        return _until_interrupted("demo", lambda: run_demo(args.bots, args.delay, args.seed), "stopped.")
    if args.command == "results":
        from .results.cli import run

        return run(args)
    if args.command == "rooms":
        if args.cluster is not None:
            from .cluster.rooms_cli import run as run_cluster_rooms

            return run_cluster_rooms(args)
        from .http.rooms_cli import run_rooms

        return run_rooms(args.url, as_json=args.json)
    raise AssertionError(args.command)


def _until_interrupted(command: str, body: Callable[[], Awaitable[int]], goodbye: str, *, plain: bool = False) -> int:
    """Run ``body`` under trio; Ctrl-C or SIGTERM cancels it (its cleanup runs), says ``goodbye``, exits 130.

    The signal is received by trio rather than raised as KeyboardInterrupt, so it never
    lands half-way through starting a task. ``plain``: the goodbye goes to stdout, as is.
    """
    interrupted = False

    async def run() -> int:
        status = INTERRUPTED
        async with trio.open_nursery() as nursery:
            async def watch() -> None:
                nonlocal interrupted
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()
                        return

            async def work() -> None:
                nonlocal status
                status = await body()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(work)
        return status

    status = trio.run(run)
    if interrupted:
        if plain:
            print(goodbye, flush=True)
        else:
            print(f"lgmp {command}: {goodbye}", file=sys.stderr, flush=True)
        return INTERRUPTED
    return status


def _add_http_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("HTTP: metrics, room API, spectator pages")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--http", default="127.0.0.1:8111", metavar="HOST:PORT",
                        help="where to serve HTTP (default 127.0.0.1:8111; port 0 picks a free one)")
    choice.add_argument("--no-http", action="store_true", help="serve no HTTP")
    token = group.add_mutually_exclusive_group()
    token.add_argument("--admin-token", default=None, metavar="TOKEN",
                       help="bearer token that allows DELETE /api/rooms/CODE (none: refused)")
    token.add_argument("--admin-token-file", default=None, metavar="PATH", help="read the admin token from this file")


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


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster: several nodes sharing room codes over Redis (README: Running a cluster)")
    group.add_argument("--cluster", metavar="redis://HOST:PORT[/DB]", default=None,
                       help="join the cluster whose state is in this Redis/Valkey database")
    group.add_argument("--advertise", metavar="HOST:PORT", default=None,
                       help="with --cluster: this node's relay address, listened on here and reached by the other "
                            "nodes (worker i of --workers N listens on PORT+i)")
    group.add_argument("--lease-ttl", metavar="SECONDS", type=float, default=None,
                       help="with --cluster: lease TTL of the node and its letters, renewed every third of it; "
                            "a dead node's letters are taken over after it (default 10)")
    group.add_argument("--prefer-letters", metavar="LETTERS", default="",
                       help="with --cluster: letters this node takes first (e.g. A-M), so a front such as "
                            "HAProxy can route a code's first letter to its owner")


def _cluster_settings(args: argparse.Namespace):
    """The ClusterSettings that --cluster and its options ask for, or None; ValueError for a bad option."""
    if args.cluster is None:
        if args.advertise or args.lease_ttl is not None or args.prefer_letters:
            raise ValueError("--advertise, --lease-ttl and --prefer-letters go with --cluster")
        return None
    from .cluster.leases import parse_letters
    from .cluster.member import LEASE_TTL, ClusterSettings
    from .cluster.plan import parse_address
    from .cluster.registry import parse_redis_url

    parse_redis_url(args.cluster)
    try:
        import coredis  # noqa: F401 -- the Redis client the members use
    except ImportError:
        raise ValueError("--cluster needs coredis: pip install 'lgmp[cluster]'") from None
    if not args.advertise:
        raise ValueError("--cluster needs --advertise HOST:PORT (where the other nodes reach this one)")
    ttl = LEASE_TTL if args.lease_ttl is None else args.lease_ttl
    if not ttl >= 0.3:
        raise ValueError("--lease-ttl must be at least 0.3 seconds")
    return ClusterSettings(url=args.cluster, advertise=parse_address(args.advertise), lease_ttl=ttl,
                           prefer=parse_letters(args.prefer_letters))


def _serve_workers(args: argparse.Namespace, workers: int, cluster, db: str | None) -> int:
    """``--workers N`` or ``--cluster``: a parent process and its workers (lgmp.server.workers)."""
    from .server.workers import WorkerSettings, run_workers

    if not args.no_http:  # each worker holds only its own rooms: no one process could answer for all
        print("lgmp serve: the HTTP side (--http) is not served with --workers or --cluster; running without it",
              file=sys.stderr)
    relay = {} if cluster is None else {"relay_host": cluster.advertise[0], "relay_port": cluster.advertise[1]}
    try:
        status = run_workers(WorkerSettings(host=args.host, port=args.port, count=workers, limits=_limits_from(args),
                                            seed=args.seed, server_spins=args.server_spins, db=db,
                                            cluster=cluster, **relay))
    except OSError as exc:
        print(f"lgmp serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("LGMP server stopped.", flush=True)
    return status


def _serve(args: argparse.Namespace) -> int:
    from .results.journal import durable_results
    from .server.process import run_server
    from .server.workers import worker_count

    try:
        workers = worker_count(args.workers)
        cluster = _cluster_settings(args)
    except ValueError as exc:
        print(f"lgmp serve: {exc}", file=sys.stderr)
        return 2
    if args.proxy_protocol and (workers > 1 or cluster is not None):
        print("lgmp serve: --proxy-protocol is for a single process; with --workers or --cluster, send the "
              "load balancer's PROXY v2 headers to the relay port (it reads them)", file=sys.stderr)
        return 2
    if (workers > 1 or cluster is not None) and (args.dialect != "v1.0" or args.also_listen):
        # A relayed connection is read as v1.0 by the worker that owns its room.
        print("lgmp serve: --dialect and --also-listen need a single process (not --workers or --cluster)", file=sys.stderr)
        return 2

    store = where = None
    if not args.no_db:
        from .results.store import ResultsStore, StoreError, default_path, is_database_url

        where = args.db if args.db and is_database_url(args.db) else Path(args.db) if args.db else default_path()
        try:
            if not args.db:
                where.parent.mkdir(parents=True, exist_ok=True)  # the data folder, on a first run
            if workers > 1 or cluster is not None:  # each worker opens the one database itself
                return _serve_workers(args, workers, cluster, str(where))
            store = ResultsStore.open(where)
        except StoreError as exc:
            print(f"lgmp serve: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"lgmp serve: {where.parent}: cannot create the folder: {exc.strerror or exc}", file=sys.stderr)
            return 1
    elif workers > 1 or cluster is not None:
        return _serve_workers(args, workers, cluster, None)

    try:
        companion = _http_companion(args, str(where) if where is not None else None)
    except ValueError as exc:
        print(f"lgmp serve: --http: {exc}" if "HOST:PORT" in str(exc) else f"lgmp serve: {exc}", file=sys.stderr)
        if store is not None:
            store.close()
        return 2

    # FINL only once a game is durable: the database, or else a journal imported at the next start.
    on_game_finished = durable_results(store, where) if store is not None else None

    def ready(port: int) -> None:
        shown = where.resolve() if isinstance(where, Path) else store.path if store is not None else where
        stored = f", results in {shown}" if where is not None else ", results not stored (--no-db)"
        others = "".join(f", {p} ({d})" for p, d in args.also_listen)
        dialects = f" ({args.dialect}){others}" if args.also_listen or args.dialect != "v1.0" else ""
        print(f"LGMP server on {args.host}:{port}{dialects}{stored}. Ctrl-C stops it.", flush=True)

    try:
        trio.run(
            lambda: run_server(
                host=args.host,
                port=args.port,
                limits=_limits_from(args),
                seed=args.seed,
                server_spins=args.server_spins,
                on_game_finished=on_game_finished if store is not None else None,
                ready=ready,
                dialect=args.dialect,
                also_listen=args.also_listen,
                companion=companion,
                proxy_protocol=args.proxy_protocol,
            )
        )
    except* OSError as group:  # a listening socket: a port in use, an address that is not ours or unknown
        exc = group.exceptions[0]
        if type(exc).__name__ == "CannotListen":  # the HTTP side's address: its message says which
            failure = f"lgmp serve: {exc.strerror}"
        else:
            failure = f"lgmp serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
    else:
        failure = None
    finally:
        if store is not None:
            store.close()
    if failure:
        print(failure, file=sys.stderr)
        return 1
    print("LGMP server stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
