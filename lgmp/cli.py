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


def _limits_from(args: argparse.Namespace) -> Limits:
    return Limits(**{name: getattr(args, name) for name in Limits.option_names()})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgmp", description="LGMP v1.0 server and tools for Let's Go Marketing!")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the LGMP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--seed", type=int, default=None, help="seed for room codes and games (reproducible runs)")
    serve.add_argument("--server-spins", action="store_true", help="the server draws every spin itself (anti-cheat)")
    serve.add_argument("--db", default=None, help="results database: an SQLite file (default lgmp-results.sqlite3) "
                                                  "or postgresql://USER@HOST:PORT/DB")
    serve.add_argument("--no-db", action="store_true", help="do not store results")
    _add_http_options(serve)
    serve.add_argument(
        "--workers", default="1", metavar="N|auto",
        help="server processes sharing the port, to use N cores (SO_REUSEPORT; auto = one per core, at most 26). "
             "Each room lives in one worker, which owns the first letters of its codes; a worker relays a "
             "player whose room another worker owns. Results go to the one database (default 1: one process)",
    )
    _add_cluster_options(serve)
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

    play = commands.add_parser("play", help="play in this terminal")
    play.add_argument("code", help="the room code")
    _add_connect_options(play)

    demo = commands.add_parser("demo", help="start a server, a host view and bots, and show a whole game")
    demo.add_argument("--bots", type=int, default=4, help="how many bots play (1-6, default 4)")
    demo.add_argument("--delay", type=float, default=0.15, help="seconds a bot thinks before each move")
    demo.add_argument("--seed", type=int, default=None)

    rooms = commands.add_parser("rooms", help="list a running server's rooms (from its HTTP API), or a whole cluster's (--cluster)")
    rooms.add_argument("--url", default="http://127.0.0.1:8111", help="the server's HTTP address (default http://127.0.0.1:8111)")
    rooms.add_argument("--json", action="store_true", help="print the API's JSON as it is")
    rooms.add_argument("--cluster", metavar="redis://HOST:PORT[/DB]", default=None,
                       help="list every room of the cluster whose state is in this Redis/Valkey database "
                            "(code, node, created, players, phase) instead")

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

        return trio.run(run_play, args.host, args.port, args.code)
    if args.command == "demo":
        from .clients.views import run_demo

        return trio.run(run_demo, args.bots, args.delay, args.seed)
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


def _serve(args: argparse.Namespace) -> int:
    from .server.workers import WorkerSettings, run_workers, worker_count

    try:
        workers = worker_count(args.workers)
    except ValueError as exc:
        print(f"lgmp serve: {exc}", file=sys.stderr)
        return 2
    try:
        cluster = _cluster_settings(args)
    except ValueError as exc:
        print(f"lgmp serve: {exc}", file=sys.stderr)
        return 2
    if workers > 1 or cluster is not None:
        if not args.no_http:  # each worker holds only its own rooms: no one process could answer for all
            print("lgmp serve: the HTTP side (--http) is not served with --workers or --cluster; running without it",
                  file=sys.stderr)
        db = None if args.no_db else (args.db or "lgmp-results.sqlite3")
        relay = {} if cluster is None else {"relay_host": cluster.advertise[0], "relay_port": cluster.advertise[1]}
        try:
            status = run_workers(WorkerSettings(host=args.host, port=args.port, count=workers, limits=_limits_from(args),
                                                seed=args.seed, server_spins=args.server_spins, db=db,
                                                cluster=cluster, **relay))
        except OSError as exc:
            print(f"lgmp serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print("LGMP server stopped", flush=True)
        return status
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
        where = store.path if store is not None else ""
        print(f"LGMP server on {args.host}:{port}" + ("" if args.no_db else f", results in {where}"), flush=True)

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
        results.append(await play_bot(args.host, args.port, args.code, name=f"Bot{i + 1}", seed=seed, delay=args.delay, games=args.games))

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
