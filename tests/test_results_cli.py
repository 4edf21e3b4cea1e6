"""`lgmp results` through `add_arguments` + `run`, output captured with capsys."""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
from pathlib import Path

import pytest

from lgmp.game.engine import GameRecord
from lgmp.results.cli import add_arguments, format_table, run
from lgmp.results.store import CSV_COLUMNS, ResultsStore

from .test_store import T0, player, record_sample, sample_record


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lgmp results")
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with three games: rooms AAAA, BBBB (newest), and a lone player's CCCC."""
    path = tmp_path / "results.sqlite3"
    with ResultsStore.open(path) as s:
        record_sample(s, room="AAAA", started=T0)                    # winner Bob
        record_sample(s, room="BBBB", started=T0 + 7200)             # winner Bob
        record_sample(s, room="CCCC", started=T0 + 3600, record=GameRecord(
            0.0, 65.0, 65.0, (player(4, "Zed", 2, 1, field=3, career="System Architect",
                                     salary=105_000),)))
    return path


def test_defaults():
    args = parse()
    assert (args.db, args.game, args.csv, args.leaderboard, args.limit) == (
        None, None, None, False, 20)
    assert parse("--csv").csv == "-"
    assert parse("--csv", "out.csv").csv == "out.csv"


@pytest.mark.parametrize("argv", [["--limit", "0"], ["--game", "x"],
                                  ["--game", "1", "--leaderboard"]])
def test_bad_arguments_are_refused_by_argparse(argv):
    with pytest.raises(SystemExit):
        parse(*argv)


def test_recent_games_table(db: Path, capsys):
    assert run(parse("--db", str(db))) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["GAME", "ROOM", "ENDED", "DURATION", "PLAYERS", "WINNER"]
    # Newest first, columns aligned: every row's ROOM starts under the header's.
    assert [line.split()[:2] for line in lines[1:]] == [["2", "BBBB"], ["3", "CCCC"],
                                                        ["1", "AAAA"]]
    assert {line.index(room) for line, room in zip(lines[1:], ["BBBB", "CCCC", "AAAA"])} \
        == {lines[0].index("ROOM")}
    assert lines[1].split()[-3:] == ["12:34", "3", "Bob"]   # 754.25 s, 3 players
    assert lines[2].split()[-3:] == ["1:05", "1", "Zed"]


def test_recent_games_limit_says_there_are_more(db: Path, capsys):
    assert run(parse("--db", str(db), "--limit", "2")) == 0
    out = capsys.readouterr().out
    assert "BBBB" in out and "CCCC" in out and "AAAA" not in out
    assert "2 most recent of 3 games" in out


def test_an_empty_store(tmp_path: Path, capsys):
    path = tmp_path / "empty.sqlite3"
    ResultsStore.open(path).close()
    assert run(parse("--db", str(path))) == 0
    assert "No games recorded yet" in capsys.readouterr().out
    assert run(parse("--db", str(path), "--leaderboard")) == 0
    assert "No games recorded yet" in capsys.readouterr().out


def test_one_game(db: Path, capsys):
    assert run(parse("--db", str(db), "--game", "1")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "Game 1" in out and "room AAAA" in out and "seed 42" in out
    assert "duration 12:34" in out and "players 3" in out
    rows = [line for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    # Sorted by place: Bob (1st), Ann (2nd), Cy (3rd), with colour and number.
    assert [r.split()[2] for r in rows] == ["Bob", "Ann", "Cy"]
    assert "Red (1)" in rows[0] and "Creative Director" in rows[0] and "$132,770" in rows[0]
    assert rows[0].rstrip().endswith("server") and rows[1].rstrip().endswith("player")
    assert "Green (3)" in rows[1] and "User Experience Designer" in rows[1]
    counts = {line.split()[0]: line.split()[1:] for line in out.splitlines()
              if line.split()[:1] in (["Ann"], ["Bob"], ["Cy"])}
    assert counts["Ann"] == ["3", "0", "1", "0", "0", "2", "7", "2", "1", "3", "2", "0"]
    assert counts["Cy"] == ["0", "0", "0", "5", "0", "0", "9", "1", "0", "0", "1", "0"]


def test_an_unknown_game(db: Path, capsys):
    assert run(parse("--db", str(db), "--game", "99")) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == f"lgmp results: no game 99 in {db}"


def test_leaderboard(db: Path, capsys):
    assert run(parse("--db", str(db), "--leaderboard")) == 0
    out = capsys.readouterr().out
    wins, salaries = out.split("\n\n")
    win_rows = [line.split() for line in wins.splitlines()[2:]]
    assert win_rows == [["1", "Bob", "2", "2", "$132,770"], ["2", "Zed", "1", "1", "$105,000"]]
    salary_rows = salaries.splitlines()[2:]
    assert [r.split()[1:3] for r in salary_rows] == [["Bob", "$132,770"], ["Zed", "$105,000"],
                                                     ["Ann", "$90,700"], ["Cy", "$75,000"]]
    assert "Business Data Analytics" in salary_rows[1]


def test_csv_to_stdout_round_trips(db: Path, capsys):
    assert run(parse("--db", str(db), "--csv")) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 7
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["room"] for r in rows] == ["AAAA"] * 3 + ["BBBB"] * 3 + ["CCCC"]
    assert rows[6]["name"] == "Zed" and rows[6]["salary"] == "105000"


def test_csv_to_a_file_for_one_game(db: Path, tmp_path: Path, capsys):
    target = tmp_path / "game2.csv"
    assert run(parse("--db", str(db), "--csv", str(target), "--game", "2")) == 0
    out, err = capsys.readouterr()
    assert out == "" and "wrote 3 player rows" in err
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seat"], r["name"]) for r in rows] == [("1", "Ann"), ("2", "Bob"), ("5", "Cy")]
    assert [p.name for p in sample_record().players] == [r["name"] for r in rows]


def test_csv_and_leaderboard_do_not_mix(db: Path, capsys):
    assert run(parse("--db", str(db), "--csv", "--leaderboard")) == 2
    assert "--csv" in capsys.readouterr().err


def test_a_missing_file_is_one_clear_line(tmp_path: Path, capsys):
    path = tmp_path / "nowhere.sqlite3"
    assert run(parse("--db", str(path))) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and str(path) in err and "does not exist" in err
    assert not path.exists()


def test_a_missing_file_does_not_create_the_csv(tmp_path: Path, capsys):
    target = tmp_path / "out.csv"
    assert run(parse("--db", str(tmp_path / "nowhere"), "--csv", str(target))) == 1
    assert not target.exists()


def test_a_foreign_file_is_one_clear_line(tmp_path: Path, capsys):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    assert run(parse("--db", str(path))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an LGMP results store" in err
    assert path.read_bytes() == before


def test_a_corrupt_file_is_one_clear_line(tmp_path: Path, capsys):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"\x00garbage" * 100)
    assert run(parse("--db", str(path), "--leaderboard")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an SQLite database" in err


def test_format_table_aligns_columns():
    text = format_table(("A", "NUM"), [("xx", 1), ("y", 100)], right=("NUM",))
    assert text.splitlines() == ["A   NUM", "xx    1", "y   100"]
