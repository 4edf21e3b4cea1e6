"""The results store: schema and migrations, durability and atomicity, threads, refusing
files that are not ours (and leaving them untouched), reading back, CSV export."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lgmp.results import store as store_module
from lgmp.game.engine import Game, GameRecord, PlayerRecord
from lgmp.wire.errors import LGMPError
from lgmp.game.rules import Avatar, Field, SpaceKind
from lgmp.results.store import (
    APPLICATION_ID,
    CSV_COLUMNS,
    DEFAULT_DB,
    LANDING_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    TOKEN_COLUMNS,
    Migration,
    ResultsStore,
    StoreError,
    default_path,
)

T0 = 1_700_000_000.0  # a wall-clock start time


# --------------------------------------------------------------------------- helpers

def player(seat: int, name: str, avatar: int, place: int | None, *, field: int | None = 5,
           career: str | None = "Creative Director", salary: int | None = 132_770,
           tokens=(1, 0, 2, 0, 3, 0), landings=(4, 1, 2, 1, 0, 1),
           auto_career: bool = False) -> PlayerRecord:
    return PlayerRecord(seat=seat, name=name, avatar=Avatar(avatar), place=place,
                        field=None if field is None else Field(field), career=career,
                        salary=salary, tokens=tuple(tokens), landings=tuple(landings),
                        auto_career=auto_career)


def sample_record(duration: float = 754.25) -> GameRecord:
    players = (
        player(1, "Ann", 3, 2, field=1, career="User Experience Designer", salary=90_700,
               tokens=(3, 0, 1, 0, 0, 2), landings=(7, 2, 1, 3, 2, 0)),
        player(2, "Bob", 1, 1, field=5, career="Creative Director", salary=132_770,
               tokens=(0, 4, 0, 1, 1, 0), landings=(5, 0, 3, 2, 4, 1), auto_career=True),
        player(5, "Cy", 6, 3, field=4, career="Customer Service Project Manager",
               salary=75_000, tokens=(0, 0, 0, 5, 0, 0), landings=(9, 1, 0, 0, 1, 0)),
    )
    return GameRecord(started_at=100.0, ended_at=100.0 + duration, duration=duration,
                      players=players)


def played_record(seed: int, seats: dict[int, tuple[str, int]]) -> GameRecord:
    """A whole game auto-played by the engine with a seeded RNG."""
    game = Game(seats, random.Random(seed), started_at=50.0)
    while not game.is_over:
        seat = next(s for s in game.seats if game.owes(s) is not None)
        game.auto_play(seat)
    return game.record(ended_at=50.0 + 300.0 + seed)


def record_sample(store: ResultsStore, *, room: str = "ABCD", seed: int = 42,
                  started: float = T0, record: GameRecord | None = None) -> int:
    record = record or sample_record()
    return store.record_game(room=room, seed=seed, record=record, started=started,
                             ended=started + record.duration)


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    """Everything that says whether a file was touched: bytes, mtime, sidecar files."""
    sidecars = sorted(p.name for p in path.parent.iterdir() if p.name != path.name
                      and p.name.startswith(path.name))
    return path.read_bytes(), path.stat().st_mtime_ns, sidecars


def raw(path: Path, sql: str):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / DEFAULT_DB


@pytest.fixture
def store(db: Path):
    with ResultsStore.open(db) as s:
        yield s


# --------------------------------------------------------------------------- schema

def test_store_error_is_an_lgmp_error():
    assert issubclass(StoreError, LGMPError)


def test_named_columns_follow_the_enums():
    assert TOKEN_COLUMNS == tuple(f"tokens_{f.name.lower()}" for f in Field)
    assert LANDING_COLUMNS == tuple(f"landed_{k.name.lower()}" for k in SpaceKind)
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_a_new_file_gets_the_current_schema(db: Path):
    assert not db.exists()
    with ResultsStore.open(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.recent_games() == []
    assert raw(db, "PRAGMA application_id") == [(APPLICATION_ID,)]
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert raw(db, "PRAGMA journal_mode") == [("wal",)]
    assert raw(db, "SELECT value FROM meta WHERE key = 'application'") == [("lgmp-results",)]
    tables = {name for (name,) in raw(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "games", "players"} <= tables
    games = [row[1] for row in raw(db, "PRAGMA table_info(games)")]
    assert games == ["id", "room", "started", "ended", "duration", "seed", "player_count"]
    players = [row[1] for row in raw(db, "PRAGMA table_info(players)")]
    assert players == ["game_id", "seat", "name", "avatar", "place", "field", "career",
                       "salary", *TOKEN_COLUMNS, *LANDING_COLUMNS, "auto_career"]


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _empty_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE scratch (x)")
    conn.execute("DROP TABLE scratch")
    conn.commit()
    conn.close()
    assert path.stat().st_size > 0


@pytest.mark.parametrize("make_empty", [_zero_bytes, _empty_sqlite])
def test_an_empty_file_is_migrated_from_version_0(db: Path, make_empty):
    make_empty(db)
    assert raw(db, "PRAGMA user_version") == [(0,)]
    with ResultsStore.open(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        game_id = record_sample(s)
    with ResultsStore.open(db, create=False) as s:
        assert [g.id for g in s.recent_games()] == [game_id]


@pytest.mark.parametrize("make_empty", [_zero_bytes, _empty_sqlite])
def test_the_reader_refuses_an_empty_file_and_leaves_it(db: Path, make_empty):
    make_empty(db)
    before = snapshot(db)
    with pytest.raises(StoreError, match="not an LGMP results store.*empty"):
        ResultsStore.open(db, create=False)
    assert snapshot(db) == before


def test_the_reader_refuses_a_missing_file_and_creates_nothing(db: Path):
    with pytest.raises(StoreError, match="does not exist"):
        ResultsStore.open(db, create=False)
    assert list(db.parent.iterdir()) == []


def test_a_directory_or_unreachable_path_is_a_store_error(tmp_path: Path):
    with pytest.raises(StoreError, match="not a file"):
        ResultsStore.open(tmp_path)
    with pytest.raises(StoreError, match="cannot open"):
        ResultsStore.open(tmp_path / "no" / "such" / "dir" / "x.sqlite3")


def test_migrations_are_applied_in_order_and_keep_data(db: Path, monkeypatch):
    with ResultsStore.open(db) as s:
        first = record_sample(s)
    extra = Migration(SCHEMA_VERSION + 1, "a note per game",
                      ("ALTER TABLE games ADD COLUMN note TEXT",
                       "UPDATE games SET note = 'migrated'"))
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, extra))
    with ResultsStore.open(db, create=False) as s:   # our own file: the reader upgrades it
        assert s.schema_version == SCHEMA_VERSION + 1
        assert [g.id for g in s.recent_games()] == [first]
        assert s.players(first)[0].name == "Ann"
    assert raw(db, "SELECT note FROM games") == [("migrated",)]


def test_a_failing_migration_leaves_the_old_version_whole(db: Path, monkeypatch):
    with ResultsStore.open(db) as s:
        record_sample(s)
    before = raw(db, "SELECT * FROM games")
    fine = Migration(SCHEMA_VERSION + 1, "fine", ("ALTER TABLE games ADD COLUMN note TEXT",))
    broken = Migration(SCHEMA_VERSION + 2, "broken",
                       ("ALTER TABLE games ADD COLUMN other TEXT",
                        "THIS IS NOT SQL"))
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, fine, broken))
    with pytest.raises(StoreError, match="cannot open"):
        ResultsStore.open(db)
    monkeypatch.undo()
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    columns = [row[1] for row in raw(db, "PRAGMA table_info(games)")]
    assert "note" not in columns and "other" not in columns
    assert raw(db, "SELECT * FROM games") == before
    with ResultsStore.open(db) as s:   # still a good store
        assert s.game_count() == 1


# --------------------------------------------------------------------------- not ours

def test_random_bytes_are_refused_and_untouched(db: Path):
    db.write_bytes(random.Random(7).randbytes(8192))
    before = snapshot(db)
    for create in (True, False):
        with pytest.raises(StoreError, match="not an LGMP results store.*not an SQLite database"):
            ResultsStore.open(db, create=create)
    assert snapshot(db) == before


def test_a_truncated_header_is_refused(db: Path):
    db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 20)
    with pytest.raises(StoreError, match="not an SQLite database"):
        ResultsStore.open(db)


def test_a_corrupt_store_is_a_clear_error_and_untouched(db: Path):
    with ResultsStore.open(db) as s:
        record_sample(s)
    data = bytearray(db.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[100:page_size] = random.Random(3).randbytes(page_size - 100)   # sqlite_master's page
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    for create in (True, False):
        with pytest.raises(StoreError, match="corrupt"):
            ResultsStore.open(db, create=create)
    assert db.read_bytes() == before


def _foreign_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Acme')")
    conn.commit()
    conn.close()


def _foreign_application_id(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 42")
    conn.commit()
    conn.close()


def _our_id_without_meta(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("CREATE TABLE games (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make_foreign", [_foreign_tables, _foreign_application_id,
                                          _our_id_without_meta])
@pytest.mark.parametrize("create", [True, False])
def test_another_applications_sqlite_file_is_refused_and_untouched(db: Path, make_foreign,
                                                                     create: bool):
    make_foreign(db)
    before = snapshot(db)
    with pytest.raises(StoreError, match="not an LGMP results store"):
        ResultsStore.open(db, create=create)
    assert snapshot(db) == before
    assert raw(db, "PRAGMA journal_mode") == [("delete",)]   # not switched to WAL


@pytest.mark.parametrize("create", [True, False])
def test_a_newer_schema_is_refused_and_untouched(db: Path, create: bool):
    with ResultsStore.open(db) as s:
        record_sample(s)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=f"newer lgmp.*version {SCHEMA_VERSION + 5}"):
        ResultsStore.open(db, create=create)
    assert db.read_bytes() == before
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION + 5,)]


# --------------------------------------------------------------------------- writing, reading

def test_a_game_reads_back_exactly(store: ResultsStore):
    record = sample_record()
    game_id = store.record_game(room="WXYZ", seed=2**63 - 1, record=record, started=T0,
                                ended=T0 + 800.0)
    game = store.game(game_id)
    assert (game.id, game.room, game.started, game.ended, game.duration, game.seed,
            game.player_count, game.winner) == (game_id, "WXYZ", T0, T0 + 800.0, 754.25,
                                                2**63 - 1, 3, "Bob")
    rows = store.players(game_id)
    assert [r.to_record() for r in rows] == list(record.players)
    assert [r.game_id for r in rows] == [game_id] * 3
    assert [(r.avatar_colour, r.field_name) for r in rows] == [
        ("Green", "Design"), ("Red", "Marketing"), ("Pink", "Graphic Media Management")]
    assert store.game(game_id + 1) is None
    assert store.players(game_id + 1) == []


def test_an_unfinished_record_keeps_its_blanks(store: ResultsStore):
    record = GameRecord(0.0, 10.0, 10.0, (
        player(2, "Ann", 4, None, field=None, career=None, salary=None),))
    game_id = record_sample(store, record=record)
    (row,) = store.players(game_id)
    assert (row.place, row.field, row.field_name, row.career, row.salary) == (None,) * 5
    assert store.game(game_id).winner is None


def test_engine_records_round_trip(store: ResultsStore):
    records = [played_record(seed, seats) for seed, seats in [
        (1, {1: ("Ann", 1)}),
        (2, {2: ("Ann", 2), 4: ("Bob", 5)}),
        (3, {n: (f"P{n}", 7 - n) for n in range(1, 7)}),
    ]]
    ids = [record_sample(store, seed=i, record=r, started=T0 + 1000 * i)
           for i, r in enumerate(records)]
    for game_id, record in zip(ids, records):
        assert tuple(r.to_record() for r in store.players(game_id)) == record.players
        assert store.game(game_id).player_count == len(record.players)


def test_reopening_keeps_the_data_and_ids_keep_counting(db: Path):
    with ResultsStore.open(db) as s:
        first = record_sample(s, room="AAAA")
    with ResultsStore.open(db, create=False) as s:
        assert [(g.id, g.room) for g in s.recent_games()] == [(first, "AAAA")]
        assert [r.to_record() for r in s.players(first)] == list(sample_record().players)
    with ResultsStore.open(db) as s:
        second = record_sample(s, room="BBBB", started=T0 + 5000)
        assert second > first
        assert [g.room for g in s.recent_games()] == ["BBBB", "AAAA"]


def test_recent_games_newest_first_and_limited(store: ResultsStore):
    for i in range(5):
        record_sample(store, room=f"R{i}", started=T0 + 100 * i)
    assert [g.room for g in store.recent_games(3)] == ["R4", "R3", "R2"]
    assert store.game_count() == 5
    with pytest.raises(ValueError):
        store.recent_games(0)


def test_bad_records_are_value_errors_and_store_nothing(store: ResultsStore):
    good = sample_record()
    short = GameRecord(0.0, 1.0, 1.0, (player(1, "A", 1, 1, tokens=(1, 2)),))
    with pytest.raises(ValueError):
        record_sample(store, record=short)
    with pytest.raises(ValueError):
        record_sample(store, record=GameRecord(0.0, 1.0, 1.0, ()))
    with pytest.raises(ValueError):
        store.record_game(room="A", seed=2**63, record=good, started=T0, ended=T0)
    with pytest.raises(ValueError):
        store.record_game(room="A", seed=1, record=good, started=float("nan"), ended=T0)
    assert store.game_count() == 0


# --------------------------------------------------------------------------- atomicity

def test_a_failure_mid_game_leaves_nothing(store: ResultsStore, db: Path):
    players = sample_record().players
    clash = GameRecord(0.0, 5.0, 5.0, (players[0], players[1], players[0]))  # seat 1 twice
    with pytest.raises(StoreError, match="recording the game"):
        record_sample(store, record=clash)
    assert store.game_count() == 0
    assert raw(db, "SELECT count(*) FROM players") == [(0,)]
    # The store is still usable afterwards.
    game_id = record_sample(store)
    assert len(store.players(game_id)) == 3


def test_an_exception_between_player_rows_rolls_back(store: ResultsStore, db: Path,
                                                     monkeypatch):
    record_sample(store, room="KEEP")
    real = store_module._player_values

    def failing(game_id, p):
        if p.seat == 2:
            raise RuntimeError("disk on fire")
        return real(game_id, p)

    monkeypatch.setattr(store_module, "_player_values", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        record_sample(store, room="LOST")
    monkeypatch.undo()
    assert [g.room for g in store.recent_games()] == ["KEEP"]
    assert raw(db, "SELECT count(*) FROM players") == [(3,)]


def test_sigkill_mid_transaction_keeps_committed_games_whole(db: Path):
    """A process killed while writing its second game: the first is all there, the second
    not at all."""
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import record_sample
        from lgmp.results import store as m
        s = m.ResultsStore.open({str(db)!r})
        record_sample(s, room="DONE")
        real = m._player_values
        def die(game_id, p):
            if p.seat == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(game_id, p)
        m._player_values = die
        record_sample(s, room="HALF")
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=30)
    assert proc.returncode == -9, proc.stderr.decode()
    with ResultsStore.open(db, create=False) as s:
        games = s.recent_games()
        assert [g.room for g in games] == ["DONE"]
        assert [r.to_record() for r in s.players(games[0].id)] == list(sample_record().players)
    assert raw(db, "SELECT count(*) FROM players") == [(3,)]


# --------------------------------------------------------------------------- threads

def test_recording_from_many_threads(store: ResultsStore):
    n_threads, per_thread = 8, 6
    ids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                ids.append(record_sample(store, room=f"T{t}", seed=t * 100 + i,
                                         started=T0 + t * 1000 + i))
                store.recent_games(5)   # reads interleave with writes
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sorted(ids) == sorted(set(ids)) and len(ids) == n_threads * per_thread
    assert store.game_count() == n_threads * per_thread
    for game_id in ids:
        assert len(store.players(game_id)) == 3


def test_a_closed_store_says_so(db: Path):
    s = ResultsStore.open(db)
    s.close()
    s.close()   # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.recent_games()
    with pytest.raises(StoreError, match="closed"):
        record_sample(s)


# --------------------------------------------------------------------------- leaderboard

def test_leaderboard_counts_wins_and_best_salaries(store: ResultsStore):
    def game(*places_salaries):
        return GameRecord(0.0, 60.0, 60.0, tuple(
            player(i + 1, name, i + 1, place, salary=salary, career=f"C{salary}")
            for i, (name, place, salary) in enumerate(places_salaries)))

    record_sample(store, record=game(("Ann", 1, 50_000), ("Bob", 2, 90_000)))
    record_sample(store, record=game(("Ann", 1, 60_000), ("Cy", 2, 132_840)))
    record_sample(store, record=game(("Bob", 1, 70_000), ("Ann", 2, 40_000)))
    record_sample(store, record=game(("Dee", 1, None)))
    board = store.leaderboard(10)
    assert [(r.name, r.wins, r.games, r.best_salary) for r in board.most_wins] == [
        ("Ann", 2, 3, 60_000), ("Dee", 1, 1, None), ("Bob", 1, 2, 90_000)]
    assert [(r.name, r.salary, r.career) for r in board.best_salaries] == [
        ("Cy", 132_840, "C132840"), ("Bob", 90_000, "C90000"), ("Ann", 60_000, "C60000")]
    assert board.best_salaries[0].game_id == 2
    assert len(store.leaderboard(1).most_wins) == 1


# --------------------------------------------------------------------------- CSV

def test_csv_round_trips_through_the_csv_module(store: ResultsStore):
    record = sample_record()
    odd = GameRecord(0.0, 30.5, 30.5, (
        player(3, 'O"Neil, Jr\nthe 2nd', 2, None, field=None, career=None, salary=None,
               auto_career=True),))
    first = store.record_game(room="ABCD", seed=12345, record=record, started=T0,
                              ended=T0 + 800.0)
    second = store.record_game(room="EFGH", seed=7, record=odd, started=T0 + 3600.5,
                               ended=T0 + 3631.0)
    out = io.StringIO(newline="")
    assert store.export_csv(out) == 4
    reader = csv.DictReader(io.StringIO(out.getvalue(), newline=""))
    rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert len(rows) == 4

    started = datetime.fromtimestamp(T0, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    for row, p in zip(rows[:3], record.players):
        assert row["game_id"] == str(first)
        assert (row["room"], row["seed"], row["player_count"]) == ("ABCD", "12345", "3")
        assert row["started_utc"] == started == "2023-11-14 22:13:20"
        assert row["ended_utc"] == "2023-11-14 22:26:40"
        assert float(row["duration_s"]) == pytest.approx(754.25)
        assert int(row["seat"]) == p.seat and row["name"] == p.name
        assert int(row["avatar"]) == p.avatar and row["avatar_colour"] == p.avatar.name.capitalize()
        assert int(row["place"]) == p.place
        assert int(row["field"]) == p.field
        assert (row["career"], int(row["salary"])) == (p.career, p.salary)
        assert tuple(int(row[c]) for c in TOKEN_COLUMNS) == p.tokens
        assert tuple(int(row[c]) for c in LANDING_COLUMNS) == p.landings
        assert row["auto_career"] == ("yes" if p.auto_career else "no")
    assert [r["field_name"] for r in rows[:3]] == ["Design", "Marketing",
                                                   "Graphic Media Management"]

    last = rows[3]
    assert last["game_id"] == str(second) and last["name"] == 'O"Neil, Jr\nthe 2nd'
    assert [last[c] for c in ("place", "field", "field_name", "career", "salary")] == [""] * 5
    assert last["auto_career"] == "yes"


def test_csv_of_one_game(store: ResultsStore):
    record_sample(store, room="AAAA")
    second = record_sample(store, room="BBBB")
    out = io.StringIO(newline="")
    assert store.export_csv(out, game_id=second) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert {r["room"] for r in rows} == {"BBBB"}


def test_csv_of_an_empty_store_is_just_the_header(store: ResultsStore):
    out = io.StringIO(newline="")
    assert store.export_csv(out) == 0
    assert out.getvalue().strip() == ",".join(CSV_COLUMNS)


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG rule is Linux's")
def test_the_default_file_is_in_the_per_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "lgmp" / DEFAULT_DB   # not the working directory
