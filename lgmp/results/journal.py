"""A finished game is durable before its FINL: the database, or else an fsynced journal.

``DurableRecorder`` is what ``lgmp serve`` gives the server as ``on_game_finished``.
The server holds a game's FINL until the recorder returns, and the recorder
returns only once the game survives a crash:

1. committed to the results database -- tried again for up to ``patience``
   seconds, since a write lock held by another process (a backup, a long
   ``lgmp results`` export) usually clears;
2. failing that, appended to the *journal*, a file next to the database
   (``<db>.pending.jsonl``; for a PostgreSQL URL, in the per-user data folder),
   one JSON line per game, flushed and fsynced (its directory too when the file
   is new). Each line is one ``write`` to a file opened for appending, so several
   worker processes may share one journal. Later games then go straight to the
   journal, trying the database again at most every ``patience`` seconds, so a
   dead disk does not delay every FINL by ``patience``;
3. failing that too (the disk is full), it raises; the server logs it, keeps
   the FINL back and tries again.

``import_journal`` runs when ``lgmp serve`` starts (``durable_results``, before it listens): every journalled game is
committed to the database and dropped from the journal, one at a time (the
journal is rewritten through a temporary file and a rename), so a crash during
the import loses nothing -- at worst the game being imported is stored twice. A
line cut short at the end of the file (the process died while writing it, so
its FINL never went out) is dropped; any other line that cannot be read is kept
in the journal and reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from ..game.engine import GameRecord, PlayerRecord
from ..game.rules import Avatar, Field
from .store import ResultsStore, StoreError, default_path, is_database_url

log = logging.getLogger("lgmp.results.journal")

__all__ = ["JOURNAL_SUFFIX", "JOURNAL_VERSION", "DurableRecorder", "durable_results", "journal_path_for",
           "import_journal", "append_to_journal", "entry_to_json", "entry_from_json"]

JOURNAL_SUFFIX = ".pending.jsonl"
JOURNAL_VERSION = 1

#: How long the database gets before a game goes to the journal (seconds). SQLite's
#: own wait for a lock (store.BUSY_TIMEOUT) runs inside each attempt.
PATIENCE = 60.0
_RETRY_PAUSE = 1.0  # between two attempts at the database


def journal_path_for(db: str | os.PathLike[str]) -> Path:
    """The journal of the results database ``db``: next to an SQLite file; for a
    ``postgresql://`` URL, in the per-user data folder, named after the URL."""
    target = os.fspath(db)
    if is_database_url(target):
        digest = hashlib.sha256(target.encode()).hexdigest()[:12]
        return default_path().with_name(f"lgmp-results-{digest}{JOURNAL_SUFFIX}")
    return Path(target + JOURNAL_SUFFIX)


def durable_results(store: ResultsStore, db: str | os.PathLike[str]) -> DurableRecorder:
    """What ``lgmp serve`` (and each of its workers) records finished games with:
    first the games a previous run journalled are imported, then every game is
    recorded durably -- the database, or else the journal."""
    journal = journal_path_for(db)
    try:
        imported = import_journal(store, journal)
    except (StoreError, OSError) as exc:
        log.error("%s: journalled games not imported yet (the next start tries again): %s", journal, exc)
    else:
        if imported:
            log.warning("%d journalled game(s) imported from %s", imported, journal)
    return DurableRecorder(store, journal)


# --------------------------------------------------------------------------- lines

def entry_to_json(*, room: str, seed: int, record: GameRecord, started: float, ended: float) -> str:
    players = [
        {
            "seat": p.seat, "name": p.name, "avatar": int(p.avatar), "place": p.place,
            "field": None if p.field is None else int(p.field), "career": p.career, "salary": p.salary,
            "tokens": list(p.tokens), "landings": list(p.landings), "auto_career": bool(p.auto_career),
        }
        for p in record.players
    ]
    return json.dumps({
        "v": JOURNAL_VERSION, "room": room, "seed": seed, "started": started, "ended": ended,
        "record": {"started_at": record.started_at, "ended_at": record.ended_at, "duration": record.duration, "players": players},
    }, separators=(",", ":"))


def entry_from_json(line: str) -> dict:
    """The keyword arguments of ``ResultsStore.record_game`` for one journal line."""
    data = json.loads(line)
    if data.get("v") != JOURNAL_VERSION:
        raise ValueError(f"journal line of version {data.get('v')!r}")
    raw = data["record"]
    players = tuple(
        PlayerRecord(
            seat=p["seat"], name=p["name"], avatar=Avatar(p["avatar"]), place=p["place"],
            field=None if p["field"] is None else Field(p["field"]), career=p["career"], salary=p["salary"],
            tokens=tuple(p["tokens"]), landings=tuple(p["landings"]), auto_career=bool(p["auto_career"]),
        )
        for p in raw["players"]
    )
    record = GameRecord(started_at=raw["started_at"], ended_at=raw["ended_at"], duration=raw["duration"], players=players)
    return {"room": data["room"], "seed": data["seed"], "record": record, "started": data["started"], "ended": data["ended"]}


def append_to_journal(path: Path, line: str) -> None:
    """Append one line and make it durable (fsync the file, and its directory if new)."""
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = (line + "\n").encode()
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replace the journal with ``lines`` (or remove it), atomically."""
    if not lines:
        path.unlink(missing_ok=True)
        _fsync_directory(path.parent)
        return
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


# --------------------------------------------------------------------------- import

def import_journal(store: ResultsStore, path: Path) -> int:
    """Commit every game journalled at ``path`` to ``store``; how many were imported.

    Raises ``StoreError`` if the database refuses one (the rest stay journalled
    for the next start)."""
    if not path.exists():
        return 0
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        log.warning("%s: dropping a last line cut short (its game's FINL was never sent)", path)
        lines.pop()
    kept: list[str] = []
    imported = 0
    pending = list(lines)
    while pending:
        line = pending.pop(0)
        try:
            entry = entry_from_json(line)
            game_id = store.record_game(**entry)
        except (ValueError, KeyError, TypeError) as exc:  # not StoreError: the database is fine, the line is not
            log.error("%s: keeping a journal line that cannot be imported (%s)", path, exc)
            kept.append(line)
            continue
        imported += 1
        log.info("[%s] journalled results imported as game %d", entry["room"], game_id)
        _rewrite(path, kept + pending)
    return imported


# --------------------------------------------------------------------------- recording

class DurableRecorder:
    """``on_game_finished`` for the server: returns once the game is durable, or raises."""

    def __init__(self, store: ResultsStore, journal: Path, *, patience: float = PATIENCE, clock=time.monotonic):
        self.store = store
        self.journal = journal
        self.patience = patience
        self._clock = clock
        self._lock = threading.Lock()
        self._journalling_since: float | None = None  # the database failed us; when we last tried it

    def __call__(self, finished, started: float, ended: float) -> None:
        entry = {"room": finished.room, "seed": finished.seed, "record": finished.record, "started": started, "ended": ended}
        with self._lock:
            if self._try_database(entry):
                return
            append_to_journal(self.journal, entry_to_json(**entry))  # OSError: the server tries again
            log.error("[%s] results database unwritable: game journalled to %s (fsynced); it is imported at the next start",
                      finished.room, self.journal)

    def _try_database(self, entry: dict) -> bool:
        now = self._clock()
        if self._journalling_since is not None and now - self._journalling_since < self.patience:
            return False  # it failed recently: straight to the journal, do not hold this FINL too
        give_up_at = now + self.patience
        attempt = 0
        while True:
            attempt += 1
            try:
                game_id = self.store.record_game(**entry)
            except ValueError as exc:  # a record the database refuses whatever happens: keep it anyway
                log.error("[%s] the results database refuses this game (%s); journalling it", entry["room"], exc)
                return False
            except StoreError as exc:
                if self._clock() + _RETRY_PAUSE >= give_up_at or self._journalling_since is not None:
                    log.error("[%s] storing the results failed (attempt %d): %s", entry["room"], attempt, exc)
                    self._journalling_since = self._clock()
                    return False
                log.warning("[%s] storing the results failed (attempt %d): %s; trying again", entry["room"], attempt, exc)
                time.sleep(_RETRY_PAUSE)
                continue
            if self._journalling_since is not None:
                log.warning("the results database is writable again; journalled games are imported at the next start")
                self._journalling_since = None
            log.info("[%s] results stored as game %d", entry["room"], game_id)
            return True
