"""The results store's SQLite backend: one embedded file, nothing to install.

Everything here is what only SQLite does; the schema, the migrations and every
query are ``lgmp.results.store``'s, shared with the PostgreSQL backend.

Durability
    The file is in WAL mode with ``synchronous=FULL`` (and ``fullfsync`` where the
    platform has it): when a game's ``COMMIT`` returns, the game is on disk and
    survives a crash, SIGKILL or power loss. Writes take the lock at ``BEGIN
    IMMEDIATE``, so two processes sharing the file never deadlock halfway.

Recognising our file
    ``PRAGMA application_id`` holds ``APPLICATION_ID`` ("LGMP" in ASCII), the ``meta``
    table holds ``application = lgmp-results``, and ``PRAGMA user_version`` holds the
    schema version. These are read before anything is written, and the file header
    is checked before SQLite is even let near the file, so random bytes, a corrupt
    database or another application's SQLite file are refused and left untouched.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

from .store import APPLICATION_ID, APPLICATION_MARKER, StoreError

__all__ = ["BUSY_TIMEOUT", "SQLiteDatabase"]

log = logging.getLogger("lgmp.results.store")

#: How long to wait for another connection's write lock before giving up (seconds).
BUSY_TIMEOUT = 10.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_HEADER_SIZE = 100


def _check_file(path: Path, create: bool) -> None:
    """Refuse what is plainly not an SQLite database without letting SQLite near it."""
    if not path.exists():
        if not create:
            raise StoreError(f"{path}: no results store there (the file does not exist)")
        return
    if not path.is_file():
        raise StoreError(f"{path}: not a file")
    try:
        with path.open("rb") as f:
            header = f.read(_SQLITE_HEADER_SIZE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if header and (len(header) < _SQLITE_HEADER_SIZE or not header.startswith(_SQLITE_MAGIC)):
        raise StoreError(f"{path}: not an LGMP results store "
                         "(not an SQLite database: corrupt, or some other kind of file)")


def _identify(conn: sqlite3.Connection) -> tuple[str, int]:
    """('empty' | 'ours' | 'foreign', user_version), reading only."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id == 0 and version == 0 and objects == 0:
        return "empty", 0
    if app_id != APPLICATION_ID:
        return "foreign", version
    if version >= 1:
        try:
            marker = conn.execute(
                "SELECT value FROM meta WHERE key = 'application'").fetchone()
        except sqlite3.OperationalError:   # no meta table
            return "foreign", version
        if marker is None or marker[0] != APPLICATION_MARKER:
            return "foreign", version
    return "ours", version


def _describe(exc: sqlite3.Error, path: Path | None = None) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text \
            or "not a database" in text:
        return f"the database is corrupt ({text})"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"the database is locked by another process ({text})"
    if path is not None and (name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM"))
                             or "unable to open" in text or "readonly" in text):
        return f"{_access_problem(path)} ({text})"
    return text


def _access_problem(path: Path) -> str:
    """Why SQLite cannot open or write ``path``, in words: it reports only 'unable to open database file'."""
    folder = path.resolve().parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "no permission to read and write the file"
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite also writes its -wal and -shm files beside the database.
        return f"no permission to create files in {folder}"
    return "the file cannot be opened for reading and writing"


class SQLiteDatabase:
    """One SQLite file, as ``ResultsStore`` drives it. Not thread-safe by itself: the
    store calls it under its lock (the connection is made with ``check_same_thread=False``
    for that)."""

    dialect = "sqlite"
    described = "an SQLite database"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    #: How this dialect spells the schema's dialect words (``store.render``).
    WORDS = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "int64": "INTEGER",
        "real": "REAL",
        "now": "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
    }

    def __init__(self, path: Path):
        self.location = path
        self._conn: sqlite3.Connection | None = None

    def connect(self, create: bool) -> None:
        path = self.location
        _check_file(path, create)
        uri = path.resolve().as_uri() + ("?mode=rwc" if create else "?mode=rw")
        try:
            self._conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT,
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open: {_describe(exc, path)}") from exc

    def identify(self) -> tuple[str, int]:
        return _identify(self._conn)

    def prepare(self) -> None:
        """The file is ours (or empty and ours to make): durable commits, WAL, foreign keys."""
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: WAL unavailable (journal_mode %s); commits stay durable",
                        self.location, mode)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA fullfsync = ON")             # macOS: really flush
        conn.execute("PRAGMA checkpoint_fullfsync = ON")
        conn.execute("PRAGMA foreign_keys = ON")

    def begin_migration(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def begin_write(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def set_version(self, version: int) -> None:
        self._conn.execute(f"PRAGMA user_version = {version:d}")

    def execute(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        self._conn.executemany(sql, rows)

    def insert_returning_id(self, sql: str, params: Sequence) -> int:
        return self._conn.execute(sql, params).lastrowid

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def describe(self, exc: BaseException) -> str:
        return _describe(exc, self.location)

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
