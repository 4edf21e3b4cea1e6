"""The results store on PostgreSQL: the same schema, migrations and queries as SQLite,
against a real server (tests/servers.py starts one, or the tests skip with the reason)."""

from __future__ import annotations

import threading

import pytest

from lgmp.game.engine import GameRecord
from lgmp.results import store as store_module
from lgmp.results.cli import run as results_cli_run
from lgmp.results.store import MIGRATIONS, SCHEMA_VERSION, Migration, ResultsStore, StoreError, shown
from tests.servers import postgres_server, postgres_url  # noqa: F401 -- fixtures
from tests.test_store import T0, played_record, player, record_sample, sample_record

psycopg = pytest.importorskip("psycopg")


def raw(url: str, sql: str, params=()):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_new_database_gets_the_current_schema(postgres_url):
    with ResultsStore.open(postgres_url) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.recent_games() == []
    facts = dict(raw(postgres_url, "SELECT key, value FROM meta"))
    assert facts["application"] == "lgmp-results" and facts["schema_version"] == str(SCHEMA_VERSION)
    columns = [r[0] for r in raw(postgres_url, "SELECT column_name FROM information_schema.columns "
                                              "WHERE table_name = 'games' ORDER BY ordinal_position")]
    assert columns == ["id", "room", "started", "ended", "duration", "seed", "player_count"]
    types = dict(raw(postgres_url, "SELECT column_name, data_type FROM information_schema.columns "
                                   "WHERE table_name = 'games'"))
    assert types["seed"] == "bigint" and types["started"] == "double precision"


def test_games_read_back_exactly_as_from_sqlite(postgres_url, tmp_path):
    """Both backends, fed the same games, answer every query the same."""
    records = [played_record(seed, {1: ("Ann", 1), 2: ("Bob", 2), 4: ("Cy", 5)}) for seed in range(6)]
    answers = []
    for target in (postgres_url, tmp_path / "r.sqlite3"):
        with ResultsStore.open(target) as s:
            ids = [record_sample(s, room=f"R{i}", seed=2**62 + i, record=r, started=T0 + i)
                   for i, r in enumerate(records)]
            record_sample(s, room="SAMP")
            answers.append((ids, s.recent_games(50), [s.players(i) for i in ids], s.leaderboard(),
                            list(s.csv_rows()), s.game_count(), s.game(ids[2])))
    assert answers[0] == answers[1]
    ids, recent, players = answers[0][:3]
    assert [r.to_record() for r in players[0]] == list(records[0].players)
    assert recent[0].room == "SAMP" and recent[-1].seed == 2**62


def test_one_game_is_one_transaction(postgres_url, monkeypatch):
    with ResultsStore.open(postgres_url) as s:
        record_sample(s, room="KEEP")
        real = store_module._player_values

        def failing(game_id, p):
            if p.seat == 2:
                raise RuntimeError("disk on fire")
            return real(game_id, p)

        monkeypatch.setattr(store_module, "_player_values", failing)
        with pytest.raises(RuntimeError, match="disk on fire"):
            record_sample(s, room="LOST")
        monkeypatch.undo()
        players = sample_record().players
        with pytest.raises(StoreError, match="recording the game"):  # seat 1 twice
            record_sample(s, record=GameRecord(0.0, 5.0, 5.0, (players[0], players[1], players[0])))
        assert [g.room for g in s.recent_games()] == ["KEEP"]
        assert s.game_count() == 1
    assert raw(postgres_url, "SELECT count(*) FROM players") == [(3,)]


def test_migrations_apply_once_and_a_failing_one_changes_nothing(postgres_url, monkeypatch):
    with ResultsStore.open(postgres_url) as s:
        first = record_sample(s)
    extra = Migration(SCHEMA_VERSION + 1, "a note per game",
                      ("ALTER TABLE games ADD COLUMN note TEXT", "UPDATE games SET note = 'migrated'"))
    broken = Migration(SCHEMA_VERSION + 2, "broken", ("ALTER TABLE games ADD COLUMN other TEXT", "THIS IS NOT SQL"))
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, extra, broken))
    with pytest.raises(StoreError, match="cannot open"):
        ResultsStore.open(postgres_url)
    assert raw(postgres_url, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, extra))
    with ResultsStore.open(postgres_url, create=False) as s:
        assert s.schema_version == SCHEMA_VERSION + 1
        assert [g.id for g in s.recent_games()] == [first]
    assert raw(postgres_url, "SELECT note FROM games") == [("migrated",)]
    columns = [r[0] for r in raw(postgres_url, "SELECT column_name FROM information_schema.columns "
                                              "WHERE table_name = 'games'")]
    assert "other" not in columns


def test_nodes_opening_at_once_migrate_exactly_once(postgres_url):
    errors, stores = [], []
    barrier = threading.Barrier(6)

    def node():
        try:
            barrier.wait()
            stores.append(ResultsStore.open(postgres_url))
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(stores) == 6
    for i, s in enumerate(stores):
        record_sample(s, room=f"N{i}")
    assert stores[0].game_count() == 6
    for s in stores:
        s.close()
    assert raw(postgres_url, "SELECT count(*) FROM meta WHERE key = 'application'") == [(1,)]


def test_another_applications_tables_are_refused_and_untouched(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE games (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO games VALUES (1, 'chess')")
    for create in (True, False):
        with pytest.raises(StoreError, match="not an LGMP results store.*PostgreSQL"):
            ResultsStore.open(postgres_url, create=create)
    assert raw(postgres_url, "SELECT * FROM games") == [(1, "chess")]
    assert raw(postgres_url, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'") == [(0,)]


def test_an_empty_database_is_not_a_store_for_a_reader_and_a_newer_one_is_refused(postgres_url):
    with pytest.raises(StoreError, match="empty database"):
        ResultsStore.open(postgres_url, create=False)
    ResultsStore.open(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 3),))
    with pytest.raises(StoreError, match=f"newer lgmp.*version {SCHEMA_VERSION + 3}"):
        ResultsStore.open(postgres_url)


def test_a_lost_connection_fails_one_call_and_the_next_connects_again(postgres_url, caplog):
    with ResultsStore.open(postgres_url) as s:
        record_sample(s, room="ONE")
        raw(postgres_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'lgmp' AND pid <> pg_backend_pid()")
        with pytest.raises(StoreError, match="cannot be reached|recording the game"):
            record_sample(s, room="LOST")
        record_sample(s, room="TWO")
        assert [g.room for g in s.recent_games()] == ["TWO", "ONE"]
    assert "connecting again" in caplog.text


def test_unreachable_database_is_a_store_error_without_the_password():
    url = "postgresql://lgmp:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError, match="cannot open") as info:
        ResultsStore.open(url)
    assert "s3cret" not in str(info.value) and "lgmp:***@127.0.0.1:1" in str(info.value)
    assert shown("postgresql://u@h/db") == "postgresql://u@h/db" and shown("x.sqlite3") == "x.sqlite3"


def test_lgmp_results_reads_a_postgresql_store(postgres_url, capsys):
    with ResultsStore.open(postgres_url) as s:
        game_id = record_sample(s, room="QZKW")
        s.record_game(room="WXYZ", seed=3, started=T0 + 100, ended=T0 + 160,
                      record=GameRecord(0.0, 60.0, 60.0, (player(1, "Zed", 2, 1, salary=200_000),)))
    args = pytest.importorskip("lgmp.cli").build_parser().parse_args(["results", "--db", postgres_url])
    assert results_cli_run(args) == 0
    out = capsys.readouterr().out
    assert "QZKW" in out and "WXYZ" in out and "Zed" in out
    args.leaderboard, args.game = False, game_id
    assert results_cli_run(args) == 0
    assert "Creative Director" in capsys.readouterr().out
