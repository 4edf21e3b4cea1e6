"""The results store: every finished game, durably, in an SQL database.

RULES.md "End of the game": the original recorded, per player, name, avatar colour,
field, career, tokens per field and landings per space kind, and the game's duration.
We keep that (plus room code, seed, times, place, salary and whether the server chose
the career) in one SQL database with two backends sharing this module's schema,
migrations and queries:

* SQLite (``lgmp.results.sqlite``), the default: one embedded file -- the standard
  library's ``sqlite3``, nothing to install;
* PostgreSQL (``lgmp.results.postgres``), when the target is a ``postgresql://`` URL:
  one database that every node of a cluster writes to (psycopg 3).

Durability
    When ``record_game`` returns, the game is committed durably and survives a crash,
    SIGKILL or power loss (each backend says how). Each game is one transaction, so a
    game is stored whole or not at all.

Threads
    ``record_game`` is synchronous; the server calls it from a worker thread. One
    connection (``check_same_thread=False``) is shared behind a lock, so a store may be
    used from any number of threads. Other processes (``lgmp results``) may read the
    file while the server writes: WAL lets readers and the writer run side by side.

Recognising our database
    The ``meta`` table holds ``application = lgmp-results``, and each backend keeps
    the schema version where it can read it before anything else (SQLite: ``PRAGMA
    user_version`` and ``PRAGMA application_id``; PostgreSQL: ``meta``). Opening looks
    at these before writing anything, so a database that is not ours -- random bytes,
    a corrupt file, another application's tables, a store written by a newer lgmp --
    gives a ``StoreError`` and is left untouched. An empty one (a 0-byte file, an
    SQLite database with nothing in it, a PostgreSQL schema without our tables)
    counts as a new store when ``create`` is true.

Schema changes
    ``MIGRATIONS`` is an ordered list; migration *n* takes the schema from version n-1
    to n. Its statements are written once for both backends: a few dialect words in
    braces (``{id}``, ``{int64}``, ``{real}``, ``{now}``) are spelled by each backend
    (its ``WORDS``), and an ``Only`` statement runs on one backend alone. Opening
    applies the missing migrations, and the new version, in a single transaction
    (under a lock that other processes opening the same store wait for): a migration
    that fails leaves the store at its old version. Never edit a released migration;
    append a new one.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterable, Iterator, Protocol, Sequence

import platformdirs

from ..game.engine import GameRecord, PlayerRecord
from ..wire.errors import LGMPError
from ..game.rules import AVATAR_NAMES, FIELD_NAMES, Avatar, Field, SpaceKind

__all__ = [
    "DEFAULT_DB", "default_path", "APPLICATION_ID", "APPLICATION_MARKER", "SCHEMA_VERSION", "MIGRATIONS",
    "TOKEN_COLUMNS", "LANDING_COLUMNS", "CSV_COLUMNS",
    "StoreError", "Migration", "Only", "render", "is_database_url", "shown", "GameSummary", "PlayerRow", "WinsRow", "SalaryRow",
    "Leaderboard", "ResultsStore",
]

log = logging.getLogger("lgmp.results.store")

#: The results file's name in the per-user data folder (``default_path``).
DEFAULT_DB = "lgmp-results.sqlite3"


def default_path() -> Path:
    """Where results are kept unless a path is given: the per-user data folder, so the
    server and ``lgmp results`` find the same file from any working directory
    ($XDG_DATA_HOME/lgmp, else ~/.local/share/lgmp, on Linux; platformdirs elsewhere)."""
    return platformdirs.user_data_path("lgmp", appauthor=False) / DEFAULT_DB

#: ``PRAGMA application_id`` of every LGMP results store: b"LGMP" as a big-endian int.
APPLICATION_ID = int.from_bytes(b"LGMP", "big")   # 0x4C474D50 = 1279741264
#: ``meta.value`` for ``meta.key = 'application'``.
APPLICATION_MARKER = "lgmp-results"

# Column names, in Field (1..6) and SpaceKind (0..5) order -- the order of
# PlayerRecord.tokens and PlayerRecord.landings. Spelled out rather than derived from
# the enums: they are part of the schema, which must not change if an enum is renamed.
TOKEN_COLUMNS: tuple[str, ...] = (
    "tokens_design",
    "tokens_public_relations",
    "tokens_business_data_analytics",
    "tokens_graphic_media_management",
    "tokens_marketing",
    "tokens_advertising",
)
LANDING_COLUMNS: tuple[str, ...] = (
    "landed_plain",
    "landed_brand_crisis",
    "landed_career_point",
    "landed_youre_the_boss",
    "landed_did_you_know",
    "landed_finish",
)
assert len(TOKEN_COLUMNS) == len(Field) and len(LANDING_COLUMNS) == len(SpaceKind)


class StoreError(LGMPError):
    """The results store cannot be used: missing, corrupt, foreign, newer, or failing."""


# --------------------------------------------------------------------------- schema

@dataclass(frozen=True, slots=True)
class Only:
    """A migration statement for one backend's dialect alone (``sqlite``, ``postgresql``)."""
    dialect: str
    statement: str


@dataclass(frozen=True, slots=True)
class Migration:
    version: int                         # the schema version this migration produces
    description: str
    statements: tuple[str | Only, ...]   # run in order, inside the migration transaction


_DIALECT_WORD = re.compile(r"\{(id|int64|real|now)\}")


def render(statement: str | Only, dialect: str, words: dict[str, str]) -> str | None:
    """``statement`` as ``dialect`` spells it (its ``words`` for ``{id}``, ``{int64}``,
    ``{real}`` and ``{now}``), or None when it is another dialect's ``Only``."""
    if isinstance(statement, Only):
        if statement.dialect != dialect:
            return None
        statement = statement.statement
    return _DIALECT_WORD.sub(lambda m: words[m.group(1)], statement)


def _count_columns(names: Sequence[str]) -> str:
    return "".join(f"    {name} INTEGER NOT NULL DEFAULT 0 CHECK ({name} >= 0),\n"
                   for name in names)


_V1 = (
    "CREATE TABLE meta (\n"
    "    key TEXT PRIMARY KEY,\n"
    "    value TEXT NOT NULL\n"
    ")",
    "INSERT INTO meta (key, value) VALUES ('application', 'lgmp-results'), "
    "('created', {now})",
    "CREATE TABLE games (\n"
    "    id {id},\n"
    "    room TEXT NOT NULL,\n"
    "    started {real} NOT NULL,              -- unix time (wall clock)\n"
    "    ended {real} NOT NULL,                -- unix time (wall clock), when FINL was sent\n"
    "    duration {real} NOT NULL CHECK (duration >= 0),   -- seconds, STRT to FINL\n"
    "    seed {int64} NOT NULL,              -- the game's RNG seed (replays it)\n"
    "    player_count INTEGER NOT NULL CHECK (player_count BETWEEN 1 AND 6)\n"
    ")",
    "CREATE INDEX games_by_ended ON games (ended)",
    "CREATE TABLE players (\n"
    "    game_id {int64} NOT NULL REFERENCES games (id) ON DELETE CASCADE,\n"
    "    seat INTEGER NOT NULL CHECK (seat BETWEEN 1 AND 6),\n"
    "    name TEXT NOT NULL,\n"
    "    avatar INTEGER NOT NULL CHECK (avatar BETWEEN 1 AND 6),   -- Avatar number\n"
    "    place INTEGER CHECK (place BETWEEN 1 AND 6),              -- 1 = first to finish\n"
    "    field INTEGER CHECK (field BETWEEN 1 AND 6),              -- Field number\n"
    "    career TEXT,\n"
    "    salary INTEGER CHECK (salary >= 0),                       -- dollars\n"
    + _count_columns(TOKEN_COLUMNS)
    + _count_columns(LANDING_COLUMNS)
    + "    auto_career INTEGER NOT NULL CHECK (auto_career IN (0, 1)),  -- server chose it\n"
    "    PRIMARY KEY (game_id, seat),\n"
    "    UNIQUE (game_id, avatar)\n"
    ")",
    "CREATE INDEX players_by_name ON players (name)",
    Only("sqlite", f"PRAGMA application_id = {APPLICATION_ID}"),
)

#: Ordered; MIGRATIONS[i].version == i + 1. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "games and their players", _V1),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def _check_migrations(migrations: Sequence[Migration]) -> int:
    for index, migration in enumerate(migrations):
        if migration.version != index + 1:
            raise AssertionError(f"migration #{index} has version {migration.version}, "
                                 f"expected {index + 1}")
    return len(migrations)


_check_migrations(MIGRATIONS)


# --------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class GameSummary:
    id: int
    room: str
    started: float        # unix time
    ended: float          # unix time
    duration: float       # seconds
    seed: int
    player_count: int
    winner: str | None    # the name in place 1, if any


@dataclass(frozen=True, slots=True)
class PlayerRow:
    game_id: int
    seat: int
    name: str
    avatar: Avatar
    place: int | None
    field: Field | None
    career: str | None
    salary: int | None         # dollars
    tokens: tuple[int, ...]    # per Field, 1..6 order
    landings: tuple[int, ...]  # per SpaceKind, 0..5 order
    auto_career: bool

    @property
    def avatar_colour(self) -> str:
        return AVATAR_NAMES[self.avatar]

    @property
    def field_name(self) -> str | None:
        return None if self.field is None else FIELD_NAMES[self.field]

    def to_record(self) -> PlayerRecord:
        return PlayerRecord(
            seat=self.seat, name=self.name, avatar=self.avatar, place=self.place,
            field=self.field, career=self.career, salary=self.salary,
            tokens=self.tokens, landings=self.landings, auto_career=self.auto_career,
        )


@dataclass(frozen=True, slots=True)
class WinsRow:
    name: str
    games: int
    wins: int
    best_salary: int | None


@dataclass(frozen=True, slots=True)
class SalaryRow:
    name: str
    salary: int
    career: str | None
    field: Field | None
    game_id: int


@dataclass(frozen=True, slots=True)
class Leaderboard:
    most_wins: tuple[WinsRow, ...]       # names with at least one win
    best_salaries: tuple[SalaryRow, ...]  # each name's best salary, best first


#: The CSV export's header: one row per player per game.
CSV_COLUMNS: tuple[str, ...] = (
    "game_id", "room", "started_utc", "ended_utc", "duration_s", "seed", "player_count",
    "seat", "name", "avatar", "avatar_colour", "place", "field", "field_name", "career",
    "salary", *TOKEN_COLUMNS, *LANDING_COLUMNS, "auto_career",
)

_PLAYER_COLUMNS = ("game_id", "seat", "name", "avatar", "place", "field", "career",
                   "salary", *TOKEN_COLUMNS, *LANDING_COLUMNS, "auto_career")
_PLAYER_SELECT = ", ".join(f"p.{c}" for c in _PLAYER_COLUMNS)
_INSERT_PLAYER = (f"INSERT INTO players ({', '.join(_PLAYER_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(_PLAYER_COLUMNS))})")
#: A name's wins, in SQL both dialects read (PostgreSQL cannot sum a boolean).
_WINS = "sum(CASE WHEN place = 1 THEN 1 ELSE 0 END)"
_GAME_SELECT = (
    "SELECT g.id, g.room, g.started, g.ended, g.duration, g.seed, g.player_count, "
    "(SELECT w.name FROM players AS w WHERE w.game_id = g.id AND w.place = 1) "
    "FROM games AS g"
)


def _player_values(game_id: int, player: PlayerRecord) -> tuple:
    """One players row for `player`, in _PLAYER_COLUMNS order."""
    return (
        game_id, int(player.seat), str(player.name), int(player.avatar),
        None if player.place is None else int(player.place),
        None if player.field is None else int(player.field),
        player.career,
        None if player.salary is None else int(player.salary),
        *(int(n) for n in player.tokens),
        *(int(n) for n in player.landings),
        int(bool(player.auto_career)),
    )


def _player_row(row: Sequence) -> PlayerRow:
    n_tok, n_land = len(TOKEN_COLUMNS), len(LANDING_COLUMNS)
    (game_id, seat, name, avatar, place, field, career, salary), rest = row[:8], row[8:]
    return PlayerRow(
        game_id=game_id, seat=seat, name=name, avatar=Avatar(avatar), place=place,
        field=None if field is None else Field(field), career=career, salary=salary,
        tokens=tuple(rest[:n_tok]), landings=tuple(rest[n_tok:n_tok + n_land]),
        auto_career=bool(rest[n_tok + n_land]),
    )


def _utc(timestamp: float) -> str:
    """A unix time as spreadsheets read it: 'YYYY-MM-DD HH:MM:SS', UTC."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _blank(value: object) -> object:
    return "" if value is None else value


# --------------------------------------------------------------------------- backends

class Database(Protocol):
    """What ``ResultsStore`` needs of a backend (``lgmp.results.sqlite``,
    ``lgmp.results.postgres``): one connection, driven under the store's lock.
    Statements use ``?`` placeholders; a backend whose driver wants another style
    translates them."""

    dialect: str                               # "sqlite" | "postgresql", for ``Only``
    described: str                             # "an SQLite database", for messages
    location: object                           # what messages name: a path, a URL without password
    errors: tuple[type[BaseException], ...]    # the driver's errors
    WORDS: dict[str, str]                      # the schema's dialect words, spelled

    def connect(self, create: bool) -> None: ...             # raises StoreError
    def identify(self) -> tuple[str, int]: ...               # ('empty'|'ours'|'foreign', version)
    def prepare(self) -> None: ...                           # session settings, once ours
    def begin_migration(self) -> None: ...                   # BEGIN + a lock other openers wait on
    def begin_write(self) -> None: ...
    def set_version(self, version: int) -> None: ...
    def execute(self, sql: str, params: Sequence = ()): ...  # a cursor (fetchone/fetchall)
    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None: ...
    def insert_returning_id(self, sql: str, params: Sequence) -> int: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...                          # only if a transaction is open
    def describe(self, exc: BaseException) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...


_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a PostgreSQL database (a ``postgresql://`` URL) rather
    than an SQLite file."""
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


def shown(target: str | os.PathLike[str]) -> str:
    """``target`` as messages and logs may show it: a URL without its password."""
    if not is_database_url(target):
        return os.fspath(target)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(target)
    if parts.password is None:
        return target
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _database_for(target: str | os.PathLike[str]) -> Database:
    if is_database_url(target):
        from .postgres import PostgresDatabase

        return PostgresDatabase(target)
    from .sqlite import SQLiteDatabase

    return SQLiteDatabase(Path(os.fspath(target)))



# --------------------------------------------------------------------------- the store

class ResultsStore:
    """A results store, open. Make one with `ResultsStore.open`; safe across threads."""

    def __init__(self, db: Database):
        self.path = db.location   # what messages name: the file, or the URL without its password
        self._db: Database | None = db
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> ResultsStore:
        """Open (and with `create`, make or upgrade) the store at `path`: an SQLite file
        (None: ``default_path()``), or a PostgreSQL database named by a ``postgresql://`` URL.

        create=False is for readers: a missing or empty store is a StoreError. Either
        way, a database that is not an LGMP results store -- corrupt, another program's,
        or written by a newer lgmp -- is a StoreError and is not modified.
        """
        db = _database_for(default_path() if path is None else path)
        db.connect(create)
        try:
            cls._prepare(db, create)
        except BaseException:
            db.close()
            raise
        return cls(db)

    @staticmethod
    def _prepare(db: Database, create: bool) -> None:
        current = _check_migrations(MIGRATIONS)
        try:
            kind, version = db.identify()
            ResultsStore._judge(db, kind, version, current, create)
            # From here on the store is ours (or empty and ours to make): writes are fine.
            db.prepare()
            if version < current:
                ResultsStore._migrate(db, create, current)
        except db.errors as exc:
            raise StoreError(f"{db.location}: cannot open the results store: {db.describe(exc)}") from exc

    @staticmethod
    def _judge(db: Database, kind: str, version: int, current: int, create: bool) -> None:
        if kind == "foreign":
            raise StoreError(f"{db.location}: not an LGMP results store "
                             f"({db.described} of some other application)")
        if kind == "empty" and not create:
            raise StoreError(f"{db.location}: not an LGMP results store (an empty database; "
                             "no game has been recorded in it)")
        if version > current:
            raise StoreError(f"{db.location}: written by a newer lgmp (results schema version "
                             f"{version}; this lgmp knows up to {current}); upgrade lgmp "
                             "to use it")

    @staticmethod
    def _migrate(db: Database, create: bool, current: int) -> None:
        db.begin_migration()
        try:
            # Look again under the lock: another process may have got here first.
            kind, version = db.identify()
            ResultsStore._judge(db, kind, version, current, create)
            for migration in MIGRATIONS[version:]:
                for statement in migration.statements:
                    sql = render(statement, db.dialect, db.WORDS)
                    if sql is not None:
                        db.execute(sql)
                db.set_version(migration.version)
                log.info("%s: results schema now version %d (%s)", db.location,
                         migration.version, migration.description)
            db.commit()
        except BaseException:
            db.rollback()
            raise

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._read(lambda db: db.identify()[1])

    # ----------------------------------------------------------------- writing

    def record_game(self, *, room: str, seed: int, record: GameRecord, started: float,
                    ended: float) -> int:
        """Store one finished game, all or nothing; return its id once it is on disk.

        `started` and `ended` are wall-clock unix times; the duration is the record's.
        """
        if not record.players or len(record.players) > 6:
            raise ValueError(f"a game has 1-6 players, got {len(record.players)}")
        for player in record.players:
            if len(player.tokens) != len(TOKEN_COLUMNS) \
                    or len(player.landings) != len(LANDING_COLUMNS):
                raise ValueError(f"seat {player.seat}: expected {len(TOKEN_COLUMNS)} token "
                                 f"and {len(LANDING_COLUMNS)} landing counts")
        if not all(math.isfinite(t) for t in (started, ended, record.duration)):
            raise ValueError("times must be finite numbers")
        if not -2**63 <= seed < 2**63:
            raise ValueError(f"seed {seed} does not fit in 64 bits")

        with self._lock:
            db = self._connection()
            try:
                db.begin_write()
                try:
                    game_id = db.insert_returning_id(
                        "INSERT INTO games (room, started, ended, duration, seed, player_count) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (str(room), float(started), float(ended), float(record.duration),
                         int(seed), len(record.players)),
                    )
                    db.executemany(_INSERT_PLAYER,
                                   [_player_values(game_id, p) for p in record.players])
                    db.commit()
                except BaseException:
                    db.rollback()
                    raise
            except db.errors as exc:
                raise StoreError(f"{self.path}: recording the game of room {room} failed: "
                                 f"{db.describe(exc)}") from exc
        return game_id

    # ----------------------------------------------------------------- reading

    def recent_games(self, limit: int = 20) -> list[GameSummary]:
        """The `limit` most recently ended games, newest first."""
        _check_limit(limit)
        rows = self._read(lambda c: c.execute(
            f"{_GAME_SELECT} ORDER BY g.ended DESC, g.id DESC LIMIT ?", (limit,)).fetchall())
        return [GameSummary(*row) for row in rows]

    def game(self, game_id: int) -> GameSummary | None:
        row = self._read(lambda c: c.execute(
            f"{_GAME_SELECT} WHERE g.id = ?", (int(game_id),)).fetchone())
        return None if row is None else GameSummary(*row)

    def players(self, game_id: int) -> list[PlayerRow]:
        """The game's players in seat order (empty for an unknown game)."""
        rows = self._read(lambda c: c.execute(
            f"SELECT {_PLAYER_SELECT} FROM players AS p WHERE p.game_id = ? ORDER BY p.seat",
            (int(game_id),)).fetchall())
        return [_player_row(row) for row in rows]

    def game_count(self) -> int:
        return self._read(lambda c: c.execute("SELECT count(*) FROM games").fetchone()[0])

    def leaderboard(self, limit: int = 10) -> Leaderboard:
        """Players (by name) with the most wins, and each name's best salary."""
        _check_limit(limit)

        def query(c: Database) -> Leaderboard:
            wins = c.execute(
                f"SELECT name, count(*) AS games, {_WINS} AS wins, max(salary) "
                f"FROM players GROUP BY name HAVING {_WINS} > 0 "
                "ORDER BY wins DESC, games ASC, name ASC LIMIT ?", (limit,)).fetchall()
            # Each name's best row (the earliest game among equal salaries); a window
            # function, which both dialects have, rather than SQLite's bare columns.
            salaries = c.execute(
                "SELECT name, salary, career, field, game_id FROM ("
                "SELECT name, salary, career, field, game_id, row_number() OVER "
                "(PARTITION BY name ORDER BY salary DESC, game_id ASC) AS n "
                "FROM players WHERE salary IS NOT NULL) AS ranked "
                "WHERE n = 1 ORDER BY salary DESC, name ASC LIMIT ?", (limit,)).fetchall()
            return Leaderboard(
                most_wins=tuple(WinsRow(*row) for row in wins),
                best_salaries=tuple(
                    SalaryRow(name, salary, career, None if field is None else Field(field), gid)
                    for name, salary, career, field, gid in salaries),
            )

        return self._read(query)

    def csv_rows(self, game_id: int | None = None) -> Iterator[dict[str, object]]:
        """The CSV export's rows (CSV_COLUMNS keys), by game id then seat."""
        where, params = ("WHERE g.id = ?", (int(game_id),)) if game_id is not None else ("", ())
        rows = self._read(lambda c: c.execute(
            "SELECT g.id, g.room, g.started, g.ended, g.duration, g.seed, g.player_count, "
            f"{_PLAYER_SELECT} FROM games AS g JOIN players AS p ON p.game_id = g.id "
            f"{where} ORDER BY g.id, p.seat", params).fetchall())
        for row in rows:
            gid, room, started, ended, duration, seed, count = row[:7]
            p = _player_row(row[7:])
            yield {
                "game_id": gid, "room": room, "started_utc": _utc(started),
                "ended_utc": _utc(ended), "duration_s": f"{duration:.3f}", "seed": seed,
                "player_count": count, "seat": p.seat, "name": p.name,
                "avatar": int(p.avatar), "avatar_colour": p.avatar_colour,
                "place": _blank(p.place), "field": _blank(None if p.field is None else int(p.field)),
                "field_name": _blank(p.field_name), "career": _blank(p.career),
                "salary": _blank(p.salary),
                **dict(zip(TOKEN_COLUMNS, p.tokens)),
                **dict(zip(LANDING_COLUMNS, p.landings)),
                "auto_career": "yes" if p.auto_career else "no",
            }

    def export_csv(self, file: IO[str], *, game_id: int | None = None) -> int:
        """Write one row per player per game (header first) to the text file `file`
        (open it with newline=''); return the number of player rows written."""
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        count = 0
        for row in self.csv_rows(game_id):
            writer.writerow(row)
            count += 1
        return count

    # ----------------------------------------------------------------- internals

    def _connection(self) -> Database:
        if self._db is None:
            raise StoreError(f"{self.path}: the results store is closed")
        return self._db

    def _read(self, query):
        with self._lock:
            db = self._connection()
            try:
                return query(db)
            except db.errors as exc:
                raise StoreError(f"{self.path}: reading the results store failed: "
                                 f"{db.describe(exc)}") from exc


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
