"""``lgmp.results.journal``: the results database with retries, else an fsynced journal that
the next start imports. (Through a real server: tests/test_abuse.py.)"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from lgmp.results.journal import (
    DurableRecorder,
    append_to_journal,
    entry_from_json,
    entry_to_json,
    import_journal,
    journal_path_for,
)
from lgmp.results.store import ResultsStore, StoreError
from tests.test_store import played_record, sample_record


def finished(room: str = "ABCD", seed: int = 7, record=None):
    return SimpleNamespace(room=room, seed=seed, record=record or sample_record())


class FlakyStore:
    """A store whose first ``failures`` writes fail as a locked database does."""

    def __init__(self, real: ResultsStore | None, failures: int):
        self.real, self.failures, self.attempts = real, failures, 0

    def record_game(self, **entry):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreError("results.sqlite3: the database is locked by another process (database is locked)")
        return self.real.record_game(**entry)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path: Path):
    with ResultsStore.open(tmp_path / "results.sqlite3") as store:
        yield store


def test_a_journal_line_round_trips_every_field():
    record = played_record(3, {1: ("Ann", 2), 4: ("Bob", 5)})
    line = entry_to_json(room="QZMB", seed=-5, record=record, started=1.5e9, ended=1.5e9 + 60)
    assert "\n" not in line
    assert entry_from_json(line) == {"room": "QZMB", "seed": -5, "record": record, "started": 1.5e9, "ended": 1.5e9 + 60}


def test_the_recorder_commits_to_the_database_when_it_can(store, tmp_path):
    journal = journal_path_for(tmp_path / "results.sqlite3")
    DurableRecorder(store, journal)(finished(), 1000.0, 1754.25)
    assert store.game_count() == 1 and not journal.exists()


def test_a_lock_that_clears_is_waited_for(store, tmp_path, monkeypatch):
    monkeypatch.setattr("lgmp.results.journal.time.sleep", lambda s: None)
    flaky = FlakyStore(store, failures=3)
    journal = tmp_path / "j.jsonl"
    DurableRecorder(flaky, journal, patience=60.0)(finished(), 1000.0, 1754.25)
    assert flaky.attempts == 4 and store.game_count() == 1 and not journal.exists()


def test_a_database_that_stays_unwritable_sends_games_to_the_journal_then_they_are_imported(store, tmp_path, monkeypatch, caplog):
    clock = Clock()

    def sleep(seconds):
        clock.now += seconds

    monkeypatch.setattr("lgmp.results.journal.time.sleep", sleep)
    dead = FlakyStore(store, failures=10**6)
    journal = tmp_path / "results.sqlite3.pending.jsonl"
    recorder = DurableRecorder(dead, journal, patience=5.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="lgmp.results.journal"):
        recorder(finished("AAAA"), 1000.0, 1010.0)
    attempts = dead.attempts
    assert 4 <= attempts <= 6 and clock.now >= 4.0  # tried for the patience, then journalled
    assert "game journalled to" in caplog.text
    # The next game does not wait the patience again: straight to the journal.
    recorder(finished("BBBB"), 1020.0, 1030.0)
    assert dead.attempts == attempts
    # After the patience the database is tried once more (and is fine now).
    clock.now += 5.0
    dead.failures = 0
    recorder(finished("CCCC"), 1040.0, 1050.0)
    assert store.game_count() == 1
    assert [entry_from_json(line)["room"] for line in journal.read_text().splitlines()] == ["AAAA", "BBBB"]
    # The next start imports them, and the journal is gone.
    assert import_journal(store, journal) == 2
    assert not journal.exists()
    assert sorted(g.room for g in store.recent_games()) == ["AAAA", "BBBB", "CCCC"]


def test_a_journal_that_cannot_be_written_raises_for_the_server_to_retry(tmp_path):
    recorder = DurableRecorder(FlakyStore(None, failures=10**6), tmp_path / "missing-dir" / "j.jsonl", patience=0.0)
    with pytest.raises(OSError):
        recorder(finished(), 1.0, 2.0)


def test_import_drops_a_line_cut_short_and_keeps_unreadable_ones(store, tmp_path):
    journal = tmp_path / "j.jsonl"
    good = entry_to_json(room="GOOD", seed=1, record=sample_record(), started=1.0, ended=2.0)
    append_to_journal(journal, good)
    append_to_journal(journal, '{"v": 99}')  # a line this lgmp cannot read: kept for a newer one
    append_to_journal(journal, good.replace("GOOD", "MORE"))
    with journal.open("a") as f:
        f.write(good[:40])  # the process died while writing this one: its FINL never went out
    assert import_journal(store, journal) == 2
    assert journal.read_text() == '{"v": 99}\n'
    assert sorted(g.room for g in store.recent_games()) == ["GOOD", "MORE"]


def test_import_stops_at_a_database_error_and_keeps_the_rest(store, tmp_path):
    journal = tmp_path / "j.jsonl"
    for room in ("AAAA", "BBBB", "CCCC"):
        append_to_journal(journal, entry_to_json(room=room, seed=1, record=sample_record(), started=1.0, ended=2.0))
    flaky = FlakyStore(store, failures=0)
    original = flaky.record_game

    def fail_on_b(**entry):
        if entry["room"] == "BBBB":
            raise StoreError("locked")
        return original(**entry)

    flaky.record_game = fail_on_b
    with pytest.raises(StoreError):
        import_journal(flaky, journal)
    assert [entry_from_json(line)["room"] for line in journal.read_text().splitlines()] == ["BBBB", "CCCC"]
    assert import_journal(store, journal) == 2 and store.game_count() == 3
