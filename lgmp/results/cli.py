"""``lgmp results``: read the results store -- recent games, one game, a leaderboard, CSV.

    lgmp results                      the 20 most recent games
    lgmp results --game 12            one game, player by player
    lgmp results --leaderboard        most wins and best salaries
    lgmp results --csv games.csv      every game, one row per player (``--csv`` alone: stdout)

The store is only read (``ResultsStore.open(create=False)``). Without ``--db`` it is the
file ``lgmp serve`` writes by default (``store.default_path()``, in the per-user data
folder), found from any working directory; while no game has been stored there yet,
that is said, with the path, and is not an error. A ``--db`` file that is missing, or
not an LGMP results store, is a one-line error on stderr and exit status 1.
Times in the tables are local; the CSV's are UTC.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from ..game.rules import FIELD_LETTERS, FIELD_NAMES, Field, format_salary
from .store import GameSummary, ResultsStore, StoreError, default_path

__all__ = ["add_arguments", "run", "format_table"]

_LANDING_HEADERS = ("PLAIN", "BC", "CP", "YTB", "DYK", "FIN")  # SpaceKind 0..5 order


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", default=None,
                        help=f"the results store to read (default: {default_path()}, "
                             "where lgmp serve stores results)")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--game", metavar="ID", type=_positive_int,
                      help="show one game, player by player")
    view.add_argument("--leaderboard", action="store_true",
                      help="show the players with the most wins and the best salaries")
    parser.add_argument("--csv", metavar="FILE", nargs="?", const="-", default=None,
                        help="export one row per player per game as CSV to FILE "
                             "(stdout when FILE is omitted or '-'); with --game, that game only")
    parser.add_argument("--limit", metavar="N", type=_positive_int, default=20,
                        help="rows in the recent-games and leaderboard tables (default: 20)")


def run(args: argparse.Namespace) -> int:
    """Carry out ``lgmp results``; return the exit status."""
    if args.csv is not None and args.leaderboard:
        print("lgmp results: --csv cannot be combined with --leaderboard", file=sys.stderr)
        return 2
    path = args.db if args.db is not None else default_path()
    if args.db is None and not path.exists():
        print(f"No games recorded yet: {path} does not exist (lgmp serve stores every finished game there).",
              file=sys.stderr if args.csv is not None else sys.stdout)
        return 0
    try:
        with ResultsStore.open(path, create=False) as store:
            if args.csv is not None:
                return _export(store, args.csv, args.game)
            if args.game is not None:
                return _show_game(store, args.game)
            if args.leaderboard:
                return _show_leaderboard(store, args.limit)
            return _show_recent(store, args.limit)
    except StoreError as exc:
        print(f"lgmp results: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):   # `lgmp results | head`
            _silence_stdout()
            return 1
        print(f"lgmp results: {exc}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------- views

def _show_recent(store: ResultsStore, limit: int) -> int:
    games = store.recent_games(limit)
    if not games:
        print(f"No games recorded yet in {store.path}.")
        return 0
    total = store.game_count()
    print(format_table(
        ("GAME", "ROOM", "ENDED", "DURATION", "PLAYERS", "WINNER"),
        [(g.id, g.room, _local(g.ended), _duration(g.duration), g.player_count,
          g.winner or "-") for g in games],
        right=("GAME", "DURATION", "PLAYERS"),
    ))
    if total > len(games):
        print(f"({len(games)} most recent of {total} games; --limit N for more)")
    return 0


def _show_game(store: ResultsStore, game_id: int) -> int:
    game = store.game(game_id)
    if game is None:
        print(f"lgmp results: no game {game_id} in {store.path}", file=sys.stderr)
        return 1
    players = sorted(store.players(game_id),
                     key=lambda p: (p.place is None, p.place or 0, p.seat))
    print(_game_header(game))
    print()
    print(format_table(
        ("PLACE", "SEAT", "NAME", "AVATAR", "FIELD", "CAREER", "SALARY", "CHOSEN BY"),
        [(_dash(p.place), p.seat, p.name, f"{p.avatar_colour} ({int(p.avatar)})",
          p.field_name or "-", p.career or "-", _money(p.salary),
          "server" if p.auto_career else "player") for p in players],
        right=("PLACE", "SEAT", "SALARY"),
    ))
    print()
    token_headers = tuple(f"TOK {FIELD_LETTERS[f]}" for f in Field)
    print(format_table(
        ("NAME", *token_headers, *(f"LAND {h}" for h in _LANDING_HEADERS)),
        [(p.name, *p.tokens, *p.landings) for p in players],
        right=(*token_headers, *(f"LAND {h}" for h in _LANDING_HEADERS)),
    ))
    print("(tokens per field: " + ", ".join(f"{FIELD_LETTERS[f]} = {_field_title(f)}"
                                            for f in Field) + ")")
    return 0


def _show_leaderboard(store: ResultsStore, limit: int) -> int:
    board = store.leaderboard(limit)
    if not board.most_wins and not board.best_salaries:
        print(f"No games recorded yet in {store.path}.")
        return 0
    print("Most wins")
    print(format_table(
        ("RANK", "NAME", "WINS", "GAMES", "BEST SALARY"),
        [(rank, r.name, r.wins, r.games, _money(r.best_salary))
         for rank, r in _ranked(board.most_wins, lambda r: (r.wins, -r.games))],
        right=("RANK", "WINS", "GAMES", "BEST SALARY"),
    ) if board.most_wins else "  (no winners yet)")
    print()
    print("Best salaries")
    print(format_table(
        ("RANK", "NAME", "SALARY", "CAREER", "FIELD", "GAME"),
        [(rank, r.name, _money(r.salary), r.career or "-",
          _field_title(r.field) if r.field is not None else "-", r.game_id)
         for rank, r in _ranked(board.best_salaries, lambda r: r.salary)],
        right=("RANK", "SALARY", "GAME"),
    ) if board.best_salaries else "  (no careers chosen yet)")
    return 0


def _export(store: ResultsStore, target: str, game_id: int | None) -> int:
    if game_id is not None and store.game(game_id) is None:
        print(f"lgmp results: no game {game_id} in {store.path}", file=sys.stderr)
        return 1
    if target == "-":
        store.export_csv(sys.stdout, game_id=game_id)
        sys.stdout.flush()
        return 0
    with open(target, "w", newline="", encoding="utf-8") as f:
        rows = store.export_csv(f, game_id=game_id)
    print(f"wrote {rows} player rows to {target}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- formatting

def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                 right: Sequence[str] = ()) -> str:
    """Aligned text columns; the columns named in `right` are right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [cell.rjust(w) if headers[i] in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _ranked(rows, key):
    """(rank, row) with equal keys sharing a rank (1, 2, 2, 4)."""
    rank, previous = 0, object()
    for index, row in enumerate(rows, 1):
        k = key(row)
        if k != previous:
            rank, previous = index, k
        yield rank, row


def _game_header(game: GameSummary) -> str:
    return (f"Game {game.id}  room {game.room}  seed {game.seed}\n"
            f"started {_local(game.started)}  ended {_local(game.ended)}  "
            f"duration {_duration(game.duration)}  players {game.player_count}")


def _local(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _duration(seconds: float) -> str:
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _money(dollars: int | None) -> str:
    return "-" if dollars is None else format_salary(dollars)


def _dash(value: object) -> object:
    return "-" if value is None else value


def _field_title(field: Field) -> str:
    return FIELD_NAMES[field]


def _silence_stdout() -> None:
    # Python's recipe: stop the interpreter's final flush from raising again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
